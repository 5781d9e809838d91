"""The whole decoder with attention_impl='pallas' (interpret-mode kernels) against 'xla': same
logits, same gradients, same cached greedy samples; the kv-head-major cache reaching the kernels
without a copy; and the dispatch's fallback and input checks."""
import dataclasses
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.models import attention, decoder, pallas_attention
from critjax.models.config import ModelConfig
from critjax.sampling.sampler import Sampler
from critjax.sampling.token_choice import SamplingConfig
from kernels import backend

# Compiled on a GPU (`experiments/gpu_checks.sh`) the kernels need head dims of 64/128/256.
HEAD_DIM = 64 if backend.platform() == "gpu" else 16
LLAMA = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=HEAD_DIM,
                    d_ff=64)
# Gemma-2-like: soft-capped logits and alternating sliding-window layers exercise every mask kind.
GEMMA = dataclasses.replace(LLAMA, n_heads=8, n_kv_heads=1, attn_logit_softcap=20.0,
                            sliding_window=5, sliding_window_pattern=2, post_norms=True)


def _params(cfg):
  return decoder.init_params(cfg, jax.random.key(0))[0]


@pytest.mark.parametrize("cfg", [LLAMA, GEMMA], ids=["llama_gqa2", "gemma_gqa8_window_softcap"])
def test_logits_match_xla(cfg):
  params = _params(cfg)
  tokens = jax.random.randint(jax.random.key(1), (2, 23), 0, cfg.vocab_size)
  fwd = jax.jit(lambda p, c: decoder.forward(p, tokens, c)[0], static_argnums=1)
  np.testing.assert_allclose(np.asarray(fwd(params, dataclasses.replace(cfg, attention_impl="pallas"))),
                             np.asarray(fwd(params, cfg)), atol=2e-5, rtol=2e-5)


def test_grads_match_xla():
  """Training gradients through the Pallas backward kernels (GQA 8, window and soft-cap layers)."""
  cfg = GEMMA
  params = _params(cfg)
  tokens = jax.random.randint(jax.random.key(1), (2, 23), 0, cfg.vocab_size)

  @jax.jit
  def grads(p):
    loss = lambda p, c: jnp.mean(jax.nn.log_softmax(decoder.forward(p, tokens, c)[0])[..., 3])
    return (jax.grad(loss)(p, cfg), jax.grad(loss)(p, dataclasses.replace(cfg, attention_impl="pallas")))

  gx, gp = grads(params)
  for a, b in zip(jax.tree.leaves(gp), jax.tree.leaves(gx)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-5, rtol=1e-4)


def test_cached_greedy_samples_match_xla():
  """Prefill (flash kernel against the cache), greedy decode (decode kernel), a second turn
  appended at each row's own length (flash with offsets), decode again: tokens identical."""
  cfg = GEMMA
  params = _params(cfg)
  scfg = SamplingConfig(max_new_tokens=8, temperature=0.0, eos_id=-1)
  prompts = np.asarray(jax.random.randint(jax.random.key(2), (3, 7), 2, cfg.vocab_size))
  lens = np.array([7, 4, 1])
  turn2 = np.asarray(jax.random.randint(jax.random.key(3), (3, 5), 2, cfg.vocab_size))
  out = {}
  for impl in ("xla", "pallas"):
    s = Sampler(dataclasses.replace(cfg, attention_impl=impl), scfg, capacity=48)
    ro = s.decode(params, s.start(params, prompts, lens), jax.random.key(4))
    ro = s.append(params, ro, turn2, np.array([5, 2, 3]))
    ro = s.decode(params, ro, jax.random.key(5))
    out[impl] = (np.asarray(ro.tokens), np.asarray(ro.last_logits))
  np.testing.assert_array_equal(out["pallas"][0], out["xla"][0])
  np.testing.assert_allclose(out["pallas"][1], out["xla"][1], atol=1e-4, rtol=1e-4)


def _ops_touching(jaxpr, shapes) -> set:
  """Primitives (not looking inside Pallas kernels or call wrappers) with an operand or result of
  one of `shapes`."""
  found = set()
  for eqn in jaxpr.eqns:
    subs = [getattr(p, "jaxpr", p) for p in eqn.params.values()]
    subs = [j for j in subs if hasattr(j, "eqns")]
    if subs and eqn.primitive.name != "pallas_call":   # pjit and friends: look inside instead
      for j in subs:
        found |= _ops_touching(j, shapes)
      continue
    if any(getattr(v.aval, "shape", None) in shapes for v in (*eqn.invars, *eqn.outvars)):
      found.add(eqn.primitive.name)
  return found


@pytest.mark.parametrize("t", [1, 20], ids=["decode_kernel", "flash_continuation"])
def test_pallas_reads_the_kv_head_major_cache_in_place(t):
  """A (B, K, S, D) cache goes straight into the pallas_call: no transpose, pad or copy of it (or
  of its (B, S, K, D) transpose) anywhere in the traced attention."""
  b, h, kh, s, d = 2, 4, 2, 48, HEAD_DIM
  q = jax.ShapeDtypeStruct((b, t, h, d), jnp.float32)
  cache = jax.ShapeDtypeStruct((b, kh, s, d), jnp.float32)
  pos, kl = jax.ShapeDtypeStruct((b, t), jnp.int32), jax.ShapeDtypeStruct((b,), jnp.int32)
  fn = lambda q, k, v, p, n: attention.attend(q, k, v, p, n, impl="pallas", scale=0.25,
                                              kv_layout="bksd")
  jaxpr = jax.make_jaxpr(fn)(q, cache, cache, pos, kl).jaxpr
  assert _ops_touching(jaxpr, {(b, kh, s, d), (b, s, kh, d)}) == {"pallas_call"}


def test_unsupported_platform_falls_back_to_xla_with_warning(monkeypatch, caplog):
  monkeypatch.setattr(backend, "platform", lambda: "tpu")
  attention._warned.clear()
  rng = np.random.default_rng(0)
  q = jnp.asarray(rng.standard_normal((1, 5, 2, 16)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((1, 5, 1, 16)), jnp.float32)
  pos, kl = jnp.arange(5)[None], jnp.array([5])
  with caplog.at_level(logging.WARNING):
    got = attention.attend(q, k, k, pos, kl, impl="pallas", scale=0.25)
  assert "attention_impl='pallas' has no kernels for platform" in caplog.text
  np.testing.assert_array_equal(np.asarray(got),
                                np.asarray(attention.xla_attention(q, k, k, pos, kl, scale=0.25)))


def test_dispatch_rejects_bad_shapes():
  rng = np.random.default_rng(0)
  q = jnp.asarray(rng.standard_normal((1, 6, 2, 16)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((1, 4, 1, 16)), jnp.float32)
  with pytest.raises(ValueError, match=r"cache of 4 positions shorter than the 6 queries.*\(1, 4, 1, 16\)"):
    pallas_attention.attend(q, k, k, jnp.arange(6)[None], jnp.array([6]), scale=0.25)
  k = jnp.asarray(rng.standard_normal((1, 8, 1, 16)), jnp.float32)
  with pytest.raises(ValueError, match=r"kv_len \[9\] exceeds the cache length 8"):
    pallas_attention.attend(q[:, :1], k, k, jnp.array([[8]]), jnp.array([9]), scale=0.25)
