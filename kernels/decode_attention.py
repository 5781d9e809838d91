"""Flash-decoding: a few new query positions against a long KV cache, split over the key axis
and combined by log-sum-exp (Dao, Haziza, Massa, Sizov, "Flash-Decoding for long-context
inference", 2023; the split softmax is FlashAttention's online softmax, Dao et al. 2022, Sec. 3.1).

Dimension key: B batch, T new query positions (1 for plain decode, a few for speculative or
multi-token steps), S cache length, H query heads, K kv heads, G = H // K, D head dim,
R = T * G query rows per kv head (padded to a power of two, at least 16 for the GPU's dot),
P splits of the key axis.

Query positions are given per query ((B, T), any values; or (B,) offsets for offset + arange(T)):
each row is masked by its own query's position, and the visible key range is that of the row's
smallest to largest position.

One program per (split, b, kv head) processes all R = T * G query rows of that kv head at once,
so each K/V tile is read from memory once for the whole group (GQA without repeating K/V, and
the reason decode attention is bound by K/V bytes, not FLOPs). Splits take the key tiles
round-robin: split p handles tiles lo + p, lo + p + P, ... of the row's visible range [lo, hi),
so however long the row is, its work spreads evenly over all P programs, and tiles past kv_len
(or before the sliding window) are never loaded. Each split writes its unnormalised output,
running max and denominator; `_combine` merges the P partial softmaxes in float32.

The cache is read where it lies: kv_layout 'bksd' (B, K, S, D), the decoder's kv-head-major cache,
makes each program's keys one contiguous (S, D) slab; 'bskd' (B, S, K, D) is also accepted (rows
of D strided by K * D). Neither is copied or transposed before the kernel (see `kernels.layout`).
"""
from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from kernels import backend, layout
from kernels.masking import (NEG_INF, AttnParams, div, kv_block_range, pad_axis, pad_positions,
                             pick_block, query_positions, round_up, scores, visible)

MIN_ROWS = 16      # Triton's tl.dot needs at least 16 rows
MAX_SPLITS = 64    # beyond this the combine's (P, R, D) partials cost more than they balance


def _decode_kernel(qmin_ref, qmax_ref, kvlen_ref, qpos_ref, q_ref, k_ref, v_ref, acc_ref, m_ref,
                   l_ref, *, p: AttnParams, block_k: int, n_kv_blocks: int, splits: int):
  r, d = q_ref.shape
  split = pl.program_id(0)
  kv_len = kvlen_ref[()]
  q = q_ref[...]
  q_pos = qpos_ref[...][:, None]               # (R, 1): row t * G + g has query t's position
  lo, hi = kv_block_range(qmin_ref[()], qmax_ref[()], kv_len, p, block_k, n_kv_blocks)
  n_mine = div(jnp.maximum(hi - lo - split + splits - 1, 0), splits)  # tiles lo+split, +P, ...

  def body(n, carry):
    acc, m, l = carry
    j = lo + split + n * splits
    k = k_ref[pl.ds(j * block_k, block_k), :]
    v = v_ref[pl.ds(j * block_k, block_k), :]
    s = scores(q, k, p)                                              # (R, C) float32
    kv_pos = j * block_k + lax.broadcasted_iota(jnp.int32, (1, block_k), 1)
    mask = visible(q_pos, kv_pos, kv_len, p)
    s = jnp.where(mask, s, NEG_INF)
    m_new = jnp.maximum(m, s.max(axis=1))
    alpha = jnp.exp(m - m_new)
    pr = jnp.where(mask, jnp.exp(s - m_new[:, None]), 0.0)
    l = alpha * l + pr.sum(axis=1)
    prec = lax.Precision.HIGHEST if v.dtype == jnp.float32 else None
    acc = alpha[:, None] * acc + lax.dot(pr.astype(v.dtype), v, precision=prec,
                                         preferred_element_type=jnp.float32)
    return acc, m_new, l

  acc, m, l = lax.fori_loop(0, n_mine, body,
                            (jnp.zeros((r, d), jnp.float32), jnp.full((r,), NEG_INF, jnp.float32),
                             jnp.zeros((r,), jnp.float32)))
  acc_ref[...] = acc
  m_ref[...] = m
  l_ref[...] = l


def _combine(acc_bkprd, m_bkpr, l_bkpr):
  """Merge P partial softmaxes: out = sum_p e^{m_p - M} acc_p / sum_p e^{m_p - M} l_p."""
  mx = m_bkpr.max(axis=2, keepdims=True)
  w = jnp.exp(m_bkpr - mx)                       # a split that saw no key has l = 0: weight moot
  num = (w[..., None] * acc_bkprd).sum(axis=2)
  den = (w * l_bkpr).sum(axis=2)
  return num / jnp.where(den > 0, den, 1.0)[..., None]   # (B, K, R, D); no visible key -> 0


def _num_splits(b: int, kh: int, n_kv_blocks: int, splits: Optional[int]) -> int:
  if splits is None:
    from kernels import _gpu
    splits = pl.cdiv(_gpu.DECODE_TARGET_PROGRAMS, b * kh)
  return int(max(1, min(splits, MAX_SPLITS, n_kv_blocks)))


@functools.partial(jax.jit, static_argnames=("scale", "causal", "softcap", "window", "block_k",
                                             "splits", "interpret", "kv_layout"))
def decode_attention(q_bthd, k, v, q_offset_b, kv_len_b, *, scale: float,
                     causal: bool = True, softcap: Optional[float] = None,
                     window: Optional[int] = None, block_k: Optional[int] = None,
                     splits: Optional[int] = None, interpret: Optional[bool] = None,
                     kv_layout: str = "bksd"):
  """q (B, T, H, D) at positions q_offset[b] + t (q_offset (B,)), or q_offset[b, t] (a (B, T)
  array of positions, any values), against the cache k, v, of which the first
  kv_len[b] (clamped to S) positions are written -> (B, T, H, D) in q's dtype. k, v are
  (B, K, S, D) for kv_layout 'bksd' (the default: the decoder's cache layout) or (B, S, K, D)
  for 'bskd'.

  Same contract as `flash_attention`, for small T; forward only (sampling needs no gradient).
  """
  from kernels.flash_attention import _check_shapes
  shapes = _check_shapes(q_bthd, k, v, q_offset_b, kv_len_b, kv_layout)
  interpret = backend.resolve_interpret(interpret)
  b, t, h, d = q_bthd.shape
  s, kh = layout.seq_heads(k.shape, kv_layout)
  g = h // kh
  backend.check_head_dim(d, interpret, shapes)
  if t == 0:
    return jnp.zeros(q_bthd.shape, q_bthd.dtype)
  cfg = backend.default_blocks("decode", d, interpret)
  # A tile size dividing S avoids copying the cache to pad it (keep S a multiple of 16).
  bk = pick_block(s, block_k or cfg["block_k"])
  sp = round_up(s, bk)
  ax = layout.seq_axis(kv_layout)
  k, v = pad_axis(k, ax, sp), pad_axis(v, ax, sp)
  n_kv_blocks = sp // bk
  n_splits = _num_splits(b, kh, n_kv_blocks, splits or cfg["splits"])
  rows = max(MIN_ROWS, pl.next_power_of_2(t * g))
  q = q_bthd.reshape(b, t, kh, g, d).transpose(0, 2, 1, 3, 4).reshape(b, kh, t * g, d)
  q = pad_axis(q, 2, rows)                                            # (B, K, R, D)
  q_pos = query_positions(q_offset_b, t)                              # (B, T)
  row_pos = pad_positions(jnp.repeat(q_pos, g, axis=1), rows)         # (B, R): row t * G + g
  p = AttnParams(scale=float(scale), causal=causal, softcap=softcap, window=window)
  kernel = functools.partial(_decode_kernel, p=p, block_k=bk, n_kv_blocks=n_kv_blocks,
                             splits=n_splits)
  scalar = pl.BlockSpec((None,), lambda i, b_, h_: (b_,))
  cache = layout.tile_spec(kv_layout, sp, d, lambda i, b_, h_: (b_, h_, 0))   # (S, D) of one head
  part = lambda *tail: pl.BlockSpec((None, None, None) + tail,
                                    lambda i, b_, h_: (b_, h_, i) + (0,) * len(tail))
  acc, m, l = pl.pallas_call(
      kernel,
      grid=(n_splits, b, kh),
      in_specs=[scalar, scalar, scalar, pl.BlockSpec((None, rows), lambda i, b_, h_: (b_, 0)),
                pl.BlockSpec((None, None, rows, d), lambda i, b_, h_: (b_, h_, 0, 0)),
                cache, cache],
      out_specs=[part(rows, d), part(rows), part(rows)],
      out_shape=[jax.ShapeDtypeStruct((b, kh, n_splits, rows, d), jnp.float32),
                 jax.ShapeDtypeStruct((b, kh, n_splits, rows), jnp.float32),
                 jax.ShapeDtypeStruct((b, kh, n_splits, rows), jnp.float32)],
      compiler_params=backend.compiler_params(interpret, num_warps=cfg["num_warps"],
                                              num_stages=cfg["num_stages"]),
      interpret=interpret, name="decode_attention",
  )(q_pos.min(axis=1), q_pos.max(axis=1), jnp.minimum(kv_len_b.astype(jnp.int32), s), row_pos,
    q, k, v)
  out = _combine(acc, m, l)[:, :, :t * g]                             # (B, K, T*G, D)
  out = out.reshape(b, kh, t, g, d).transpose(0, 2, 1, 3, 4).reshape(b, t, h, d)
  return out.astype(q_bthd.dtype)
