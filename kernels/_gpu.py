"""GPU (Pallas Triton) specifics: compiler params and tile sizes.

Tile sizes follow the usual FlashAttention-2 choices for sm80/sm90 with a register budget of
(block_q x D) float32 accumulators per program: smaller key tiles for D = 256.
"""
from __future__ import annotations

from jax.experimental.pallas import triton as plgpu

# Programs wanted in flight for decode: about 4 waves of an H100's 132 SMs.
DECODE_TARGET_PROGRAMS = 528


def compiler_params(*, num_warps: int, num_stages: int):
  return plgpu.CompilerParams(num_warps=num_warps, num_stages=num_stages)


def default_blocks(kind: str, d: int) -> dict:
  if kind == "flash":
    return dict(block_q=128 if d <= 128 else 64, block_k=64 if d <= 128 else 32,
                num_warps=4 if d <= 64 else 8, num_stages=2)
  if kind == "flash_bwd":
    return dict(block_q=64 if d <= 128 else 32, block_k=64 if d <= 128 else 32,
                num_warps=4 if d <= 64 else 8, num_stages=2)
  if kind == "decode":
    return dict(block_k=128 if d <= 128 else 64, splits=None, num_warps=4, num_stages=2)
  raise ValueError(kind)
