"""With remat on, the training forward runs the layers as a rematerialised lax.scan over stacked
per-layer parameters (decoder._scanned_layers): logits and gradients equal the unrolled loop's
(remat off) to float32 rounding, for a plain stack, Gemma-2-style local / global pairs (groups of
2) and a layer count that is not a whole number of groups (the unrolled loop kept)."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.models import decoder
from critjax.models.config import ModelConfig

BASE = dict(vocab_size=97, d_model=32, n_layers=4, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)


@pytest.mark.parametrize("extra, group", [
    (dict(), 1),
    (dict(sliding_window=3, sliding_window_pattern=2, post_norms=True, attn_logit_softcap=5.0), 2),
    (dict(n_layers=5, sliding_window=3, sliding_window_pattern=2), 0)])
def test_scanned_layers_equal_the_unrolled_loop(extra, group):
  cfg = ModelConfig(**{**BASE, **extra}, remat=True)
  plain = dataclasses.replace(cfg, remat=False)
  assert decoder._scan_group(cfg) == group
  params, _ = decoder.init_params(cfg, jax.random.key(0))
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 97, (2, 9)), jnp.int32)
  w = jnp.asarray(np.random.default_rng(1).normal(size=(2, 9, 97)), jnp.float32)
  loss = lambda p, c: (w * decoder.forward(p, tokens, c)[0]).sum()
  np.testing.assert_allclose(decoder.forward(params, tokens, cfg)[0], decoder.forward(params, tokens, plain)[0],
                             rtol=1e-5, atol=1e-5)
  g1, g0 = jax.grad(loss)(params, cfg), jax.grad(loss)(params, plain)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), g1, g0)   # float32 sums reordered


def test_scan_holds_one_layers_intermediates():
  # 6 layers: the scanned, rematerialised gradient needs far fewer temporaries than the unrolled one
  cfg = ModelConfig(**{**BASE, "n_layers": 6, "d_model": 64, "d_ff": 512}, remat=True)
  params = jax.eval_shape(lambda: decoder.init_params(cfg, jax.random.key(0))[0])
  tokens = jax.ShapeDtypeStruct((8, 256), jnp.int32)
  temps = lambda c: jax.jit(jax.grad(lambda p, t: decoder.forward(p, t, c)[0].sum())).lower(
      params, tokens).compile().memory_analysis().temp_size_in_bytes
  assert temps(cfg) < 0.6 * temps(dataclasses.replace(cfg, remat=False))
