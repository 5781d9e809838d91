"""Orbax checkpoints of the whole TrainState, and the workdir guard against mixing experiments.

A workdir holds `config.json`. Starting a run on a workdir whose config differs in anything but the
`train` section (step counts, logging, checkpoint cadence) stops with the differing fields named,
before any compute and without touching the checkpoints already there.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp

from critjax.config import ExperimentConfig
from critjax.files import write_atomic

# Sections of the config a resumed run may change (how long, how often) without being another experiment.
RESUMABLE_SECTIONS = ("train",)


def _diff(a: Any, b: Any, path: str) -> list[str]:
  if isinstance(a, dict) and isinstance(b, dict):
    out = []
    for k in sorted(set(a) | set(b)):
      out += _diff(a.get(k, "<missing>"), b.get(k, "<missing>"), f"{path}.{k}")
    return out
  return [] if a == b else [f"{path}: {a!r} (workdir) != {b!r} (this run)"]


def _with_defaults(saved: dict, defaults: dict) -> dict:
  out = dict(saved)
  for k, v in defaults.items():
    if k not in out:
      out[k] = v
    elif isinstance(v, dict) and v and isinstance(out[k], dict):
      out[k] = _with_defaults(out[k], v)
  return out


def check_workdir(workdir: Path, config_json: str, *, write: bool = True) -> bool:
  """Checks an existing workdir holds the same experiment; writes config.json (atomically) when `write`.

  Returns True when the workdir already held a matching config (a resume). The trainer checks
  first and writes only once the run has started, so a config that fails validation (or a start
  that fails) leaves nothing behind that would block its corrected rerun. A workdir holding
  checkpoints but no config.json is refused: they are not this run's to resume from or delete."""
  path = workdir / "config.json"
  new = json.loads(config_json)
  if not path.exists():
    ckpts = workdir / "checkpoints"
    if ckpts.is_dir() and any(ckpts.iterdir()):
      raise ValueError(f"{ckpts} holds checkpoints but {path} is missing: not a run this config can resume "
                       f"(nothing was changed); use a new --workdir")
    if write:
      write_atomic(path, config_json)
    return False
  try:
    saved = json.loads(path.read_text())
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON ({e}); nothing was changed") from None
  # A field the workdir's config lacks was added to the code after that run; the run behaved as
  # its default does, so the default stands in (any other value is a different experiment).
  old = _with_defaults(saved, json.loads(ExperimentConfig().to_json()))
  strip = lambda d: {k: v for k, v in d.items() if k not in RESUMABLE_SECTIONS}
  diffs = _diff(strip(old), strip(new), "config")
  if diffs:
    raise ValueError(f"workdir {workdir} holds a checkpoint of a different experiment; differing fields:\n  "
                     + "\n  ".join(diffs[:20]) + "\nUse a new --workdir (nothing there was changed).")
  if write:
    write_atomic(path, config_json)  # train.* may change (e.g. more steps)
  return True


class Checkpointer:
  """Saves and restores the TrainState (with its shardings) under workdir/checkpoints."""

  def __init__(self, workdir: Path, keep: int = 2):
    self.manager = ocp.CheckpointManager(
        Path(workdir).absolute() / "checkpoints",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state, *, force: bool = False, log_rows: Optional[int] = None):
    """`log_rows`: how many rows metrics.jsonl held when this state was saved; a resume from this
    step cuts the log back to them (rows after it are written again by the resumed run)."""
    meta = None if log_rows is None else {"metrics_rows": int(log_rows)}
    self.manager.save(step, args=ocp.args.StandardSave(state), force=force, custom_metadata=meta)

  def log_rows(self, step: int) -> Optional[int]:
    """The metrics.jsonl rows saved with checkpoint `step` (None for checkpoints written without)."""
    meta = self.manager.metadata(step)
    return (getattr(meta, "custom_metadata", None) or {}).get("metrics_rows")

  def restore(self, state_like, shardings=None, step: Optional[int] = None):
    """Restore into the structure of `state_like`, placing leaves with `shardings` when given."""
    step = self.manager.latest_step() if step is None else step
    if shardings is None:
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
    else:
      abstract = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), state_like, shardings)
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


def load_role_params(workdir, role: str, shapes, shardings, *, field: str = "config.roles", step: Optional[int] = None):
  """One role's parameters from an earlier run's latest checkpoint (a trained role's `params`, or
  a frozen role's entry), placed with `shardings`. `shapes` is the role's parameter tree of
  ShapeDtypeStructs here; a checkpoint whose role differs in any shape is refused, naming the leaf.
  A scalar head in `shapes` that the checkpoint's role lacks starts fresh (a meta RM on a GRM's body)."""
  manager = ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", item_handlers=ocp.StandardCheckpointHandler())
  step = manager.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"{field}.init_from={str(workdir)!r}: no checkpoint in {workdir}/checkpoints")
  meta = manager.item_metadata(step)
  tree = meta.tree if hasattr(meta, "tree") else meta
  trained, frozen = tree.get("roles", {}), tree.get("frozen", {})
  if role in trained:
    where = ("roles", role, "params")
  elif role in frozen:
    where = ("frozen", role)
  else:
    raise ValueError(f"{field}.init_role={role!r}: the checkpoint in {workdir} has roles "
                     f"{sorted(trained) + sorted(frozen)}")
  saved = functools.reduce(lambda t, k: t[k], where, tree)
  if isinstance(shapes, dict) and "scalar_head" in shapes and "scalar_head" not in saved:
    # A meta RM started from a run's decoder without the head: the body from the checkpoint, a
    # fresh head (zeros, as init_params and an import make it: decoder.fresh_scalar_head).
    body = {k: v for k, v in shapes.items() if k != "scalar_head"}
    params = load_role_params(workdir, role, body, {k: v for k, v in shardings.items() if k != "scalar_head"},
                              field=field, step=step)
    head = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), shapes["scalar_head"])
    params["scalar_head"] = jax.device_put(head, shardings["scalar_head"])
    return params
  saved_paths = {jax.tree_util.keystr(p): tuple(m.shape) for p, m in jax.tree_util.tree_leaves_with_path(saved)}
  for p, s in jax.tree_util.tree_leaves_with_path(shapes):
    key = jax.tree_util.keystr(p)
    if saved_paths.get(key) != tuple(s.shape):
      raise ValueError(f"{field}.init_from={str(workdir)!r}: role {role!r} parameter {key} has shape "
                       f"{saved_paths.get(key, 'missing')} there, {tuple(s.shape)} in this model config")
  # Restore just that subtree (partial restore): the rest of the saved state is never read.
  item = functools.reduce(lambda sub, k: {k: sub}, reversed(where), shapes)
  args = jax.tree.map(lambda s, sh: ocp.ArrayRestoreArgs(sharding=sh, global_shape=s.shape, dtype=s.dtype),
                      shapes, shardings)
  restore_args = functools.reduce(lambda sub, k: {k: sub}, reversed(where), args)
  manager.close()
  reader = ocp.CheckpointManager(Path(workdir).absolute() / "checkpoints", item_handlers=ocp.PyTreeCheckpointHandler())
  restored = reader.restore(step, args=ocp.args.PyTreeRestore(item=item, restore_args=restore_args, partial_restore=True))
  reader.close()
  return functools.reduce(lambda t, k: t[k], where, restored)
