"""Bad attention inputs raise at trace time with a message naming the argument and the rule
broken, and the Pallas path never gives a result other than XLA's: query positions that are not
`start + arange(T)` (gaps, repeats, any order, packed sequences) are masked by their actual values
in the kernels, eager or traced, forward and backward.

Dimension key: B batch, T queries, S keys, H query heads, K kv heads, D head dim."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.models import attention, decoder
from critjax.models.attention import attend, xla_attention
from critjax.models.config import ModelConfig
from kernels import backend

# Compiled on a GPU the kernels need head dims of 64/128/256; interpret mode takes any.
D = 64 if backend.platform() == "gpu" else 16


def _qkv(b=2, t=5, h=4, kh=2, s=8, d=D, dtype=jnp.float32, seed=0, kv_layout="bskd"):
  rng = np.random.default_rng(seed)
  mk = lambda *shape: jnp.asarray(rng.standard_normal(shape), dtype)
  kv_shape = (b, s, kh, d) if kv_layout == "bskd" else (b, kh, s, d)
  q, k, v = mk(b, t, h, d), mk(*kv_shape), mk(*kv_shape)
  pos = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
  return q, k, v, pos, jnp.full((b,), t, jnp.int32)


# ---------------------------------------------------------------- shapes, dtypes, arguments

def _with(name, value):
  """Valid inputs with one replaced: -> (q, k, v, q_pos, kv_len, kwargs)."""
  q, k, v, pos, kl = _qkv()
  args = dict(q=q, k=k, v=v, q_pos=pos, kv_len=kl)
  kw = dict(scale=0.25)
  if name == "k":            # k and v together, so only the property under test is wrong
    args["k"] = args["v"] = value
  elif name in args:
    args[name] = value
  else:
    kw[name] = value
  return (*args.values(), kw)


_R = np.random.default_rng(1)
_arr = lambda *shape, dtype=jnp.float32: jnp.asarray(_R.standard_normal(shape), dtype)

# (argument replaced, its value, regex the error must match); valid: q (2, 5, 4, D),
# k = v (2, 8, 2, D), q_pos (2, 5), kv_len (2,).
BAD = {
    "q_rank": ("q", _arr(2, 5, 4 * D), r"q must be \(B, T, H, D\), got shape \(2, 5, %d\)" % (4 * D)),
    "k_rank": ("k", _arr(2, 8, 2 * D), r"k must be \(B, S, K, D\).*got shape \(2, 8, %d\)" % (2 * D)),
    "k_head_dim": ("k", _arr(2, 8, 2, D // 2),
                   r"q has shape \(2, 5, 4, %d\) but k has head_dim %d" % (D, D // 2)),
    "v_shape": ("v", _arr(2, 7, 2, D), r"k has shape \(2, 8, 2, %d\) but v has shape \(2, 7, 2, %d\)"
                % (D, D)),
    "k_batch": ("k", _arr(3, 8, 2, D), r"q has batch 2 but k has batch 3"),
    "gqa_heads": ("k", _arr(2, 8, 3, D), r"q has 4 query heads, not a multiple of the 3 kv heads of k"),
    "q_pos_shape": ("q_pos", jnp.zeros((2, 6), jnp.int32), r"q_pos must have shape \(B, T\) = \(2, 5\).*got \(2, 6\)"),
    "q_pos_rank": ("q_pos", jnp.zeros((2,), jnp.int32), r"q_pos must have shape \(B, T\) = \(2, 5\).*got \(2,\)"),
    "kv_len_shape": ("kv_len", jnp.zeros((2, 1), jnp.int32), r"kv_len must have shape \(B,\) = \(2,\).*got \(2, 1\)"),
    "kv_len_batch": ("kv_len", jnp.zeros((3,), jnp.int32), r"kv_len must have shape \(B,\) = \(2,\).*got \(3,\)"),
    "q_pos_dtype": ("q_pos", jnp.zeros((2, 5), jnp.float32), r"q_pos must be an integer array, got float32"),
    "kv_len_dtype": ("kv_len", jnp.full((2,), 5.0), r"kv_len must be an integer array, got float32"),
    "kv_dtype": ("k", _arr(2, 8, 2, D, dtype=jnp.bfloat16), r"q, k and v must share one dtype.*bfloat16"),
    "int_q": ("q", jnp.zeros((2, 5, 4, D), jnp.int32), r"q, k and v must be floating point"),
    "kv_len_too_long": ("kv_len", jnp.array([5, 9]), r"kv_len \[5, 9\] exceeds the cache length 8"),
    "kv_len_negative": ("kv_len", jnp.array([5, -1]), r"kv_len \[5, -1\] must be >= 0"),
    "window_0": ("window", 0, r"window must be >= 1 or None \(no window\), got 0"),
    "window_neg": ("window", -3, r"window must be >= 1 or None \(no window\), got -3"),
    "window_float": ("window", 2.5, r"window must be an int >= 1 or None \(no window\), got 2.5"),
    "window_bool": ("window", True, r"window must be an int >= 1 or None \(no window\), got True"),
    "softcap_0": ("softcap", 0.0, r"softcap must be > 0 or None \(no soft-cap\), got 0.0"),
    "softcap_neg": ("softcap", -5.0, r"softcap must be > 0 or None \(no soft-cap\), got -5.0"),
    "softcap_inf": ("softcap", float("inf"), r"softcap must be finite.*got inf"),
    "scale_0": ("scale", 0.0, r"scale must be a finite number > 0, got 0.0"),
    "scale_nan": ("scale", float("nan"), r"scale must be a finite number > 0, got nan"),
    "kv_layout": ("kv_layout", "bsdk", r"kv_layout must be 'bskd' or 'bksd', got 'bsdk'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_xla_attention_rejects(case):
  name, value, msg = BAD[case]
  q, k, v, pos, kl, kw = _with(name, value)
  with pytest.raises((ValueError, TypeError), match="xla_attention: " + msg):
    xla_attention(q, k, v, pos, kl, **kw)


@pytest.mark.parametrize("impl", ["xla", "pallas", "cudnn"])
@pytest.mark.parametrize("case", [c for c in BAD])
def test_attend_rejects_for_every_impl(case, impl):
  """The dispatch checks before choosing a path: no impl (or fallback) sees bad input."""
  name, value, msg = BAD[case]
  q, k, v, pos, kl, kw = _with(name, value)
  with pytest.raises((ValueError, TypeError), match="attend: " + msg):
    attend(q, k, v, pos, kl, impl=impl, **kw)


def test_attend_rejects_unknown_impl():
  q, k, v, pos, kl = _qkv()
  with pytest.raises(ValueError, match=r"attend: impl must be one of \('xla', 'pallas', 'cudnn'\), got 'flash'"):
    attend(q, k, v, pos, kl, impl="flash", scale=0.25)


def test_bksd_layout_shapes_are_named():
  q, k, v, pos, kl = _qkv(kv_layout="bksd")            # k (2, 2, 8, D): K on axis 1
  with pytest.raises(ValueError, match=r"q has 4 query heads, not a multiple of the 3 kv heads.*'bksd'"):
    xla_attention(q, k[:, :1].repeat(3, 1), v[:, :1].repeat(3, 1), pos, kl, scale=0.25,
                  kv_layout="bksd")
  with pytest.raises(ValueError, match=r"k must be \(B, K, S, D\) for kv_layout 'bksd'"):
    xla_attention(q, k[0], v[0], pos, kl, scale=0.25, kv_layout="bksd")


def test_checks_run_at_trace_time_under_jit():
  """Shapes and static arguments are checked while tracing: no per-step cost, same errors."""
  q, k, v, pos, kl = _qkv()
  f = jax.jit(lambda q, k: xla_attention(q, k, k, pos, kl, scale=0.25))
  with pytest.raises(ValueError, match=r"xla_attention: q has shape .* but k has head_dim"):
    f(q, k[..., :D // 2])
  g = jax.jit(lambda q: xla_attention(q, k, v, pos, kl, scale=0.25, window=0))
  with pytest.raises(ValueError, match="window must be >= 1"):
    g(q)
  # Traced lengths cannot be read at trace time; a valid call still runs.
  h = jax.jit(lambda kl: xla_attention(q, k, v, pos, kl, scale=0.25))
  np.testing.assert_allclose(np.asarray(h(kl)), np.asarray(xla_attention(q, k, v, pos, kl, scale=0.25)),
                             rtol=1e-5, atol=1e-6)


def test_none_disables_window_and_softcap():
  """None is the "off" value of both (as in ModelConfig); a huge window / soft-cap equals off."""
  q, k, v, pos, kl = _qkv(t=8, s=8)
  off = xla_attention(q, k, v, pos, kl, scale=0.25, window=None, softcap=None)
  np.testing.assert_allclose(np.asarray(xla_attention(q, k, v, pos, kl, scale=0.25, window=10 ** 6)),
                             np.asarray(off), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(np.asarray(xla_attention(q, k, v, pos, kl, scale=0.25, softcap=1e9)),
                             np.asarray(off), rtol=1e-5, atol=1e-6)
  # numpy integer windows are accepted (a config read with numpy)
  np.testing.assert_allclose(np.asarray(xla_attention(q, k, v, pos, kl, scale=0.25, window=np.int64(3))),
                             np.asarray(xla_attention(q, k, v, pos, kl, scale=0.25, window=3)))


# ------------------------------------------------------------------------- model call sites

TINY = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=D, d_ff=64)


@pytest.mark.parametrize("impl", ["xla", "pallas"])
def test_model_defaults_and_gemma_flags_still_run(impl):
  """ModelConfig's "off" values (None) reach attention as None; set values pass the checks."""
  gemma = dataclasses.replace(TINY, attn_logit_softcap=20.0, sliding_window=3, sliding_window_pattern=2)
  tokens = jnp.ones((1, 6), jnp.int32)
  for cfg in (TINY, gemma):
    cfg = dataclasses.replace(cfg, attention_impl=impl)
    params = decoder.init_params(cfg, jax.random.key(0))[0]
    logits, _ = decoder.forward(params, tokens, cfg)
    assert np.isfinite(np.asarray(logits)).all()


def test_model_with_zero_window_or_softcap_raises_not_zeros():
  """A config that says sliding_window=0 / attn_logit_softcap=0 used to give all-zero attention
  on its local layers / uniform attention; the config now refuses it, and a 0 that reaches the
  attention function anyway fails while tracing, naming the argument."""
  for over, msg in ((dict(sliding_window=0, sliding_window_pattern=2), "model.sliding_window=0 must be >= 1"),
                    (dict(attn_logit_softcap=0.0), "model.attn_logit_softcap=0.0 must be > 0")):
    with pytest.raises(ValueError, match=msg):
      dataclasses.replace(TINY, **over)
  q = jnp.ones((1, 4, 2, 8), jnp.float32)
  pos = jnp.arange(4)[None]
  with pytest.raises(ValueError, match="window must be >= 1"):
    xla_attention(q, q, q, pos, jnp.array([4]), scale=1.0, window=0)


# ------------------------------------------------- non-contiguous query positions: pallas == xla

def _positions(kind: str, b: int, t: int, s: int):
  rng = np.random.default_rng(7)
  if kind == "gaps":          # sorted, with holes (e.g. a row that skipped masked tokens)
    return np.sort(np.stack([rng.choice(s + t, t, replace=False) for _ in range(b)]), axis=1)
  if kind == "shuffled":      # any order
    return np.stack([rng.permutation(s)[:t] for _ in range(b)])
  if kind == "repeats":       # repeated positions (e.g. tree-shaped speculative drafts)
    return np.sort(rng.integers(0, s, (b, t)), axis=1)
  if kind == "packed":        # two sequences packed in one row: positions restart
    half = t // 2
    return np.tile(np.concatenate([np.arange(half), np.arange(t - half)]), (b, 1))
  if kind == "reversed":
    return np.tile(np.arange(t)[::-1] + (s - t), (b, 1))
  raise ValueError(kind)


def _close(a, b, tol=2e-5):
  a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
  assert not np.isnan(a).any()
  np.testing.assert_allclose(a, b, atol=tol, rtol=tol)


# (t, s): t <= 16 against a longer cache goes to the decode kernel, the rest to the flash kernel.
PATHS = {"decode": (3, 40), "decode_gqa_rows": (16, 48), "flash_prefill": (20, 48),
         "flash_train": (37, 37)}


@pytest.mark.parametrize("kind", ["gaps", "shuffled", "repeats", "packed", "reversed"])
@pytest.mark.parametrize("path", list(PATHS))
def test_pallas_uses_actual_positions(path, kind):
  t, s = PATHS[path]
  b, h, kh = 2, 4, 2
  layout = "bskd" if path == "flash_train" else "bksd"
  q, k, v, _, _ = _qkv(b=b, t=t, h=h, kh=kh, s=s, seed=3, kv_layout=layout)
  pos = jnp.asarray(_positions(kind, b, t, s), jnp.int32)
  kl = jnp.asarray([s, s - 5], jnp.int32)
  for kw in (dict(), dict(window=6, softcap=3.0)):
    ref = xla_attention(q, k, v, pos, kl, scale=0.25, kv_layout=layout, **kw)
    eager = attend(q, k, v, pos, kl, impl="pallas", scale=0.25, kv_layout=layout, **kw)
    # Under jit the positions are traced: nothing can be checked about them at trace time.
    traced = jax.jit(lambda q, k, v, pos, kl: attend(q, k, v, pos, kl, impl="pallas", scale=0.25,
                                                     kv_layout=layout, **kw))(q, k, v, pos, kl)
    _close(eager, ref)
    _close(traced, ref)


def test_pallas_gradients_with_packed_positions_match_xla():
  """Training on packed rows (positions restart mid-row): the Pallas backward masks by actual
  positions too, so dQ, dK, dV equal XLA's."""
  b, t, h, kh = 2, 40, 4, 2
  q, k, v, _, _ = _qkv(b=b, t=t, h=h, kh=kh, s=t, seed=4)
  pos = jnp.asarray(_positions("packed", b, t, t), jnp.int32)
  kl = jnp.asarray([t, t - 7], jnp.int32)
  cot = jnp.asarray(np.random.default_rng(5).standard_normal(q.shape), jnp.float32)
  for kw in (dict(), dict(window=5, softcap=4.0)):
    def loss(impl):
      return lambda q, k, v: jnp.sum(attend(q, k, v, pos, kl, impl=impl, scale=0.25, **kw) * cot)
    got = jax.jit(jax.grad(loss("pallas"), argnums=(0, 1, 2)))(q, k, v)
    want = jax.grad(loss("xla"), argnums=(0, 1, 2))(q, k, v)
    for g, w in zip(got, want):
      _close(g, w, tol=1e-4)


def test_pallas_contiguous_positions_unchanged():
  """The decoder's own positions (start_b + arange(T)) still give XLA's result on both kernels."""
  for t, s in ((1, 48), (20, 48)):
    q, k, v, _, _ = _qkv(b=3, t=t, s=s, seed=6, kv_layout="bksd")
    start = jnp.array([0, 9, s - t], jnp.int32)
    pos = start[:, None] + jnp.arange(t, dtype=jnp.int32)
    kl = start + t
    _close(attend(q, k, v, pos, kl, impl="pallas", scale=0.25, kv_layout="bksd", window=7),
           xla_attention(q, k, v, pos, kl, scale=0.25, kv_layout="bksd", window=7))


def test_pallas_empty_query_chunk():
  q, k, v, _, _ = _qkv(t=0, s=16, kv_layout="bksd")
  pos, kl = jnp.zeros((2, 0), jnp.int32), jnp.zeros((2,), jnp.int32)
  out = attend(q, k, v, pos, kl, impl="pallas", scale=0.25, kv_layout="bksd")
  assert out.shape == q.shape
  assert attention.xla_attention(q, k, v, pos, kl, scale=0.25, kv_layout="bksd").shape == q.shape


@pytest.mark.parametrize("field,value", [("sliding_window", 0), ("sliding_window", -4),
                                         ("attn_logit_softcap", 0.0), ("final_logit_softcap", -1.0)])
def test_model_config_refuses_an_off_value_that_is_not_none(field, value):
  from critjax.models.config import ModelConfig
  with pytest.raises(ValueError, match=f"model.{field}={value} must be"):
    ModelConfig(**{field: value})
