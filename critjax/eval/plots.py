"""PNG plots of training curves (matplotlib, Agg backend, no global pyplot state)."""
from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def training_curves(rows: list[dict], path: str | Path, *, title: str = ""):
  """Reward and accuracy per step, eval accuracy per turn at each evaluation."""
  fig = Figure(figsize=(10, 4))
  FigureCanvasAgg(fig)
  ax1, ax2 = fig.subplots(1, 2)
  train = [r for r in rows if "reward_mean" in r]
  for key in ("reward_mean", "accuracy", "accuracy_t1"):
    pts = [(r["step"], r[key]) for r in train if key in r]
    if pts:
      ax1.plot(*zip(*pts), label=key, lw=1)
  ax1.set_xlabel("step")
  ax1.set_title("training rollouts")
  ax1.legend()
  evals = [r for r in rows if any(k.startswith("eval/acc") for k in r)]
  for key in sorted({k for r in evals for k in r if k.startswith("eval/acc")}):
    pts = [(r["step"], r[key]) for r in evals if key in r]
    ax2.plot(*zip(*pts), marker="o", label=key[len("eval/"):])
  ax2.set_xlabel("step")
  ax2.set_title("greedy evaluation")
  ax2.legend()
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(str(path), dpi=100)


def curves_png(curves: dict, path: str | Path, *, title: str = "", xlabel: str = "k", log_x: bool = True):
  """Evaluation curves, one line each: name -> {"x": [...], "y": [...]} (e.g. accuracy vs samples k)."""
  fig = Figure(figsize=(6, 4))
  FigureCanvasAgg(fig)
  ax = fig.subplots()
  for name, c in curves.items():
    ax.plot(c["x"], c["y"], marker="o", label=name)
  if log_x:
    ax.set_xscale("log", base=2)
  ax.set_xlabel(xlabel)
  ax.legend()
  ax.set_title(title)
  fig.tight_layout()
  fig.savefig(str(path), dpi=100)
