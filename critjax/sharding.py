"""Device mesh and logical-axis sharding rules (the pjit model: `jax.jit` + `NamedSharding`).

Parameters carry logical axis names ('embed', 'heads', ...) from the model; `LOGICAL_RULES` maps each
name to mesh axes. A dimension that a mesh axis does not divide stays replicated on that axis, so one
rule set serves any mesh shape (a 2-kv-head model on a 4-way tensor axis replicates its K/V weights).

Several processes (hosts, or `experiments/launch_local.py`'s local processes) form one mesh over all
their devices when `config.mesh.distributed=True`: `initialize_distributed` joins them from the
CRITJAX_* environment variables (or JAX's own detection on a TPU pod or under SLURM), with a bounded
wait and an error that names the coordinator.
"""
from __future__ import annotations

import dataclasses
import errno
import functools
import logging
import math
import os
import socket
import time
from typing import Any, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor")

# How processes find each other (read by initialize_distributed; set by experiments/launch_local.py
# and the pod recipes in the README). Without ENV_COORDINATOR, JAX detects a TPU pod or SLURM itself.
ENV_COORDINATOR = "CRITJAX_COORDINATOR"          # host:port of process 0's coordination service
ENV_NUM_PROCESSES = "CRITJAX_NUM_PROCESSES"
ENV_PROCESS_ID = "CRITJAX_PROCESS_ID"
ENV_LOCAL_DEVICES = "CRITJAX_LOCAL_DEVICE_IDS"   # comma-separated: one process per GPU
ENV_INIT_TIMEOUT = "CRITJAX_INIT_TIMEOUT"        # seconds for every process to join
DEFAULT_INIT_TIMEOUT_S = 300                     # jax.distributed.initialize's own default

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
  distributed: bool = False   # join the other processes first (initialize_distributed)

  def shape(self, n_devices: int) -> tuple[int, int, int]:
    fixed = self.fsdp * self.tensor
    data = self.data if self.data != -1 else n_devices // fixed
    if data * fixed != n_devices or min(data, self.fsdp, self.tensor) < 1:
      where = (f"{n_devices} devices" if jax.process_count() == 1 else
               f"{n_devices} devices ({jax.process_count()} processes x {jax.local_device_count()})")
      raise ValueError(f"config.mesh data={self.data} fsdp={self.fsdp} tensor={self.tensor} does not fit {where}")
    return data, self.fsdp, self.tensor


def _env_int(name: str) -> int:
  try:
    return int(os.environ[name])
  except (KeyError, ValueError):
    raise ValueError(f"{ENV_COORDINATOR}={os.environ[ENV_COORDINATOR]!r} is set, so {name} must be an "
                     f"integer (got {os.environ.get(name)!r})") from None


def _wait_for_port(host: str, port: int, timeout_s: float) -> bool:
  """Whether host:port accepts a TCP connection within timeout_s (retried: process 0 may start later)."""
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      with socket.create_connection((host, port), timeout=max(0.1, min(2.0, deadline - time.monotonic()))):
        return True
    except OSError:
      if time.monotonic() >= deadline:
        return False
      time.sleep(0.2)


def initialize_distributed():
  """Joins this process to the others (`jax.distributed.initialize`), before any JAX computation.

  With CRITJAX_COORDINATOR=host:port, CRITJAX_NUM_PROCESSES and CRITJAX_PROCESS_ID set (the local
  launcher, SLURM recipe), those; otherwise JAX's cluster detection (TPU pod, SLURM, ...). Every
  process waits at most CRITJAX_INIT_TIMEOUT seconds. JAX aborts the process (an uncatchable C++
  CHECK) when the coordinator cannot be reached, so the coordinator is probed here first: process 0
  checks it can bind the address, the others that it answers within the timeout; either failure
  is a ConnectionError naming the address. Process 0 still aborts, after the timeout, when a peer
  never joins (logged before it waits)."""
  if jax.distributed.is_initialized():
    return
  timeout = int(os.environ.get(ENV_INIT_TIMEOUT, DEFAULT_INIT_TIMEOUT_S))
  address = os.environ.get(ENV_COORDINATOR)
  if not address:
    jax.distributed.initialize(initialization_timeout=timeout)
    return
  n, pid = _env_int(ENV_NUM_PROCESSES), _env_int(ENV_PROCESS_ID)
  if not 0 <= pid < n:
    raise ValueError(f"{ENV_PROCESS_ID}={pid} is not in [0, {ENV_NUM_PROCESSES}={n})")
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit():
    raise ValueError(f"{ENV_COORDINATOR}={address!r}: expected host:port")
  host = host.strip("[]")
  where = f"process {pid} of {n}, coordinator {address} ({ENV_COORDINATOR})"
  if pid == 0:      # the coordination service runs here: its address must be this machine's, its port free
    try:
      with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, int(port)))
    except OSError as e:
      why = {errno.EADDRINUSE: "the port is in use", errno.EADDRNOTAVAIL: "not an address of this machine"}
      raise ConnectionError(f"{where}: cannot serve the coordinator there: {why.get(e.errno, e)}") from None
  elif not _wait_for_port(host, int(port), timeout):
    raise ConnectionError(f"{where}: no coordinator answered within {timeout} s ({ENV_INIT_TIMEOUT}); start "
                          f"process 0 first, or check the address and port") from None
  local = os.environ.get(ENV_LOCAL_DEVICES)
  logging.warning("%s: waiting up to %d s for all %d processes to join", where, timeout, n)
  jax.distributed.initialize(address, n, pid, initialization_timeout=timeout,
                             local_device_ids=[int(i) for i in local.split(",")] if local else None)


def check_single_process(cfg: MeshConfig):
  """A process started by a launcher (CRITJAX_NUM_PROCESSES > 1) with mesh.distributed=False would train
  alone and write the same workdir as its peers: refused before any compute."""
  n = os.environ.get(ENV_NUM_PROCESSES)
  if not cfg.distributed and n not in (None, "", "1"):
    raise ValueError(f"{ENV_NUM_PROCESSES}={n} in the environment but config.mesh.distributed=False: "
                     f"set --config.mesh.distributed=True so the processes form one mesh")


def make_mesh(cfg: MeshConfig = MeshConfig(), devices: Optional[Sequence[Any]] = None) -> Mesh:
  """A (data, fsdp, tensor) mesh over all devices of all processes (joined first when cfg.distributed).
  jax.devices() lists process 0's devices first, so the mesh's leading axes split by process."""
  check_single_process(cfg)
  if cfg.distributed and devices is None:
    initialize_distributed()
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


def with_activation_sharding(fn, mesh: Mesh, rules=LOGICAL_RULES):
  """`fn`, traced with the model's activation constraints in force (to jit: `jax.jit(with_activation_sharding(f, mesh))`).

  The decoder marks its activations with logical axes (nn.with_logical_constraint: rows over
  'activation_batch', the MLP's hidden over 'activation_mlp'); flax makes those no-ops unless logical
  rules and a mesh are in context when the function is traced. Without them XLA picks the layout
  itself, and for an fsdp-sharded model it kept activations split over d_model with every row on
  every device: Qwen2.5-1.5B's update held whole (16, 1536, 151936) float32 logits per device
  (experiments/memory_report.py). Only the trace sees the rules: nothing global is set."""
  @functools.wraps(fn)
  def traced(*args, **kwargs):
    import flax.linen as nn
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh), nn.logical_axis_rules(rules):
      return fn(*args, **kwargs)
  return traced


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
  """Place host arrays with their leading (batch) dim split over (data, fsdp). Over several processes
  every process holds the same whole host array and places the rows of its own devices."""
  def put(x):
    x = np.asarray(x) if not isinstance(x, jax.Array) else x
    n = mesh.shape["data"] * mesh.shape["fsdp"]
    if x.ndim == 0 or x.shape[0] % n:
      return jax.device_put(x, replicated(mesh))
    return jax.device_put(x, batch_sharding(mesh, x.ndim))
  return jax.tree.map(put, tree)


def is_primary() -> bool:
  """Process 0 writes the run's files (config.json, tokenizer, metrics, TensorBoard); every process saves
  its shards of a checkpoint (orbax coordinates them)."""
  return jax.process_index() == 0


def sync_processes(name: str):
  """A barrier over all processes (nothing with one)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def _allgather(x: np.ndarray) -> np.ndarray:
  """(P, *x.shape): every process's `x` (same shape and dtype on all), exact for any 4-byte-multiple dtype
  (sent as uint32, so float64 survives JAX's 32-bit default)."""
  from jax.experimental import multihost_utils
  x = np.ascontiguousarray(x)
  words = x.reshape(-1).view(np.uint32) if x.size else np.zeros((0,), np.uint32)
  out = np.asarray(multihost_utils.process_allgather(words))
  return out.view(x.dtype).reshape((jax.process_count(),) + x.shape)


def process_max(value: int) -> int:
  """The largest of every process's `value` (a stop request seen by any one process stops them all)."""
  if jax.process_count() == 1:
    return value
  return int(_allgather(np.asarray([value], np.int32)).max())


def process_share_map(fn, *seqs, dtype=np.float32) -> np.ndarray:
  """fn(*seqs) -> (N,) numbers, computed as each process's contiguous share of the N items, gathered.

  For host-side work that costs per item (rewards: a verifier, code execution), so P processes each
  do 1/P of it; every process gets the whole (N,) result as `dtype` (exactly: see _allgather). A
  failure on any process is raised on every process (its own exception where it failed), so none
  waits in the gather for ever."""
  n, procs = len(seqs[0]), jax.process_count()
  if procs == 1:
    return np.asarray(fn(*seqs), dtype)
  share = -(-n // procs)
  lo = min(jax.process_index() * share, n)
  hi = min(lo + share, n)
  buf, error = np.zeros((share + 1,), dtype), None     # the last entry: 1 = this process's share is in
  try:
    if hi > lo:
      buf[:hi - lo] = np.asarray(fn(*(s[lo:hi] for s in seqs)), dtype).reshape(hi - lo)
    buf[-1] = 1
  except Exception as e:  # raised below, after the gather every process takes part in
    error = e
  gathered = _allgather(buf)
  if error is not None:
    raise error
  if not (gathered[:, -1] == 1).all():
    failed = np.nonzero(gathered[:, -1] != 1)[0].tolist()
    raise RuntimeError(f"{getattr(fn, '__qualname__', fn)} failed on process(es) {failed}")
  return gathered[:, :-1].reshape(-1)[:n]


def to_host(x) -> np.ndarray:
  """A jax.Array as one NumPy array on every process (gathered when its shards span processes)."""
  if not isinstance(x, jax.Array) or x.is_fully_addressable or x.is_fully_replicated:
    return np.asarray(x)
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def log_mesh(mesh: Mesh):
  logging.info("mesh %s over %d devices (%s, %d processes)", dict(mesh.shape), mesh.size, jax.default_backend(),
               jax.process_count())
