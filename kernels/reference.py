"""Plain-jnp references for the Pallas kernels (the kernels' tests and the XLA fallback agree
with these). Dimension key as in `kernels.flash_attention`.

The reference materialises the (B, K, G, T, S) score tensor: quadratic memory, for tests only.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp


def reference_mask(q_offset_b, kv_len_b, t: int, s: int, *, causal: bool = True,
                   window: Optional[int] = None):
  """-> bool (B, T, S): query t of row b (position q_offset[b] + t, or q_offset[b, t] when
  q_offset is a (B, T) array of positions) sees key s."""
  q_offset_b = jnp.asarray(q_offset_b)
  if q_offset_b.ndim == 2:
    q_pos = q_offset_b[:, :, None]
  else:
    q_pos = q_offset_b[:, None, None] + jnp.arange(t)[None, :, None]
  kv_pos = jnp.arange(s)[None, None, :]
  m = kv_pos < kv_len_b[:, None, None]
  if causal:
    m &= kv_pos <= q_pos
  if window is not None:
    m &= q_pos - kv_pos < window
  return m


def flash_attention_reference(q_bthd, k, v, q_offset_b, kv_len_b, *, scale: float,
                              causal: bool = True, softcap: Optional[float] = None,
                              window: Optional[int] = None, kv_layout: str = "bskd"):
  """Same contract as `kernels.flash_attention.flash_attention` (and `decode_attention`, whose
  default kv_layout is 'bksd': pass it explicitly here)."""
  b, t, h, d = q_bthd.shape
  if kv_layout not in ("bskd", "bksd"):
    raise ValueError(f"kv_layout={kv_layout!r}; expected 'bskd' or 'bksd'")
  s, kh = (k.shape[1], k.shape[2]) if kv_layout == "bskd" else (k.shape[2], k.shape[1])
  q = q_bthd.reshape(b, t, kh, h // kh, d)
  logits = jnp.einsum(f"btkgd,{kv_layout}->bkgts", q, k, preferred_element_type=jnp.float32,
                      precision=jax.lax.Precision.HIGHEST) * scale
  if softcap is not None:
    logits = jnp.tanh(logits / softcap) * softcap
  mask = reference_mask(q_offset_b, jnp.minimum(kv_len_b, s), t, s, causal=causal,
                        window=window)[:, None, None]
  logits = jnp.where(mask, logits, -jnp.inf)
  mx = jnp.max(logits, axis=-1, keepdims=True)
  e = jnp.where(mask, jnp.exp(logits - jnp.where(jnp.isfinite(mx), mx, 0.0)), 0.0)
  den = e.sum(-1, keepdims=True)
  probs = e / jnp.where(den > 0, den, 1.0)    # a row with no visible key -> zeros
  out = jnp.einsum(f"bkgts,{kv_layout}->btkgd", probs, v.astype(jnp.float32),
                   precision=jax.lax.Precision.HIGHEST)
  return out.reshape(b, t, h, d).astype(q_bthd.dtype)
