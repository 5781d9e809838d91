"""DeepSeek-GRM's inference-time scaling on the toy: greedy, voting@k and meta-RM voting@k, with and
without principle generation.

  python -m experiments.grm_table --seeds=0,1,2 --workdir=/tmp/grm_table

Per seed and arm, a GRM run (configs/grm.py:tiny, or tiny_noprinciples) in
workdir/seed{s}/{arm}/grm, then its grm_meta run (configs/grm.py:tiny_meta[_noprinciples]: the meta
RM trained on the frozen GRM's samples, then the scaling curve on the same held-out items) in
workdir/seed{s}/{arm}/meta. Arms: principles (the method), no_principles (the paper's ablation).

Writes results.json (every seed's final evaluation), table.md (mean ± SE per budget; paired
differences: voting@32 - voting@1, meta-RM voting minus voting, principles minus no_principles) and
scaling.png (accuracy against k). A run already finished in the workdir is read back, not retrained.
`--config.a.b=value` changes the GRM config of both arms (e.g. --config.warmup.steps=400).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from configs import grm as grm_configs
from critjax.config import from_configdict
from critjax.eval.self_correction import format_paired, format_table
from critjax.rl.grm_scores import SCALING_KS
from critjax.train import loop

ARMS = {"principles": True, "no_principles": False}
KS = SCALING_KS


def arm_configs(base: ml_collections.ConfigDict, principles: bool, grm_dir: Path):
  """(GRM config, meta config) of one arm from the shared base (configs/grm.py:tiny + overrides)."""
  g = ml_collections.ConfigDict(base.to_dict())
  g.recipe_args.principles = principles
  g.name = "grm" if principles else "grm_noprinciples"
  m = grm_configs.meta_config(g)
  for r in ("policy", "meta_rm"):
    m.roles[r].init_from = str(grm_dir)
  m.tokenizer.path = str(grm_dir / "tokenizer.model")
  return g, m


def derived(ev: dict) -> dict:
  """The paired quantities the pre-registration reads, per seed (K = the largest budget evaluated,
  32 in the table's config; k = min(8, K))."""
  big = max(k for k in KS if f"voting_k{k}" in ev)
  mid = min(8, big)
  out = dict(ev)
  out["vote_K_minus_vote1"] = ev[f"voting_k{big}"] - ev["voting_k1"]
  out["meta_k_minus_vote_k"] = ev[f"meta_voting_k{mid}"] - ev[f"voting_k{mid}"]
  out["meta_K_minus_vote_K"] = ev[f"meta_voting_k{big}"] - ev[f"voting_k{big}"]
  return out


def run(base: ml_collections.ConfigDict, workdir: Path, seeds, arms, log=print) -> dict:
  results = {a: [] for a in arms}
  t0 = time.perf_counter()
  workdir.mkdir(parents=True, exist_ok=True)
  for seed in seeds:
    for arm in arms:
      if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; expected one of {sorted(ARMS)}")
      b = ml_collections.ConfigDict(base.to_dict())
      b.seed = seed
      d = workdir / f"seed{seed}" / arm
      g, m = arm_configs(b, ARMS[arm], d / "grm")
      loop.train(from_configdict(g), d / "grm")
      ev = loop.train(from_configdict(m), d / "meta").eval
      results[arm].append({"seed": seed, **derived(ev)})
      log(f"seed {seed} {arm:>13}: greedy {ev['accuracy']:.3f} "
          + " ".join(f"v@{k} {ev[f'voting_k{k}']:.3f}/m {ev[f'meta_voting_k{k}']:.3f}" for k in KS
                     if f"voting_k{k}" in ev)
          + f" auc {ev['meta_auc']:.3f}  ({time.perf_counter() - t0:.0f}s)")
      (workdir / "results.partial.json").write_text(json.dumps(results, indent=2))
  (workdir / "results.json").write_text(json.dumps(results, indent=2))
  table = write_tables(results, workdir)
  write_curve(results, workdir / "scaling.png")
  return {"results": results, "table": table, "seconds": time.perf_counter() - t0}


def write_tables(results: dict, workdir: Path) -> str:
  ks = [k for k in KS if all(f"voting_k{k}" in r for rows in results.values() for r in rows)]
  vote = [("accuracy", "greedy")] + [(f"voting_k{k}", f"vote@{k}") for k in ks]
  meta = [(f"meta_voting_k{k}", f"meta@{k}") for k in ks] + [("meta_auc", "meta-RM AUC")]
  big, mid = ks[-1], min(8, ks[-1])
  diffs = [("vote_K_minus_vote1", f"vote@{big} − vote@1"), ("meta_k_minus_vote_k", f"meta@{mid} − vote@{mid}"),
           ("meta_K_minus_vote_K", f"meta@{big} − vote@{big}")]
  parts = ["Best-response accuracy (%), greedy and voting@k:\n", format_table(results, columns=vote),
           "\nMeta-RM voting@k (%, k_meta = k/2) and the meta RM's ROC-AUC on held-out samples:\n",
           format_table(results, columns=meta), "\nPaired within each arm (per-seed differences):\n",
           format_table(results, columns=diffs)]
  if len(results) > 1 and "principles" in results:
    parts += ["\nprinciples minus no_principles, paired by seed:\n",
              format_paired(results, "principles", keys=[("accuracy", "greedy"), (f"voting_k{mid}", f"vote@{mid}"),
                                                         (f"meta_voting_k{mid}", f"meta@{mid}")])]
  table = "\n".join(parts)
  (workdir / "table.md").write_text(table + "\n")
  return table


def write_curve(results: dict, path: Path) -> None:
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(6.5, 4.2))
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  for (arm, rows), color in zip(results.items(), ("tab:blue", "tab:orange")):
    ks = [k for k in KS if f"voting_k{k}" in rows[0]]
    for key, style, label in (("voting_k", "-o", "voting"), ("meta_voting_k", "--s", "meta-RM voting")):
      v = np.array([[r[f"{key}{k}"] for k in ks] for r in rows]) * 100
      se = v.std(0, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.zeros(len(ks))
      ax.errorbar(ks, v.mean(0), yerr=se, fmt=style, color=color, capsize=3, label=f"{arm}: {label}")
    g = np.array([r["accuracy"] for r in rows]) * 100
    ax.axhline(g.mean(), color=color, linestyle=":", label=f"{arm}: greedy")
  ax.set_xscale("log", base=2)
  ax.set_xlabel("k (GRM samples)")
  ax.set_ylabel("best-response accuracy (%)")
  ax.set_title("GRM inference-time scaling (toy), mean ± SE over seeds")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(str(path), dpi=120)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)     # orbax logs every save and restore at INFO
  out = run(_CONFIG.value, Path(_WORKDIR.value), [int(s) for s in _SEEDS.value.split(",")],
            [a for a in _ARMS.value.split(",") if a])
  print("\n" + out["table"] + f"\n\n{out['seconds']:.0f} s")


if __name__ == "__main__":
  # Flags are defined only when run as a script: tests import several table modules into one process.
  _SEEDS = flags.DEFINE_string("seeds", "0,1,2", "comma-separated seeds")
  _WORKDIR = flags.DEFINE_string("workdir", None, "where every run and the table go")
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/grm.py:tiny", "the GRM config both arms start from")
  _ARMS = flags.DEFINE_string("arms", ",".join(ARMS), "comma-separated arms")
  flags.mark_flag_as_required("workdir")
  app.run(main)
