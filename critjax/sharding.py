"""Device mesh and logical-axis sharding rules (the pjit model: `jax.jit` + `NamedSharding`).

Parameters carry logical axis names ('embed', 'heads', ...) from the model; `LOGICAL_RULES` maps each
name to mesh axes. A dimension that a mesh axis does not divide stays replicated on that axis, so one
rule set serves any mesh shape (a 2-kv-head model on a 4-way tensor axis replicates its K/V weights).
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")

# logical name -> mesh axes (tuple: shard over their product). Order matters only for readability.
LOGICAL_RULES: tuple[tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("activation_batch", ("data", "fsdp")),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("mlp", "tensor"),
    ("activation_mlp", "tensor"),
    ("head_dim", None),
    ("norm", None),
    ("length", None),
    ("activation_length", None),
    ("activation_embed", None),
)


@dataclasses.dataclass(frozen=True)
class MeshConfig:
  data: int = -1        # -1: whatever is left after fsdp * tensor
  fsdp: int = 1
  tensor: int = 1
  distributed: bool = False   # call jax.distributed.initialize() first (multi-host pods)

  def shape(self, n_devices: int) -> tuple[int, int, int]:
    fixed = self.fsdp * self.tensor
    data = self.data if self.data != -1 else n_devices // fixed
    if data * fixed != n_devices or min(data, self.fsdp, self.tensor) < 1:
      raise ValueError(f"mesh data={self.data} fsdp={self.fsdp} tensor={self.tensor} does not fit "
                       f"{n_devices} devices")
    return data, self.fsdp, self.tensor


def make_mesh(cfg: MeshConfig = MeshConfig(), devices: Optional[Sequence[Any]] = None) -> Mesh:
  """A (data, fsdp, tensor) mesh over all devices of all hosts (after `jax.distributed.initialize`)."""
  if cfg.distributed and jax.process_count() == 1 and devices is None:
    jax.distributed.initialize()
  devices = list(devices if devices is not None else jax.devices())
  shape = cfg.shape(len(devices))
  try:
    from jax.experimental import mesh_utils
    arr = mesh_utils.create_device_mesh(shape, devices=devices)
  except Exception:  # CPU fake devices or unusual topologies: plain reshape
    arr = np.array(devices).reshape(shape)
  # Plain Mesh (Auto axis types): `jax.make_mesh` now defaults to Explicit axes, see NOTES.md.
  return Mesh(arr, MESH_AXES)


def _resolve(axis_name, dim: int, mesh: Mesh, rules: dict, used: set):
  target = rules.get(axis_name) if axis_name is not None else None
  if target is None:
    return None
  names = (target,) if isinstance(target, str) else tuple(target)
  kept = []
  for n in names:
    size = mesh.shape[n]
    if n in used or size == 1:
      continue
    if dim % (math.prod(mesh.shape[k] for k in kept) * size) == 0:
      kept.append(n)
  used.update(kept)
  if not kept:
    return None
  return kept[0] if len(kept) == 1 else tuple(kept)


def logical_spec(axes: tuple, shape: tuple, mesh: Mesh, rules=LOGICAL_RULES) -> P:
  """Logical axis names of one array -> PartitionSpec, replicating dims a mesh axis does not divide."""
  rules = dict(rules)
  used: set = set()
  return P(*[_resolve(a, d, mesh, rules, used) for a, d in zip(axes, shape)])


def tree_shardings(axes_tree, shapes_tree, mesh: Mesh, rules=LOGICAL_RULES):
  """Pytrees of logical axes and shapes (arrays or ShapeDtypeStructs) -> pytree of NamedSharding."""
  is_axes = lambda x: isinstance(x, tuple) and all(isinstance(a, (str, type(None))) for a in x)
  return jax.tree.map(lambda axes, x: NamedSharding(mesh, logical_spec(axes, x.shape, mesh, rules)),
                      axes_tree, shapes_tree, is_leaf=is_axes)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Leading dimension over (data, fsdp); the rest replicated."""
  return NamedSharding(mesh, P(("data", "fsdp"), *([None] * (ndim - 1))))


def cache_shardings(cache, mesh: Mesh):
  """KV cache (B, K, S, E) per layer: batch over (data, fsdp), kv heads over tensor where divisible."""
  return jax.tree.map(lambda x: NamedSharding(
      mesh, logical_spec(("batch", "kv_heads", "length", "head_dim"), x.shape, mesh)), cache)


def shard_batch(tree, mesh: Mesh):
  """Place host arrays with their leading (batch) dim split over (data, fsdp)."""
  def put(x):
    x = np.asarray(x) if not isinstance(x, jax.Array) else x
    n = mesh.shape["data"] * mesh.shape["fsdp"]
    if x.ndim == 0 or x.shape[0] % n:
      return jax.device_put(x, replicated(mesh))
    return jax.device_put(x, batch_sharding(mesh, x.ndim))
  return jax.tree.map(put, tree)


def log_mesh(mesh: Mesh):
  logging.info("mesh %s over %d devices (%s)", dict(mesh.shape), mesh.size, jax.default_backend())
