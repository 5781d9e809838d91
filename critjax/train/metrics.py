"""Metric writers: `metrics.jsonl` (one JSON object per logged step, with `step`) and TensorBoard
event files (tensorboardX: no TensorFlow needed).

`metrics.jsonl` is the record; TensorBoard is a view of it. A resumed run opens the writer with
the number of rows its checkpoint was saved with: the rows after it (written by the interrupted
run past its last checkpoint, and written again now) are cut, and the TensorBoard events are
rewritten from the kept rows into one event file, so the log has no duplicated step and nothing
is lost (tensorboardX also buffers events a kill would drop). In a run of several processes only
process 0 writes (`primary`); the others count the rows it writes, for the checkpoints' metadata.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from critjax.files import complete_lines, write_atomic


def to_python(metrics: dict) -> dict:
  out = {}
  for k, v in metrics.items():
    v = np.asarray(v)
    out[k] = v.item() if v.ndim == 0 else v.tolist()
  return out


class MetricWriter:
  """`keep_rows`: rows of an existing metrics.jsonl to keep (a resume); None keeps them all.
  `primary=False`: writes nothing (another process of the run writes the files), counts rows alike."""

  def __init__(self, workdir: str | Path, *, tensorboard: bool = True, keep_rows: Optional[int] = None,
               primary: bool = True):
    self.workdir = Path(workdir)
    path = self.workdir / "metrics.jsonl"
    lines = complete_lines(path)
    kept = lines if keep_rows is None else lines[:keep_rows]
    self.rows = len(kept)
    self._jsonl, self._tb = None, None
    if not primary:
      return
    self.workdir.mkdir(parents=True, exist_ok=True)
    if len(kept) != len(lines) or (path.exists() and path.read_bytes() != "".join(kept).encode()):
      write_atomic(path, "".join(kept))   # also drops a row torn by a kill
    self._jsonl = open(path, "a")
    if tensorboard:
      from tensorboardX import SummaryWriter
      tb_dir = self.workdir / "tensorboard"
      for f in tb_dir.glob("events.out.tfevents.*") if tb_dir.is_dir() else []:
        f.unlink()           # this run's own view, rebuilt from the kept rows below
      self._tb = SummaryWriter(str(tb_dir))
      for line in kept:
        row = json.loads(line)
        self._add_scalars(row.pop("step"), row)
      self._tb.flush()

  def _add_scalars(self, step: int, row: dict):
    for k, v in row.items():
      if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        self._tb.add_scalar(k, v, step)

  def write(self, step: int, metrics: dict, prefix: str = ""):
    m = to_python(metrics)
    row = {"step": int(step), **{f"{prefix}{k}": v for k, v in m.items()}}
    self.rows += 1
    if self._jsonl is None:
      return
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      self._add_scalars(int(step), {k: v for k, v in row.items() if k != "step"})
      self._tb.flush()

  def close(self):
    if self._jsonl is not None and not self._jsonl.closed:
      self._jsonl.close()
    if self._tb is not None:
      self._tb.close()
      self._tb = None


def read_metrics(workdir: str | Path) -> list[dict]:
  return [json.loads(line) for line in complete_lines(Path(workdir) / "metrics.jsonl")]
