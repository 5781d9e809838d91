"""The two K/V memory layouts the kernels read, and the BlockSpec of one kv head's key tile in each.

Dimension key: B batch, S key/value positions, K kv heads, D head dim, C rows of a tile.

  'bskd' (B, S, K, D): what the K/V projections produce; training passes K/V this way.
  'bksd' (B, K, S, D): kv-head-major, the KV cache's layout (`critjax.models.decoder.init_cache`).

A kernel program reads one kv head's keys as a (C, D) tile in either layout; only the BlockSpec's
strides differ, so the kernel bodies are layout-free and a 'bksd' cache is read where it lies.
Transposing it to 'bskd' first would copy all of K and V per layer per decode step: more bytes
than the decode kernel itself reads.
"""
from __future__ import annotations

from jax.experimental import pallas as pl

LAYOUTS = ("bskd", "bksd")


def check(layout: str, shapes: str = ""):
  if layout not in LAYOUTS:
    raise ValueError(f"kv_layout={layout!r}; expected one of {LAYOUTS} {shapes}".rstrip())


def seq_axis(layout: str) -> int:
  """Axis of S in a K/V array of this layout."""
  return 1 if layout == "bskd" else 2


def seq_heads(shape: tuple, layout: str) -> tuple:
  """K/V shape -> (S, K)."""
  return (shape[1], shape[2]) if layout == "bskd" else (shape[2], shape[1])


def tile_spec(layout: str, rows: int, d: int, index_map):
  """BlockSpec of a (rows, D) tile of one kv head; `index_map(*grid_ids) -> (b, kv_head, tile)`."""
  if layout == "bskd":
    def bskd(*ids):
      b, h, j = index_map(*ids)
      return b, j, h, 0
    return pl.BlockSpec((None, rows, None, d), bskd)

  def bksd(*ids):
    b, h, j = index_map(*ids)
    return b, h, j, 0
  return pl.BlockSpec((None, None, rows, d), bksd)
