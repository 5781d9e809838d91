"""Metric writers: `metrics.jsonl` (one JSON object per logged step, with `step`) and TensorBoard
event files (tensorboardX: no TensorFlow needed)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def to_python(metrics: dict) -> dict:
  out = {}
  for k, v in metrics.items():
    v = np.asarray(v)
    out[k] = v.item() if v.ndim == 0 else v.tolist()
  return out


class MetricWriter:
  def __init__(self, workdir: str | Path, *, tensorboard: bool = True):
    self.workdir = Path(workdir)
    self.workdir.mkdir(parents=True, exist_ok=True)
    self._jsonl = open(self.workdir / "metrics.jsonl", "a")
    self._tb = None
    if tensorboard:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(str(self.workdir / "tensorboard"))

  def write(self, step: int, metrics: dict, prefix: str = ""):
    m = to_python(metrics)
    row = {"step": int(step), **{f"{prefix}{k}": v for k, v in m.items()}}
    self._jsonl.write(json.dumps(row) + "\n")
    self._jsonl.flush()
    if self._tb is not None:
      for k, v in m.items():
        if isinstance(v, (int, float)) and math.isfinite(v):
          self._tb.add_scalar(f"{prefix}{k}", v, step)
      self._tb.flush()

  def close(self):
    self._jsonl.close()
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str | Path) -> list[dict]:
  path = Path(workdir) / "metrics.jsonl"
  return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
