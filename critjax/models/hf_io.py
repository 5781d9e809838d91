"""Import and export Hugging Face checkpoints (config.json + *.safetensors) as critjax parameters.

Import streams: every shard's header is read and checked against the expected tensor list first
(names, shapes, dtypes, shard files, and each file's size against what its header says), so a bad
directory, or a truncated shard or torn JSON file, fails naming the file before any weight is read; then
each tensor is read alone, converted to critjax layout and dtype, and placed on its sharding.
Host memory peaks at about two copies of the largest tensor (the read and its transposed,
cast copy), never the whole model. With a `shardings` tree, each device receives only its slice
(`jax.make_array_from_callback`); every host still reads whole tensors, which is simple and fine
for checkpoints on a local or network disk.

Export gathers one tensor at a time to the host and writes shards of at most `max_shard_bytes`
with an index file, the layout `save_pretrained` writes, so `from_pretrained` loads it.
torch and transformers are never imported here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

import jax
import ml_dtypes
import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from critjax.files import read_json_object, write_atomic
from critjax.models import families
from critjax.models.config import ModelConfig

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
# safetensors dtype codes that map onto float parameters; quantized or integer weights are refused.
_FLOAT_CODES = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16, "F64": np.float64}


class CheckpointError(ValueError):
  """A checkpoint directory that does not match the model it claims to hold."""


def _read_json_object(f: Path) -> dict:
  return read_json_object(f, CheckpointError)


def read_hf_config(path: str | Path) -> dict:
  f = Path(path) / "config.json"
  if not f.exists():
    raise CheckpointError(f"{f} not found: not a Hugging Face model directory")
  return _read_json_object(f)


def _shard_files(path: Path) -> list[Path]:
  """The safetensors files of a checkpoint: from the index when present, else model.safetensors."""
  index = path / INDEX_FILE
  if index.exists():
    weight_map = _read_json_object(index).get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
      raise CheckpointError(f"{index}: no 'weight_map' object of tensor name -> shard file name")
    files = sorted(set(weight_map.values()))
    missing = [f for f in files if not (path / f).is_file()]
    if missing:
      more = f" ({len(missing)} of {len(files)} shards missing: {missing})" if len(missing) > 1 else ""
      raise CheckpointError(f"{path / missing[0]}: shard file named in {INDEX_FILE} not found{more}")
    return [path / f for f in files]
  if (path / SINGLE_FILE).exists():
    return [path / SINGLE_FILE]
  found = sorted(p.name for p in path.glob("*.safetensors"))
  if found:
    raise CheckpointError(f"{path}: safetensors files {found} but no {INDEX_FILE} to say which tensors they hold")
  raise CheckpointError(f"{path}: no {SINGLE_FILE} or {INDEX_FILE} (only safetensors checkpoints are read)")


def _check_file_size(file: Path) -> None:
  """A safetensors file is an 8-byte header length, a JSON header whose `data_offsets` place every
  tensor, then exactly those bytes: its size is known from the header alone, so a truncated (or
  overlong) file is caught here, naming it, before any tensor is read."""
  bad = f"{file}: truncated or corrupt safetensors file"
  size = file.stat().st_size
  with open(file, "rb") as fh:
    n = int.from_bytes(fh.read(8), "little")
    if size < 8:
      raise CheckpointError(f"{bad} ({size} bytes, less than its 8-byte header length)")
    if n > size - 8:
      raise CheckpointError(f"{bad} (header length says {n} bytes, file has {size - 8} after it)")
    raw = fh.read(n)
  try:
    header = json.loads(raw)
    data = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
  except (ValueError, TypeError, KeyError, IndexError, AttributeError):
    raise CheckpointError(f"{bad} (its {n}-byte header is not a valid safetensors header)") from None
  if size - 8 - n != data:
    raise CheckpointError(f"{bad} (header says {data} bytes of tensors, file has {size - 8 - n})")


def _headers(files: list[Path]) -> dict[str, tuple[Path, tuple, str]]:
  """tensor name -> (file, shape, dtype code), reading headers only; every file's size is checked
  against its header first."""
  for file in files:
    _check_file_size(file)
  out = {}
  for file in files:
    try:
      with safe_open(str(file), framework="np") as f:
        for name in f.keys():
          sl = f.get_slice(name)
          out[name] = (file, tuple(sl.get_shape()), sl.get_dtype())
    except SafetensorError as e:
      raise CheckpointError(f"{file}: corrupt safetensors file ({e})") from None
  return out


def _check(specs: list[families.TensorSpec], found: dict, cfg: ModelConfig, path: Path) -> None:
  want = {s.hf_name: s for s in specs}
  missing = [n for n in want if n not in found]
  if missing:
    raise CheckpointError(f"{path}: missing tensor(s) {missing[:8]}{' ...' if len(missing) > 8 else ''} "
                          f"expected by config.json")
  # A tied checkpoint may still carry its lm_head copy; it is the embedding and is skipped.
  extra = [n for n in found if n not in want and not (cfg.tie_embeddings and n == "lm_head.weight")]
  if extra:
    raise CheckpointError(f"{path}: unexpected tensor(s) {extra[:8]}{' ...' if len(extra) > 8 else ''} "
                          "that config.json does not account for")
  for name, spec in want.items():
    file, shape, code = found[name]
    if shape != spec.hf_shape:
      raise CheckpointError(f"{path}: tensor {name!r} in {file.name} has shape {shape}; config.json implies "
                            f"{spec.hf_shape}")
    if code not in _FLOAT_CODES:
      raise CheckpointError(f"{path}: tensor {name!r} in {file.name} has dtype {code}; expected one of "
                            f"{sorted(_FLOAT_CODES)} (quantized checkpoints are not supported)")


def _place(x: np.ndarray, sharding) -> jax.Array:
  if sharding is None:
    return jax.device_put(x)
  return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


def import_hf(path: str | Path, *, shardings: Any = None, **cfg_overrides) -> tuple[dict, ModelConfig]:
  """HF model directory -> (params, ModelConfig).

  `shardings`: optional pytree of `jax.sharding.Sharding` matching the params tree (e.g. from
  `critjax.sharding`); each tensor goes straight onto its sharding. `cfg_overrides`: non-shape
  ModelConfig fields such as `param_dtype='bfloat16'`, `dtype`, `attention_impl`, `remat`, and
  `scalar_head=True`, which adds a freshly initialised scalar head (`add_fresh_scalar_head`).
  Raises CheckpointError naming the tensor or shard on any mismatch, before reading weights.
  """
  path = Path(path)
  cfg, fam = families.config_from_hf(read_hf_config(path), **cfg_overrides)
  specs = families.tensor_specs(cfg, fam)
  found = _headers(_shard_files(path))
  _check(specs, found, cfg, path)
  target = np.dtype(cfg.param_dtype) if cfg.param_dtype != "bfloat16" else np.dtype(ml_dtypes.bfloat16)

  params: dict = {}
  by_file: dict[Path, list[families.TensorSpec]] = {}
  for spec in specs:
    by_file.setdefault(found[spec.hf_name][0], []).append(spec)
  for file, file_specs in by_file.items():
    with safe_open(str(file), framework="np") as f:
      for spec in file_specs:
        try:
          x = f.get_tensor(spec.hf_name)
        except SafetensorError as e:   # e.g. the file changed after its header was checked
          raise CheckpointError(f"{file}: cannot read tensor {spec.hf_name!r} ({e})") from None
        x = x.astype(target, copy=False)   # cast while contiguous: fast
        # Transpose through a same-width unsigned view: numpy's strided copy of ml_dtypes'
        # bfloat16 takes a slow generic path (1.5x the whole bf16 load on a 1B model).
        bits = np.dtype(f"u{target.itemsize}")
        x = np.ascontiguousarray(families.to_critjax(x.view(bits), spec).view(target))
        sharding = None if shardings is None else families.get_path(shardings, spec.path)
        families.set_path(params, spec.path, _place(x, sharding))
        del x
  return add_fresh_scalar_head(params, cfg, shardings), cfg


def add_fresh_scalar_head(params: dict, cfg: ModelConfig, shardings: Any = None) -> dict:
  """With cfg.scalar_head (an import for a meta RM, `scalar_head=True` among the overrides), adds the
  head a checkpoint cannot hold, initialised as `decoder.init_params` does (zeros); else no change."""
  if cfg.scalar_head:
    from critjax.models.decoder import fresh_scalar_head
    params["scalar_head"] = {k: _place(v, None if shardings is None else shardings["scalar_head"][k])
                             for k, v in fresh_scalar_head(cfg).items()}
  return params


def _to_host(x) -> np.ndarray:
  """One parameter as a full host array; on a multi-host mesh every process gathers its shards."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(jax.device_get(x))


def export_hf(params: Any, cfg: ModelConfig, path: str | Path, *, family: str,
              base_config: Optional[dict] = None, dtype: Optional[str] = None,
              max_shard_bytes: int = 5 * 2**30) -> Path:
  """critjax params -> HF model directory (config.json + safetensors shards) that transformers loads.

  `family`: HF model_type ('llama', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'gemma3_text').
  `base_config`: a config.json dict whose other fields (token ids, max positions) are kept.
  `dtype`: storage dtype (default cfg.param_dtype). Tensors are gathered one at a time; each shard is
  held in host memory while written. Every file is written to a temporary name and renamed, and
  config.json comes last, so an interrupted export leaves no torn file and no config.json.
  """
  if cfg.scalar_head:
    raise ValueError("model.scalar_head=True: the scalar head has no Hugging Face counterpart; to export the "
                     "language model without it, pass cfg=dataclasses.replace(cfg, scalar_head=False)")
  path = Path(path)
  path.mkdir(parents=True, exist_ok=True)
  fam = families.FAMILIES.get(family)
  dtype = dtype or cfg.param_dtype
  np_dtype = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
  specs = families.tensor_specs(cfg, fam)
  for spec in specs:
    leaf = families.get_path(params, spec.path)
    if tuple(leaf.shape) != spec.shape:
      raise CheckpointError(f"params{list(spec.path)} has shape {tuple(leaf.shape)}; cfg implies {spec.shape}")

  # Plan shards from shapes alone so file names (…-of-N) are known before writing.
  shards, size = [[]], 0
  for spec in specs:
    nbytes = int(np.prod(spec.shape)) * np_dtype.itemsize
    if shards[-1] and size + nbytes > max_shard_bytes:
      shards.append([])
      size = 0
    shards[-1].append(spec)
    size += nbytes
  n = len(shards)
  names = [SINGLE_FILE] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
  weight_map, total = {}, 0
  for name, shard in zip(names, shards):
    tensors = {}
    for spec in shard:
      x = _to_host(families.get_path(params, spec.path))
      x = x.astype(np_dtype, copy=False)
      bits = np.dtype(f"u{np_dtype.itemsize}")   # see import_hf: fast strided copy of bfloat16
      tensors[spec.hf_name] = np.ascontiguousarray(families.to_hf(x.view(bits), spec).view(np_dtype))
      weight_map[spec.hf_name] = name
      total += tensors[spec.hf_name].nbytes
    if jax.process_index() == 0:   # every process gathers (a collective); one writes
      tmp = path / (name + ".tmp")
      save_file(tensors, str(tmp), metadata={"format": "pt"})
      os.replace(tmp, path / name)
    del tensors
  if jax.process_index() != 0:
    return path
  if n > 1:
    write_atomic(path / INDEX_FILE, json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map},
                                              indent=2))
  elif (path / INDEX_FILE).exists():
    (path / INDEX_FILE).unlink()   # an earlier sharded export's index would be read instead of model.safetensors
  hf = families.config_to_hf(cfg, fam, base_config, dtype=dtype)
  write_atomic(path / "config.json", json.dumps(hf, indent=2, sort_keys=True))
  return path
