"""Decoder equivalences: cached chunked decode == full recompute; padding never leaks backwards."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.models import decoder as dec
from critjax.models.config import ModelConfig

FAMILIES = {
    "llama": dict(),
    "qwen2": dict(qkv_bias=True),
    "qwen3": dict(qk_norm=True),
    "gemma2": dict(norm_offset=True, embed_scale=True, post_norms=True, attn_logit_softcap=50.0,
                   final_logit_softcap=30.0, query_pre_attn_scalar=16.0, sliding_window=4,
                   sliding_window_pattern=2, activation="gelu_tanh", tie_embeddings=True),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_cached_chunks_equal_full_forward(family):
  cfg = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64,
                    **FAMILIES[family])
  params, _ = dec.init_params(cfg, jax.random.key(0))
  toks = jax.random.randint(jax.random.key(1), (2, 11), 0, 64)
  full, _ = dec.forward(params, toks, cfg)
  cache = dec.init_cache(cfg, 2, 16)
  outs, pos = [], 0
  for chunk in (5, 1, 3, 1, 1):  # prefill, decode, a continuation chunk, decode
    lg, cache = dec.forward(params, toks[:, pos:pos + chunk], cfg, cache=cache, start_b=jnp.array([pos, pos]))
    outs.append(lg)
    pos += chunk
  np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=2e-5, rtol=1e-5)


def test_ragged_rows_write_at_their_own_offsets(tiny_cfg):
  """Two rows at different lengths continue from their own positions: each equals its own full pass."""
  params, _ = dec.init_params(tiny_cfg, jax.random.key(0))
  a = np.array([3, 4, 5, 6, 7, 8]); b = np.array([9, 10, 11, 12])
  cache = dec.init_cache(tiny_cfg, 2, 12)
  prompt = np.array([[3, 4, 5, 6], [9, 10, 11, 0]])
  _, cache = dec.forward(params, prompt, tiny_cfg, cache=cache, start_b=jnp.array([0, 0]))
  chunk = np.array([[7, 8], [12, 0]])
  lg, _ = dec.forward(params, chunk, tiny_cfg, cache=cache, start_b=jnp.array([4, 3]))
  full_a, _ = dec.forward(params, a[None], tiny_cfg)
  full_b, _ = dec.forward(params, b[None], tiny_cfg)
  np.testing.assert_allclose(lg[0], full_a[0, 4:6], atol=2e-5)
  np.testing.assert_allclose(lg[1, 0], full_b[0, 3], atol=2e-5)


def test_right_padding_does_not_change_valid_logits(tiny_cfg):
  params, _ = dec.init_params(tiny_cfg, jax.random.key(0))
  toks = np.array([[5, 6, 7, 8, 9]])
  padded = np.array([[5, 6, 7, 0, 0]])
  a, _ = dec.forward(params, toks, tiny_cfg)
  b, _ = dec.forward(params, padded, tiny_cfg)
  np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-6)


def test_bad_config_names_the_field():
  with pytest.raises(ValueError, match="n_kv_heads"):
    ModelConfig(n_heads=4, n_kv_heads=3)
  with pytest.raises(ValueError, match="unknown model config field"):
    ModelConfig.from_dict({"d_modle": 3})
