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
import orbax.checkpoint as ocp

from critjax.config import ExperimentConfig

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
  """Checks an existing workdir holds the same experiment; writes config.json when `write`.

  Returns True when the workdir already held a matching config (a resume). The trainer checks
  first and writes only after the rest of the config validated, so a config that fails validation
  leaves nothing behind that would block its corrected rerun."""
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / "config.json"
  new = json.loads(config_json)
  if not path.exists():
    if write:
      path.write_text(config_json)
    return False
  # A field the workdir's config lacks was added to the code after that run; the run behaved as
  # its default does, so the default stands in (any other value is a different experiment).
  old = _with_defaults(json.loads(path.read_text()), json.loads(ExperimentConfig().to_json()))
  strip = lambda d: {k: v for k, v in d.items() if k not in RESUMABLE_SECTIONS}
  diffs = _diff(strip(old), strip(new), "config")
  if diffs:
    raise ValueError(f"workdir {workdir} holds a checkpoint of a different experiment; differing fields:\n  "
                     + "\n  ".join(diffs[:20]) + "\nUse a new --workdir (nothing there was changed).")
  if write:
    path.write_text(config_json)  # train.* may change (e.g. more steps)
  return True


class Checkpointer:
  """Saves and restores the TrainState (with its shardings) under workdir/checkpoints."""

  def __init__(self, workdir: Path, keep: int = 2):
    self.manager = ocp.CheckpointManager(
        Path(workdir).absolute() / "checkpoints",
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state, *, force: bool = False):
    self.manager.save(step, args=ocp.args.StandardSave(state), force=force)

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
  ShapeDtypeStructs here; a checkpoint whose role differs in any shape is refused, naming the leaf."""
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
