"""The attention mask rule shared by every kernel, and the key-block ranges it implies.

Dimension key: R query rows of a tile, C key columns of a tile.

A query at absolute position p sees key s iff
    s < kv_len            (keys written so far)
    s <= p                (causal; dropped when `causal=False`)
    p - s < window        (sliding-window layers only)
which is `critjax.models.attention.attention_mask` restated for tiles. The block ranges below let a
kernel loop only over key blocks that hold a visible key, so blocks past a row's length or before
its window cost nothing, rather than being loaded and masked.

Query positions are arbitrary (B, T) integers: the mask uses each query's own position, and the
block ranges use only the smallest and largest position of a query tile ([q_first, q_last]
below), which bound every query of the tile whatever their order. For contiguous positions
(offset + arange) these are the tile's first and last position, as before.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Optional

import jax.numpy as jnp
from jax import lax

# Finite "minus infinity": keeps exp(m_old - m_new) finite when every key of a tile is masked,
# so fully masked rows end with l = 0 (and output 0) instead of NaN.
NEG_INF = -1e30


@dataclasses.dataclass(frozen=True)
class AttnParams:
  """Static attention parameters (hashable: they key the jit cache and the custom VJP)."""
  scale: float
  causal: bool = True
  softcap: Optional[float] = None   # Gemma 2: scores -> softcap * tanh(scores / softcap)
  window: Optional[int] = None      # sliding window length

  def __post_init__(self):
    if not (math.isfinite(self.scale) and self.scale > 0):
      raise ValueError(f"scale must be a finite number > 0, got {self.scale}")
    if self.softcap is not None and not (self.softcap > 0 and math.isfinite(self.softcap)):
      raise ValueError(f"softcap must be a finite number > 0 or None (no soft-cap), got "
                       f"{self.softcap}")
    if self.window is not None and (isinstance(self.window, bool)
                                    or not isinstance(self.window, numbers.Integral)
                                    or self.window < 1):
      raise ValueError(f"window must be an int >= 1 or None (no window), got {self.window!r}")


def scores(q_rd, k_cd, p: AttnParams):
  """(R, D), (C, D) -> float32 (R, C) scaled (and soft-capped) logits."""
  prec = lax.Precision.HIGHEST if q_rd.dtype == jnp.float32 else None
  s = lax.dot_general(q_rd, k_cd, (((1,), (1,)), ((), ())), precision=prec,
                      preferred_element_type=jnp.float32) * p.scale
  if p.softcap is not None:
    s = jnp.tanh(s / p.softcap) * p.softcap
  return s


def softcap_grad(s_capped, p: AttnParams):
  """d capped / d raw = 1 - tanh^2, written with the capped scores (1 if no cap)."""
  if p.softcap is None:
    return 1.0
  t = s_capped / p.softcap
  return 1.0 - t * t


def visible(q_pos_r1, kv_pos_1c, kv_len, p: AttnParams):
  """(R, 1) query positions, (1, C) key positions, scalar length -> bool (R, C)."""
  m = kv_pos_1c < kv_len
  if p.causal:
    m = m & (kv_pos_1c <= q_pos_r1)
  if p.window is not None:
    m = m & (q_pos_r1 - kv_pos_1c < p.window)
  return m


def div(a, b: int):
  """Division of a non-negative int32 scalar/array by a static int, as `lax.div` (truncating, so
  equal to floor here): Python's `//` lowers to extra sign fix-ups that Triton handled badly."""
  return lax.div(jnp.asarray(a, jnp.int32), jnp.int32(b))


def kv_block_range(q_first, q_last, kv_len, p: AttnParams, block_k: int, n_blocks: int):
  """Key blocks [lo, hi) that hold a key visible to some query in positions [q_first, q_last]."""
  end = kv_len if not p.causal else jnp.minimum(kv_len, q_last + 1)
  hi = jnp.clip(div(jnp.maximum(end, 0) + block_k - 1, block_k), 0, n_blocks)
  lo = 0
  if p.window is not None:
    lo = jnp.clip(div(jnp.maximum(q_first - p.window + 1, 0), block_k), 0, hi)
  return jnp.asarray(lo, jnp.int32), jnp.asarray(hi, jnp.int32)


def full_block_range(q_first, q_last, kv_len, p: AttnParams, block_k: int, lo, hi):
  """Blocks [a, c) within [lo, hi) whose every key is visible to every query of [q_first, q_last],
  so the loop over them can skip the mask arithmetic."""
  end = kv_len if not p.causal else jnp.minimum(kv_len, q_first + 1)
  c = jnp.clip(div(jnp.maximum(end, 0), block_k), lo, hi)
  a = lo
  if p.window is not None:  # first key s0 must satisfy q_last - s0 < window
    a = jnp.clip(div(jnp.maximum(q_last - p.window + block_k, 0), block_k), lo, hi)
  a = jnp.minimum(a, c)
  return jnp.asarray(a, jnp.int32), jnp.asarray(c, jnp.int32)


def query_positions(q_pos, t: int):
  """(B,) offsets (queries at offset + arange(T)) or (B, T) positions -> (B, T) int32 positions."""
  q_pos = jnp.asarray(q_pos, jnp.int32)
  if q_pos.ndim == 1:
    return q_pos[:, None] + jnp.arange(t, dtype=jnp.int32)[None, :]
  return q_pos


def pad_positions(q_pos_bt, size: int):
  """Pad (B, T) positions to (B, size) by repeating each row's last position, so padded query rows
  (whose outputs are dropped) widen no tile's [min, max] position range."""
  t = q_pos_bt.shape[1]
  if t == size:
    return q_pos_bt
  return jnp.pad(q_pos_bt, ((0, 0), (0, size - t)), mode="edge")


def tile_bounds(q_pos_bt, block: int):
  """(B, N * block) positions -> ((B, N) smallest, (B, N) largest) position of each query tile."""
  b, n = q_pos_bt.shape
  tiles = q_pos_bt.reshape(b, n // block, block)
  return tiles.min(axis=2), tiles.max(axis=2)


def query_tile_ranges(q_min_bn, q_max_bn, kv_len_b, p: AttnParams, block_k: int, n_kv_blocks: int):
  """For each (row, key tile): query tiles [lo, hi) (B, n_kv_blocks) int32 that may hold a query
  seeing a key of the tile, from each query tile's position bounds. A tile inside [lo, hi) that
  sees nothing (possible only for unsorted positions) is masked to zero by the kernel."""
  n_q = q_min_bn.shape[1]
  k_first = (jnp.arange(n_kv_blocks, dtype=jnp.int32) * block_k)[None, None, :]   # (1, 1, NK)
  sees = k_first < kv_len_b[:, None, None]                                         # (B, 1, NK)
  if p.causal:      # some query at or after the tile's first key
    sees = sees & (k_first <= q_max_bn[:, :, None])
  if p.window is not None:  # some query within the window of the tile's last key
    sees = sees & (q_min_bn[:, :, None] - (k_first + block_k - 1) < p.window)
  sees = jnp.broadcast_to(sees, (q_min_bn.shape[0], n_q, n_kv_blocks))
  some = sees.any(axis=1)
  lo = jnp.where(some, jnp.argmax(sees, axis=1), 0)
  hi = jnp.where(some, n_q - jnp.argmax(sees[:, ::-1], axis=1), 0)
  return lo.astype(jnp.int32), hi.astype(jnp.int32)


def round_up(n: int, m: int) -> int:
  return (n + m - 1) // m * m


def pad_axis(x, axis: int, size: int):
  """Zero-pad `axis` of x to `size` (zeros, so padded keys/values contribute exactly nothing)."""
  if x.shape[axis] == size:
    return x
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, size - x.shape[axis])
  return jnp.pad(x, widths)


def pick_block(n: int, preferred: int, minimum: int = 16) -> int:
  """The largest power of two <= preferred that divides n (so no copy is needed to pad), else
  the smallest power of two >= min(n, preferred) (and the caller pads)."""
  b = preferred
  while b >= minimum:
    if n % b == 0:
      return b
    b //= 2
  return max(minimum, min(preferred, 1 << max(0, (n - 1).bit_length())))

