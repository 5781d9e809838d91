"""Log-probs in chunks (critjax.train.logprobs.chunked_logprobs): values, entropies and the gradient of
a loss through them equal the unchunked (B, T, V) path, for tied and untied heads, a final softcap,
a temperature and chunks that do not divide the sequence; the auto setting by vocabulary size."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.models import decoder
from critjax.models.config import ModelConfig
from critjax.train.logprobs import resolve_chunk, token_logprobs

BASE = dict(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)


@pytest.mark.parametrize("extra, temperature, chunk", [
    (dict(tie_embeddings=True), 1.0, 4), (dict(tie_embeddings=False), 0.7, 5),
    (dict(tie_embeddings=True, final_logit_softcap=3.0), 1.3, 16), (dict(tie_embeddings=False), 1.0, 1)])
def test_chunked_equals_unchunked_values_and_gradient(extra, temperature, chunk):
  cfg = ModelConfig(**BASE, **extra)
  params, _ = decoder.init_params(cfg, jax.random.key(0))
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(0, cfg.vocab_size, (3, 11)), jnp.int32)
  w = jnp.asarray(rng.normal(size=(3, 11)), jnp.float32)

  def loss(p, c):
    lp, ent = token_logprobs(p, tokens, cfg, temperature, chunk=c)
    return (w * lp).sum() + 0.3 * (w * ent).sum(), (lp, ent)

  (l0, (lp0, e0)), g0 = jax.value_and_grad(loss, has_aux=True)(params, 0)
  (l1, (lp1, e1)), g1 = jax.value_and_grad(loss, has_aux=True)(params, chunk)
  np.testing.assert_allclose(lp1, lp0, atol=1e-5)
  np.testing.assert_allclose(e1, e0, atol=1e-5)
  assert float(l1) == pytest.approx(float(l0), rel=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), g1, g0)   # float32 sums in another order


def test_auto_chunking_follows_the_vocabulary():
  assert resolve_chunk(-1, 96) == 0 and resolve_chunk(-1, 151_936) == 1024
  assert resolve_chunk(0, 151_936) == 0 and resolve_chunk(256, 96) == 256
  with pytest.raises(ValueError, match="logprob_chunk"):
    resolve_chunk(-2, 96)


def test_chunks_cut_the_compiled_peak_memory():
  """XLA's memory analysis of the jitted gradient (compiled, never run): the unchunked path's
  temporaries hold the (B, T, V) float32 logits (2 x 256 x 32768 x 4 B = 64 MiB) and their
  gradient; chunks of 32 positions need a fraction of that."""
  cfg = ModelConfig(**dict(BASE, vocab_size=32_768, n_layers=1))
  params = jax.eval_shape(lambda: decoder.init_params(cfg, jax.random.key(0))[0])
  tokens = jax.ShapeDtypeStruct((2, 257), jnp.int32)

  def temp_bytes(chunk):
    f = jax.jit(jax.grad(lambda p, t: token_logprobs(p, t, cfg, 1.0, chunk=chunk)[0].sum()))
    m = f.lower(params, tokens).compile().memory_analysis()
    if m is None:
      pytest.skip("this backend reports no memory analysis")
    return m.temp_size_in_bytes

  full, chunked = temp_bytes(0), temp_bytes(32)
  assert full >= 2 * 256 * 32_768 * 4 and chunked < full / 4
