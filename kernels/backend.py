"""Which Pallas lowering runs the kernels, and the per-backend knobs behind one function each.

The platform is picked automatically from `jax.default_backend()`:
  cpu -> `interpret=True` (a jitted loop over the grid; correct, slow, used by the tests)
  gpu -> Pallas Triton. A `pallas_call` without compiler params goes to Mosaic GPU in current
         JAX, so the Triton params are always passed explicitly (see `_gpu.py`).
  tpu -> not supported yet: `supported()` says so and the model falls back to XLA with a warning.
"""
from __future__ import annotations

from typing import Optional

import jax

# Head dims the GPU kernels are built for: Triton tiles must be powers of two, and 64/128/256
# cover Llama, Qwen and Gemma. Interpret mode takes any head dim (the tiny test models use 16).
GPU_HEAD_DIMS = (64, 128, 256)


def platform() -> str:
  return jax.default_backend()


def supported(plat: Optional[str] = None) -> bool:
  return (plat or platform()) in ("cpu", "gpu")


def resolve_interpret(interpret: Optional[bool]) -> bool:
  """None -> interpret exactly where no compiled lowering exists (the CPU)."""
  return platform() == "cpu" if interpret is None else interpret


def check_head_dim(d: int, interpret: bool, shapes: str):
  if interpret:
    return
  plat = platform()
  if plat == "gpu" and d not in GPU_HEAD_DIMS:
    raise ValueError(f"head dim {d} unsupported by the Pallas GPU kernels (supported: "
                     f"{GPU_HEAD_DIMS}); shapes {shapes}")
  if not supported(plat):
    raise ValueError(f"no compiled Pallas attention for platform {plat!r}; shapes {shapes}")


def compiler_params(interpret: bool, *, num_warps: int, num_stages: int):
  """Compiler params for the platform at hand (None in interpret mode)."""
  if interpret:
    return None
  if platform() == "gpu":
    from kernels import _gpu
    return _gpu.compiler_params(num_warps=num_warps, num_stages=num_stages)
  raise ValueError(f"no compiled Pallas attention for platform {platform()!r}")


def default_blocks(kind: str, d: int, interpret: bool) -> dict:
  """Tile sizes. Interpret mode uses small tiles so CPU tests cross several blocks."""
  if interpret:
    return {"flash": dict(block_q=16, block_k=16, num_warps=4, num_stages=1),
            "flash_bwd": dict(block_q=16, block_k=16, num_warps=4, num_stages=1),
            "decode": dict(block_k=16, splits=4, num_warps=4, num_stages=1)}[kind]
  from kernels import _gpu
  return _gpu.default_blocks(kind, d)
