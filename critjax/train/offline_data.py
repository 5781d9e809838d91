"""Offline datasets a run samples once, at a phase's start (critjax.rl.phases.BuildData).

Some methods train on data the model generated before the phase began rather than in every step:
Critique-Coder's critique items (candidate solutions sampled once and labelled by the verifier),
and the preference pairs and filtered samples of expert-iteration and DPO-style methods. The
records are JSON objects, written to workdir/data/<name>.jsonl (atomically) when the phase starts,
before any checkpoint of that phase, so:
  - a resumed run past the phase's start reads them back (its parameters at the start are gone);
  - a run killed after the write but before the next checkpoint crosses the start again and reuses
    the file, which holds what the rebuild would sample (the key is a function of seed and name).
"""
from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import jax

from critjax.files import write_atomic
from critjax.rl.phases import BuildData


def data_path(workdir: Path, name: str) -> Path:
  return Path(workdir) / "data" / f"{name}.jsonl"


def data_key(seed: int, name: str):
  """The PRNG key a dataset is sampled with: the run's seed with the dataset's name folded in."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(name.encode()) & 0x7FFFFFFF)


def _read(path: Path) -> list[dict]:
  rows = []
  for i, line in enumerate(path.read_text().splitlines()):
    try:
      rows.append(json.loads(line))
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: line {i + 1} is not a JSON record ({e})") from e
  return rows


def build(recipe, phase, params: dict, seed: int, workdir: Path) -> None:
  """Run the phase's BuildData hooks: sample (or reuse the file), save, hand to the recipe."""
  for h in phase.on_start:
    if not isinstance(h, BuildData):
      continue
    path = data_path(workdir, h.name)
    if path.exists():
      records = _read(path)
      logging.info("dataset %s: %d records reused from %s", h.name, len(records), path)
    else:
      records = recipe.build_data(h.name, params, data_key(seed, h.name))
      path.parent.mkdir(parents=True, exist_ok=True)
      write_atomic(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
      logging.info("dataset %s: %d records sampled, written to %s", h.name, len(records), path)
    recipe.load_data(h.name, records)


def restore(recipe, phases, starts, step: int, workdir: Path) -> None:
  """On a resume at `step`: load every dataset whose phase started before it."""
  for phase, first in zip(phases, starts):
    if first >= step:
      continue
    for h in phase.on_start:
      if isinstance(h, BuildData):
        path = data_path(workdir, h.name)
        if not path.exists():
          raise FileNotFoundError(f"{path}: missing; phase {phase.name!r} of the run in {workdir} started from "
                                  f"it (BuildData {h.name!r}) and its checkpoint needs the same records")
        recipe.load_data(h.name, _read(path))
