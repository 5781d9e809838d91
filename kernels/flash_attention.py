"""Flash attention for training and prefill: FlashAttention-2 (Dao, 2023), Algorithm 1 (forward)
and Algorithm 2 (backward), as Pallas kernels.

Dimension key: B batch, T query positions, S key/value positions, H query heads, K kv heads,
G = H // K query heads per kv head, D head dim, Q / C query / key tile lengths.

Mask (see `kernels.masking`): query t of row b sits at absolute position q_pos[b, t] (given as
(B, T) positions, or as (B,) offsets meaning q_offset[b] + t) and sees key s iff s < kv_len[b],
s <= position (causal) and position - s < window. With q_offset = 0 and kv_len = T this is plain
causal training attention (right padding needs no mask); with the whole KV cache as k/v,
q_offset = start and kv_len = start + T it is prefill of a continuation chunk. Positions need not
be contiguous or sorted (packed rows, gaps): each query is masked by its own position, and a
query tile's key-tile range comes from its smallest and largest position.
K/V come as (B, S, K, D) ('bskd', training) or kv-head-major (B, K, S, D) ('bksd', the cache's
layout, read in place; see `kernels.layout`); dK/dV come back in the layout K/V came in.

Grouped-query attention reads the kv head h // G from the one K/V array (never repeated in
memory). The forward runs one program per (query tile, b, h) and loops over the key tiles that
hold a visible key (tiles past the row's length or before its window are never loaded); tiles in
which every key is visible skip the mask arithmetic. The backward is two kernels without atomics:
dQ per (query tile, b, h) and dK/dV per (key tile, b, kv head), the latter summing the G query
heads of its group inside the kernel. Lengths that are not tile multiples are zero-padded.
"""
from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from kernels import backend, layout
from kernels.masking import (NEG_INF, AttnParams, full_block_range, kv_block_range, pad_axis,
                             pad_positions, pick_block, query_positions, query_tile_ranges,
                             round_up, scores, softcap_grad, tile_bounds, visible)


def _dot(a, b):
  prec = lax.Precision.HIGHEST if a.dtype == jnp.float32 else None
  return lax.dot(a, b, precision=prec, preferred_element_type=jnp.float32)


def _dot_t(a, b):  # a^T @ b, contracting the leading dims
  prec = lax.Precision.HIGHEST if a.dtype == jnp.float32 else None
  return lax.dot_general(a, b, (((0,), (0,)), ((), ())), precision=prec,
                         preferred_element_type=jnp.float32)


def _fwd_kernel(qmin_ref, qmax_ref, kvlen_ref, qpos_ref, q_ref, k_ref, v_ref, o_ref, lse_ref, *,
                p: AttnParams, block_k: int, n_kv_blocks: int):
  block_q, d = q_ref.shape
  q_first, q_last = qmin_ref[()], qmax_ref[()]        # the tile's smallest / largest position
  kv_len = kvlen_ref[()]
  q = q_ref[...]
  q_pos = qpos_ref[...][:, None]                      # (Q, 1)
  lo, hi = kv_block_range(q_first, q_last, kv_len, p, block_k, n_kv_blocks)
  a, c = full_block_range(q_first, q_last, kv_len, p, block_k, lo, hi)

  def body(j, carry, masked: bool):
    acc, m, l = carry
    k = k_ref[pl.ds(j * block_k, block_k), :]
    v = v_ref[pl.ds(j * block_k, block_k), :]
    s = scores(q, k, p)                                            # (Q, C) float32
    if masked:
      kv_pos = j * block_k + lax.broadcasted_iota(jnp.int32, (1, block_k), 1)
      mask = visible(q_pos, kv_pos, kv_len, p)
      s = jnp.where(mask, s, NEG_INF)
    m_new = jnp.maximum(m, s.max(axis=1))
    alpha = jnp.exp(m - m_new)
    pr = jnp.exp(s - m_new[:, None])
    if masked:
      pr = jnp.where(mask, pr, 0.0)
    l = alpha * l + pr.sum(axis=1)
    acc = alpha[:, None] * acc + _dot(pr.astype(v.dtype), v)
    return acc, m_new, l

  carry = (jnp.zeros((block_q, d), jnp.float32), jnp.full((block_q,), NEG_INF, jnp.float32),
           jnp.zeros((block_q,), jnp.float32))
  carry = lax.fori_loop(lo, a, functools.partial(body, masked=True), carry)
  carry = lax.fori_loop(a, c, functools.partial(body, masked=False), carry)
  acc, m, l = lax.fori_loop(c, hi, functools.partial(body, masked=True), carry)
  # A row that sees no key (kv_len 0, or padding) outputs zeros, as `xla_attention` does.
  o_ref[...] = (acc / jnp.where(l > 0, l, 1.0)[:, None]).astype(o_ref.dtype)
  lse_ref[...] = jnp.where(l > 0, m + jnp.log(jnp.where(l > 0, l, 1.0)), NEG_INF)


def _dq_kernel(qmin_ref, qmax_ref, kvlen_ref, qpos_ref, q_ref, k_ref, v_ref, do_ref, lse_ref,
               delta_ref, dq_ref, *, p: AttnParams, block_k: int, n_kv_blocks: int):
  block_q, d = q_ref.shape
  kv_len = kvlen_ref[()]
  q, do = q_ref[...], do_ref[...]
  lse, delta = lse_ref[...], delta_ref[...]
  q_pos = qpos_ref[...][:, None]
  lo, hi = kv_block_range(qmin_ref[()], qmax_ref[()], kv_len, p, block_k, n_kv_blocks)

  def body(j, dq):
    k = k_ref[pl.ds(j * block_k, block_k), :]
    v = v_ref[pl.ds(j * block_k, block_k), :]
    s = scores(q, k, p)
    kv_pos = j * block_k + lax.broadcasted_iota(jnp.int32, (1, block_k), 1)
    mask = visible(q_pos, kv_pos, kv_len, p)
    pr = jnp.where(mask, jnp.exp(s - lse[:, None]), 0.0)           # (Q, C) softmax
    dp = lax.dot_general(do, v, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32,
                         precision=lax.Precision.HIGHEST if do.dtype == jnp.float32 else None)
    ds = pr * (dp - delta[:, None]) * softcap_grad(s, p)
    return dq + _dot(ds.astype(k.dtype), k)

  dq = lax.fori_loop(lo, hi, body, jnp.zeros((block_q, d), jnp.float32))
  dq_ref[...] = (dq * p.scale).astype(dq_ref.dtype)


def _dkv_kernel(qlo_ref, qhi_ref, kvlen_ref, qpos_ref, q_ref, k_ref, v_ref, do_ref, lse_ref,
                delta_ref, dk_ref, dv_ref, *, p: AttnParams, block_q: int, group: int):
  block_k, d = k_ref.shape
  kv_len = kvlen_ref[()]
  k_first = pl.program_id(0) * block_k
  k, v = k_ref[...], v_ref[...]
  kv_pos = k_first + lax.broadcasted_iota(jnp.int32, (1, block_k), 1)
  # Query tiles [lo, hi) that may hold a query seeing a key of this tile, from each query tile's
  # position bounds (`masking.query_tile_ranges`; empty if the tile is past kv_len).
  lo, hi = qlo_ref[()], qhi_ref[()]

  def body(i, carry, g: int):
    dk, dv = carry
    rows = pl.ds(i * block_q, block_q)
    q = q_ref[rows, g, :]
    do = do_ref[rows, g, :]
    lse, delta = lse_ref[g, rows], delta_ref[g, rows]
    q_pos = qpos_ref[rows][:, None]
    s = scores(q, k, p)                                            # (Q, C)
    mask = visible(q_pos, kv_pos, kv_len, p)
    pr = jnp.where(mask, jnp.exp(s - lse[:, None]), 0.0)
    dv = dv + _dot_t(pr.astype(do.dtype), do)
    dp = lax.dot_general(do, v, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32,
                         precision=lax.Precision.HIGHEST if do.dtype == jnp.float32 else None)
    ds = pr * (dp - delta[:, None]) * softcap_grad(s, p)
    dk = dk + _dot_t(ds.astype(q.dtype), q)
    return dk, dv

  carry = (jnp.zeros((block_k, d), jnp.float32), jnp.zeros((block_k, d), jnp.float32))
  for g in range(group):  # static: the G query heads sharing this kv head
    carry = lax.fori_loop(lo, hi, functools.partial(body, g=g), carry)
  dk, dv = carry
  dk_ref[...] = (dk * p.scale).astype(dk_ref.dtype)
  dv_ref[...] = dv.astype(dv_ref.dtype)


def _scalar_spec():
  return pl.BlockSpec((None,), lambda i, b, h: (b,))


def _tile_scalar_spec():
  """One scalar per (row, tile) of a (B, N) array; grid (tile, b, head)."""
  return pl.BlockSpec((None, None), lambda i, b, h: (b, i))


def _pos_tile_spec(block_q: int):
  """The (Q,) positions of a query tile of the (B, Tp) positions; grid (query tile, b, head)."""
  return pl.BlockSpec((None, block_q), lambda i, b, h: (b, i))


def _forward(q, k, v, q_pos, kv_len, p: AttnParams, cfg: tuple):
  """Padded forward (q_pos (B, Tp) int32): -> (out (B, Tp, H, D), lse (B, H, Tp) float32)."""
  block_q, block_k, num_warps, num_stages, interpret, kv_layout = cfg
  b, tp, h, d = q.shape
  sp, kh = layout.seq_heads(k.shape, kv_layout)
  g = h // kh
  q_min, q_max = tile_bounds(q_pos, block_q)                           # (B, Tp / Q) each
  kv_all = layout.tile_spec(kv_layout, sp, d, lambda i, b_, h_: (b_, lax.div(h_, g), 0))
  kernel = functools.partial(_fwd_kernel, p=p, block_k=block_k, n_kv_blocks=sp // block_k)
  return pl.pallas_call(
      kernel,
      grid=(tp // block_q, b, h),  # query tiles innermost-fastest: programs of one head share K/V in L2
      in_specs=[_tile_scalar_spec(), _tile_scalar_spec(), _scalar_spec(), _pos_tile_spec(block_q),
                pl.BlockSpec((None, block_q, None, d), lambda i, b_, h_: (b_, i, h_, 0)),
                kv_all, kv_all],
      out_specs=[pl.BlockSpec((None, block_q, None, d), lambda i, b_, h_: (b_, i, h_, 0)),
                 pl.BlockSpec((None, None, block_q), lambda i, b_, h_: (b_, h_, i))],
      out_shape=[jax.ShapeDtypeStruct((b, tp, h, d), q.dtype),
                 jax.ShapeDtypeStruct((b, h, tp), jnp.float32)],
      compiler_params=backend.compiler_params(interpret, num_warps=num_warps, num_stages=num_stages),
      interpret=interpret, name="flash_attention_fwd",
  )(q_min, q_max, kv_len, q_pos, q, k, v)


def _backward(q, k, v, q_pos, kv_len, o, lse, do, p: AttnParams, cfg: tuple):
  """Padded backward -> (dq (B, Tp, H, D), dk, dv in k's layout, padded to Sp)."""
  block_q, block_k, num_warps, num_stages, interpret, kv_layout = cfg
  b, tp, h, d = q.shape
  sp, kh = layout.seq_heads(k.shape, kv_layout)
  g = h // kh
  # delta_t = rowsum(dO * O) (FlashAttention-2 Alg. 2 line 4): elementwise, left to XLA.
  delta = jnp.einsum("bthd,bthd->bht", do.astype(jnp.float32), o.astype(jnp.float32))
  cparams = backend.compiler_params(interpret, num_warps=num_warps, num_stages=num_stages)
  q_tile = pl.BlockSpec((None, block_q, None, d), lambda i, b_, h_: (b_, i, h_, 0))
  kv_all = layout.tile_spec(kv_layout, sp, d, lambda i, b_, h_: (b_, lax.div(h_, g), 0))
  row_tile = pl.BlockSpec((None, None, block_q), lambda i, b_, h_: (b_, h_, i))
  q_min, q_max = tile_bounds(q_pos, block_q)                           # (B, Tp / Q) each
  dq = pl.pallas_call(
      functools.partial(_dq_kernel, p=p, block_k=block_k, n_kv_blocks=sp // block_k),
      grid=(tp // block_q, b, h),
      in_specs=[_tile_scalar_spec(), _tile_scalar_spec(), _scalar_spec(), _pos_tile_spec(block_q),
                q_tile, kv_all, kv_all, q_tile, row_tile, row_tile],
      out_specs=q_tile,
      out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
      compiler_params=cparams, interpret=interpret, name="flash_attention_dq",
  )(q_min, q_max, kv_len, q_pos, q, k, v, do, lse, delta)

  q_group = pl.BlockSpec((None, tp, g, d), lambda j, b_, kh_: (b_, 0, kh_, 0))
  kv_tile = layout.tile_spec(kv_layout, block_k, d, lambda j, b_, kh_: (b_, kh_, j))
  row_group = pl.BlockSpec((None, g, tp), lambda j, b_, kh_: (b_, kh_, 0))
  q_lo, q_hi = query_tile_ranges(q_min, q_max, kv_len, p, block_k, sp // block_k)   # (B, Sp / C)
  dk, dv = pl.pallas_call(
      functools.partial(_dkv_kernel, p=p, block_q=block_q, group=g),
      grid=(sp // block_k, b, kh),
      in_specs=[_tile_scalar_spec(), _tile_scalar_spec(), _scalar_spec(),
                pl.BlockSpec((None, tp), lambda j, b_, kh_: (b_, 0)),   # the row's positions
                q_group, kv_tile, kv_tile, q_group, row_group, row_group],
      out_specs=[kv_tile, kv_tile],
      out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)],
      compiler_params=cparams, interpret=interpret, name="flash_attention_dkv",
  )(q_lo, q_hi, kv_len, q_pos, q, k, v, do, lse, delta)
  return dq, dk, dv


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7))
def _flash(q, k, v, q_pos, kv_len, p, cfg, bwd_cfg):
  return _forward(q, k, v, q_pos, kv_len, p, cfg)[0]


def _flash_fwd(q, k, v, q_pos, kv_len, p, cfg, bwd_cfg):
  o, lse = _forward(q, k, v, q_pos, kv_len, p, cfg)
  return o, (q, k, v, q_pos, kv_len, o, lse)


def _flash_bwd(p, cfg, bwd_cfg, res, do):
  q, k, v, q_pos, kv_len, o, lse = res
  # The backward may use other tile sizes than the forward; the padded lengths are shared, so
  # they must divide them (checked when the configs are built).
  dq, dk, dv = _backward(q, k, v, q_pos, kv_len, o, lse, do, p, bwd_cfg)
  return dq, dk, dv, None, None


_flash.defvjp(_flash_fwd, _flash_bwd)


def _check_shapes(q, k, v, q_offset, kv_len, kv_layout: str = "bskd"):
  shapes = (f"q {q.shape}, k {k.shape}, v {v.shape}, q_offset {q_offset.shape}, "
            f"kv_len {kv_len.shape}, kv_layout {kv_layout!r}")
  layout.check(kv_layout, f"({shapes})")
  kv_dims = "(B, S, K, D)" if kv_layout == "bskd" else "(B, K, S, D)"
  if q.ndim != 4 or k.ndim != 4 or k.shape != v.shape:
    raise ValueError(f"expected q (B, T, H, D) and k, v {kv_dims}; got {shapes}")
  b, t, h, d = q.shape
  kh = layout.seq_heads(k.shape, kv_layout)[1]
  if k.shape[0] != b or k.shape[3] != d:
    raise ValueError(f"batch or head dim of q and k differ: {shapes}")
  if h % kh:
    raise ValueError(f"query heads H={h} not divisible by kv heads K={kh}: {shapes}")
  if q_offset.shape not in ((b,), (b, t)) or kv_len.shape != (b,):
    raise ValueError(f"q_offset must have shape (B,)=({b},) (offsets) or (B, T)=({b}, {t}) "
                     f"(positions), kv_len (B,)=({b},): {shapes}")
  return shapes


@functools.partial(jax.jit, static_argnames=("scale", "causal", "softcap", "window", "block_q",
                                             "block_k", "interpret", "kv_layout"))
def flash_attention(q_bthd, k, v, q_offset_b, kv_len_b, *, scale: float,
                    causal: bool = True, softcap: Optional[float] = None,
                    window: Optional[int] = None, block_q: Optional[int] = None,
                    block_k: Optional[int] = None, interpret: Optional[bool] = None,
                    kv_layout: str = "bskd"):
  """Attention of q (B, T, H, D) over k, v -> (B, T, H, D) in q's dtype; k, v are (B, S, K, D)
  for kv_layout 'bskd' or (B, K, S, D) for 'bksd' (a KV cache, read without a transposed copy).

  q_offset (B,) int: absolute position of each row's first query (query t at q_offset[b] + t),
  or (B, T) int: every query's absolute position (any values, contiguous or not); kv_len (B,) int:
  keys written per row (clamped to S). Softmax and accumulation in float32. Differentiable
  (Pallas backward).
  """
  shapes = _check_shapes(q_bthd, k, v, q_offset_b, kv_len_b, kv_layout)
  interpret = backend.resolve_interpret(interpret)
  b, t, h, d = q_bthd.shape
  s = layout.seq_heads(k.shape, kv_layout)[0]
  backend.check_head_dim(d, interpret, shapes)
  if t == 0:
    return jnp.zeros(q_bthd.shape, q_bthd.dtype)
  fwd = backend.default_blocks("flash", d, interpret)
  bwd = backend.default_blocks("flash_bwd", d, interpret)
  bq = block_q or fwd["block_q"]
  bk = block_k or fwd["block_k"]
  bq = min(bq, max(16, pl.next_power_of_2(t)))
  bk = pick_block(s, bk)
  # Tiles are powers of two, so the backward's (smaller or equal) tiles divide the padding too.
  tp, sp = round_up(t, bq), round_up(s, bk)
  bbq, bbk = min(bwd["block_q"], bq), min(bwd["block_k"], bk)
  p = AttnParams(scale=float(scale), causal=causal, softcap=softcap, window=window)
  q = pad_axis(q_bthd, 1, tp)
  ax = layout.seq_axis(kv_layout)
  k, v = pad_axis(k, ax, sp), pad_axis(v, ax, sp)
  q_pos = pad_positions(query_positions(q_offset_b, t), tp)          # (B, Tp) int32
  kv_len = jnp.minimum(kv_len_b.astype(jnp.int32), s)
  cfg = (bq, bk, fwd["num_warps"], fwd["num_stages"], interpret, kv_layout)
  bwd_cfg = (bbq, bbk, bwd["num_warps"], bwd["num_stages"], interpret, kv_layout)
  out = _flash(q, k, v, q_pos, kv_len, p, cfg, bwd_cfg)
  return out[:, :t]
