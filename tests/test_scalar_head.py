"""The decoder's scalar head and the meta RM loss of DeepSeek-GRM (arXiv 2504.02495; ALGORITHMS.md §6).

The head (model.scalar_head) is a linear D -> 1 map of the final-normed hidden state; LOSSES['meta_rm_bce']
is binary cross-entropy on its value at the trajectory's last token. Runs on 8 CPU devices (conftest.py).
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from critjax import sharding as sh
from critjax.models import decoder, hf_io
from critjax.models.config import ModelConfig
from critjax.rl.losses import LOSSES, LossConfig, meta_rm_bce_loss
from critjax.train import loop
from critjax.train.state import RoleState
from critjax.train.update import RoleSpec, accumulate_grads, apply_role_update, role_loss

CFG = ModelConfig(vocab_size=32, d_model=32, n_layers=1, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64,
                  scalar_head=True)


# Jitted once per shape: eager Flax dispatches every op alone, several times slower on a CPU.
fwd = jax.jit(decoder.forward, static_argnames=("cfg", "return_scalar", "return_hidden"))


def _close_tree(got, want):
  """Per leaf, float32 summation-order noise relative to the leaf's scale (a few elements of a
  gradient are near zero, where a plain rtol would fail on rounding)."""
  def close(a, b):
    b = np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(np.abs(b).max()) + 1e-8)
  jax.tree.map(close, got, want)


@functools.partial(jax.jit, static_argnames="cfg")
def _init(key, cfg=CFG):
  return decoder.init_params(cfg, key)[0]


@functools.lru_cache(maxsize=None)
def _params(seed=0):
  """Random params with a non-zero head (init makes it zero, which would hide mistakes)."""
  params, axes = _init(jax.random.key(seed)), decoder.logical_axes(CFG)
  k1, k2 = jax.random.split(jax.random.key(seed + 100))
  params["scalar_head"] = {"kernel": jax.random.normal(k1, (CFG.d_model, 1)),
                           "bias": jax.random.normal(k2, (1,))}
  return params, axes


def _batch(seed, b=8, t=9):
  rng = np.random.default_rng(seed)
  length = rng.integers(2, t + 1, b)
  return {"tokens": jnp.asarray(rng.integers(0, CFG.vocab_size, (b, t)), jnp.int32),
          "score_pos": jnp.asarray(length - 1, jnp.int32),
          "label": jnp.asarray(rng.integers(0, 2, b), jnp.float32),
          "row_valid": jnp.asarray(rng.random(b) < 0.8, jnp.float32)}


def _spec(m=1, optimizer=None):
  return RoleSpec(CFG, optimizer, kind="meta_rm_bce", loss=LossConfig(), micro_batches=m)


loss_of = jax.jit(role_loss, static_argnames="spec")


def _reference_bce(x, y, valid):
  """float64 NumPy, the textbook form: -y log sigma(x) - (1 - y) log(1 - sigma(x)), row mean."""
  x, y, valid = (np.asarray(a, np.float64) for a in (x, y, valid))
  p = 1.0 / (1.0 + np.exp(-x))
  per_row = -y * np.log(p) - (1 - y) * np.log(1 - p)
  return (valid * per_row).sum() / valid.sum(), p


# --- the head -------------------------------------------------------------------------------------

def test_head_params_init_zero_and_logits_unchanged():
  params, axes = _init(jax.random.key(0)), decoder.logical_axes(CFG)
  assert axes["scalar_head"] == {"kernel": ("embed", None), "bias": (None,)}
  np.testing.assert_array_equal(params["scalar_head"]["kernel"], np.zeros((CFG.d_model, 1)))
  plain = dataclasses.replace(CFG, scalar_head=False)
  base = _init(jax.random.key(0), cfg=plain)
  assert set(params) - set(base) == {"scalar_head"}
  tokens = _batch(0)["tokens"]
  logits, scalar = fwd(params, tokens, CFG, return_scalar=True)
  assert scalar.shape == tokens.shape and scalar.dtype == jnp.float32
  np.testing.assert_array_equal(scalar, 0.0)
  np.testing.assert_allclose(logits, fwd(base, tokens, plain)[0], rtol=1e-6, atol=1e-6)   # same key, same backbone


def test_scalar_is_the_linear_head_of_the_final_hidden_state():
  params, _ = _params()
  tokens = _batch(1)["tokens"]
  hidden, _ = fwd(params, tokens, CFG, return_hidden=True)
  _, scalar = fwd(params, tokens, CFG, return_scalar=True)
  h = np.asarray(hidden, np.float64)
  want = h @ np.asarray(params["scalar_head"]["kernel"], np.float64)[:, 0] + float(params["scalar_head"]["bias"][0])
  np.testing.assert_allclose(scalar, want, rtol=1e-5, atol=1e-5)


def test_refused_without_the_head():
  plain = dataclasses.replace(CFG, scalar_head=False)
  params = _init(jax.random.key(0), cfg=plain)
  tokens = jnp.zeros((2, 4), jnp.int32)
  with pytest.raises(ValueError, match="model.scalar_head"):
    fwd(params, tokens, plain, return_scalar=True)
  with pytest.raises(ValueError, match="model.scalar_head"):
    decoder.scalar_scores(params, tokens, jnp.array([2, 4]), plain)
  with pytest.raises(ValueError, match="model.scalar_head"):
    role_loss(params, {"tokens": tokens}, RoleSpec(plain, None, kind="meta_rm_bce"))


def test_kv_cache_decode_unchanged_by_the_head():
  """The sampling path (prefill + one decode step with a cache) runs on a model with a head and gives
  the logits of a full recompute."""
  params, _ = _params()
  tokens = _batch(2, b=2, t=6)["tokens"]
  cache = decoder.init_cache(CFG, 2, 8)
  _, cache = fwd(params, tokens[:, :5], CFG, cache=cache, start_b=jnp.zeros((2,), jnp.int32))
  step, _ = fwd(params, tokens[:, 5:], CFG, cache=cache, start_b=jnp.full((2,), 5, jnp.int32))
  full, _ = fwd(params, tokens, CFG)
  np.testing.assert_allclose(step[:, 0], full[:, 5], rtol=1e-4, atol=1e-4)


def test_scalar_scores_reads_the_last_real_token():
  params, _ = _params()
  rng = np.random.default_rng(3)
  length = np.array([1, 4, 7, 3])
  padded = rng.integers(0, CFG.vocab_size, (4, 7)).astype(np.int32)   # junk after each row's length
  got = decoder.scalar_scores(params, jnp.asarray(padded), jnp.asarray(length), CFG)
  assert got.shape == (4,)
  for i, n in enumerate(length):
    _, s = fwd(params, jnp.asarray(padded[i:i + 1, :n]), CFG, return_scalar=True)
    np.testing.assert_allclose(got[i], s[0, -1], rtol=1e-5, atol=1e-5)


# --- the loss -------------------------------------------------------------------------------------

def test_bce_matches_numpy_reference_on_the_models_scalar():
  params, _ = _params()
  batch = _batch(4)
  total, denom, metrics = loss_of(params, batch, _spec())
  _, scalar = fwd(params, batch["tokens"], CFG, return_scalar=True)
  x = np.asarray(scalar, np.float64)[np.arange(8), np.asarray(batch["score_pos"])]
  y, valid = np.asarray(batch["label"]), np.asarray(batch["row_valid"])
  ref, p = _reference_bce(x, y, valid)
  assert float(denom) == valid.sum()
  assert float(total / denom) == pytest.approx(ref, rel=1e-5)
  mean = lambda k: float(metrics[k][0] / metrics[k][1])
  assert mean("bce") == pytest.approx(ref, rel=1e-5)
  assert mean("accuracy") == pytest.approx((valid * ((x > 0) == (y == 1))).sum() / valid.sum())
  assert mean("prob") == pytest.approx((valid * p).sum() / valid.sum(), rel=1e-5)


def test_bce_hand_values_and_gradient():
  """x = 0 gives log 2; large |x| stays finite (stable form); d l / d x = sigma(x) - y, also at x = 0,
  checked against central finite differences in float64 NumPy."""
  x = jnp.array([[0.0, 0.0], [3.0, 0.0], [-2.0, 0.0], [40.0, 0.0], [-40.0, 0.0]])
  y = jnp.array([1.0, 1.0, 1.0, 0.0, 1.0])
  pos = jnp.zeros((5,), jnp.int32)
  total, denom, _ = meta_rm_bce_loss(x, pos, y)
  want = np.array([np.log(2), np.log1p(np.exp(-3.0)), np.log1p(np.exp(2.0)), 40.0, 40.0])
  assert float(total) == pytest.approx(want.sum(), rel=1e-6) and float(denom) == 5
  grad = jax.grad(lambda s: meta_rm_bce_loss(s, pos, y)[0])(x)
  x64, y64, eps = np.asarray(x[:, 0], np.float64), np.asarray(y, np.float64), 1e-6
  f = lambda v: np.log1p(np.exp(-np.abs(v))) + np.maximum(v, 0.0) - v * y64
  fd = (f(x64 + eps) - f(x64 - eps)) / (2 * eps)
  np.testing.assert_allclose(grad[:, 0], fd, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(grad[:, 1], 0.0)        # only the score position gets gradient


def test_gradient_through_the_model_matches_finite_differences():
  """d loss / d (head bias) = mean over valid rows of sigma(x) - y, and a kernel direction's derivative
  matches a central difference of the model's own loss."""
  params, _ = _params()
  batch = _batch(5)
  loss = jax.jit(lambda p: (lambda t, d, m: t / d)(*role_loss(p, batch, _spec())))
  g = jax.jit(jax.grad(loss))(params)
  _, scalar = fwd(params, batch["tokens"], CFG, return_scalar=True)
  x = np.asarray(scalar, np.float64)[np.arange(8), np.asarray(batch["score_pos"])]
  valid = np.asarray(batch["row_valid"])
  want = (valid * (1 / (1 + np.exp(-x)) - np.asarray(batch["label"]))).sum() / valid.sum()
  assert float(g["scalar_head"]["bias"][0]) == pytest.approx(want, rel=1e-4)
  u = jax.random.normal(jax.random.key(9), (CFG.d_model, 1))
  at = lambda e: float(loss({**params, "scalar_head": {**params["scalar_head"],
                                                        "kernel": params["scalar_head"]["kernel"] + e * u}}))
  eps = 1e-2
  fd = (at(eps) - at(-eps)) / (2 * eps)
  assert float(jnp.sum(g["scalar_head"]["kernel"] * u)) == pytest.approx(fd, rel=2e-3)


@pytest.fixture(scope="module")
def full_batch():
  """(batch, accumulate_grads on one device with one micro-batch): the reference of the next two tests."""
  batch = _batch(6)
  return batch, jax.jit(lambda p: accumulate_grads(p, batch, _spec(1)))(_params()[0])


def test_micro_batches_give_the_full_batch_loss_and_gradient(full_batch):
  params, _ = _params()
  batch, full = full_batch
  acc = jax.jit(lambda p: accumulate_grads(p, batch, _spec(4)))(params)
  np.testing.assert_allclose(acc[1], full[1], rtol=1e-5)
  _close_tree(acc[0], full[0])
  for k in ("bce", "accuracy", "prob"):
    np.testing.assert_allclose(acc[2][k], full[2][k], rtol=1e-5, atol=1e-7)


def test_bad_labels_and_missing_keys_are_refused():
  fn = LOSSES.get("meta_rm_bce")
  mb = {"scalar": jnp.zeros((3, 4)), "score_pos": jnp.array([0, 1, 3]), "label": jnp.array([0.0, 1.0, 0.0])}
  z = jnp.zeros((3, 4))
  fn(z, z, mb, LossConfig())
  with pytest.raises(ValueError, match="label"):
    fn(z, z, {**mb, "label": jnp.array([0.0, 2.0, 1.0])}, LossConfig())
  fn(z, z, {**mb, "label": jnp.array([0.0, -1.0, 1.0]), "row_valid": jnp.array([1, 0, 1])}, LossConfig())
  for key in ("score_pos", "label", "scalar"):
    with pytest.raises(ValueError, match=key):
      fn(z, z, {k: v for k, v in mb.items() if k != key}, LossConfig())
  with pytest.raises(ValueError, match="label must be"):
    fn(z, z, {**mb, "label": jnp.zeros((3, 4))}, LossConfig())


# --- training, sharding, checkpoints ----------------------------------------------------------------

def test_tiny_meta_rm_learns_a_separable_toy():
  """label = 'token 5 occurs in the row', read at the last real token; 40 Adam steps."""
  rng = np.random.default_rng(7)
  b, t = 64, 8
  tokens = rng.integers(6, CFG.vocab_size, (b, t))
  length = rng.integers(3, t + 1, b)
  has = rng.random(b) < 0.5
  for i in np.flatnonzero(has):
    tokens[i, rng.integers(0, length[i])] = 5
  batch = {"tokens": jnp.asarray(tokens, jnp.int32), "score_pos": jnp.asarray(length - 1, jnp.int32),
           "label": jnp.asarray(has, jnp.float32), "row_valid": jnp.ones((b,), jnp.float32)}
  opt = optax.adam(3e-3)
  spec = _spec(2, opt)
  params = _init(jax.random.key(1))
  role = RoleState(params, opt.init(params))
  step = jax.jit(functools.partial(apply_role_update, spec=spec))
  for _ in range(40):
    role, metrics = step(role, batch)
  assert float(metrics["accuracy"]) > 0.9, metrics
  scores = decoder.scalar_scores(role.params, batch["tokens"], jnp.asarray(length), CFG)
  assert np.mean((np.asarray(scores) > 0) == has) > 0.9


def test_params_with_the_head_shard_and_match_one_device(full_batch):
  """FSDP over 4 and data over 2 (the head's kernel splits its D rows), 2 micro-batches: the
  gradient of one device and one micro-batch."""
  assert jax.device_count() == 8
  params, axes = _params()
  batch, ref = full_batch
  mesh = sh.make_mesh(sh.MeshConfig(data=2, fsdp=4, tensor=1))
  shardings = sh.tree_shardings(axes, params, mesh)
  assert shardings["scalar_head"]["kernel"].spec == jax.sharding.PartitionSpec("fsdp", None)
  sharded = jax.device_put(params, shardings)
  got = jax.jit(lambda p, mb: accumulate_grads(p, mb, _spec(2)))(sharded, sh.shard_batch(batch, mesh))
  np.testing.assert_allclose(got[1], ref[1], rtol=1e-5)
  _close_tree(got[0], ref[0])
  np.testing.assert_allclose(decoder.scalar_scores(sharded, batch["tokens"], batch["score_pos"] + 1, CFG),
                             decoder.scalar_scores(params, batch["tokens"], batch["score_pos"] + 1, CFG),
                             rtol=1e-5, atol=1e-5)


def test_hf_export_refuses_the_head_and_import_adds_a_fresh_one(tmp_path):
  """An HF checkpoint (written by export_hf from a headless model) imported for a meta RM: the
  backbone is the checkpoint's, the head is the zeros init makes, placed on its sharding."""
  params, _ = _params()
  with pytest.raises(ValueError, match="model.scalar_head"):
    hf_io.export_hf(params, CFG, tmp_path / "refused", family="llama")
  plain = dataclasses.replace(CFG, scalar_head=False)
  hf_io.export_hf(params, plain, tmp_path / "lm", family="llama")
  loaded, cfg = hf_io.import_hf(tmp_path / "lm")
  assert cfg == plain and "scalar_head" not in loaded
  mesh = sh.make_mesh(sh.MeshConfig(data=2, fsdp=4))
  shardings = sh.tree_shardings(decoder.logical_axes(CFG), params, mesh)
  with_head = loop._import_hf(CFG, str(tmp_path / "lm"), shardings)   # the run's init='hf' path
  np.testing.assert_array_equal(with_head["scalar_head"]["kernel"], np.zeros((CFG.d_model, 1)))
  assert with_head["scalar_head"]["kernel"].sharding == shardings["scalar_head"]["kernel"]
  np.testing.assert_array_equal(with_head["lm_head"], params["lm_head"])
  tokens = _batch(9)["tokens"]
  _, scalar = fwd(with_head, tokens, CFG, return_scalar=True)
  np.testing.assert_array_equal(scalar, 0.0)
