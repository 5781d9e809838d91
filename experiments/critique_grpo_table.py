"""Critique-GRPO's comparison on the toy task: GRPO against Critique-GRPO with each critique type.

  python -m experiments.critique_grpo_table --seeds=0,1,2 --workdir=/tmp/critique_grpo_table

Per seed, one warm-up run (policy and CoT critic fitted together, `train.steps=0`) in
workdir/seed{s}/warmup; every arm then starts every role from that run's checkpoint with the same
RL budget and differs only in recipe_args.critique (configs/critique_grpo.py:tiny):

  grpo       critique 'none': the n samples alone, same mean-only advantage, loss and entropy bonus
  simple     "correct / incorrect" critiques
  simple_gt  the same with the ground truth
  cot        step-level critiques by the frozen critic

Columns: greedy accuracy on the held-out problems after RL and its gain over the warm-up; over the RL
steps, the share of persistently failed prompts (all n initial samples wrong) and the share of
those that the kept refinement solves (0 for grpo: it has no refinement, and an all-wrong group
gives no gradient), and refinement accuracy. The paper's claim: refinements turn some persistently
failed prompts into learning signal, and the CoT critique helps most.

Writes results.json (every seed's row), table.md (mean ± SE, and cot minus / grpo minus each arm
paired by seed) and table.png. A run already finished in the workdir is restored, not retrained.
`--config.a.b=value` changes the config every run starts from; `--warmup_from=DIR` takes each
seed's warm-up run from another table's workdir.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from critjax.config import from_configdict
from critjax.eval.self_correction import format_paired, format_table, write_bar_chart
from critjax.train import loop
from critjax.train.metrics import read_metrics

ARMS = {"grpo": "none", "simple": "simple", "simple_gt": "simple_gt", "cot": "cot"}
COLUMNS = (("accuracy", "Accuracy"), ("gain", "Gain"), ("persistently_failed", "Persistently failed"),
           ("pf_solved", "PF solved"), ("refine_accuracy", "Refine acc"))
PAIRED = (("accuracy", "Accuracy"), ("gain", "Gain"), ("pf_solved", "PF solved"))
NAN = float("nan")


def arm_config(base: ml_collections.ConfigDict, warmup_dir: Path, critique: str) -> ml_collections.ConfigDict:
  """The arm: every role with parameters of its own from the warm-up run, no warm-up, its critique."""
  c = ml_collections.ConfigDict(base.to_dict())
  for role in c.roles:
    if not c.roles[role].get("share"):
      c.roles[role].update(dict(init="checkpoint", init_from=str(warmup_dir)))
  c.warmup.steps = 0
  c.tokenizer.update(kind="spm", path=str(warmup_dir / "tokenizer.model"))
  c.recipe_args.critique = critique
  return c


def training_summary(workdir: Path) -> dict:
  """Over a run's RL steps: mean persistently-failed share, the solved share of all persistently
  failed prompts (counts summed over steps; 0 without refinements), mean refinement accuracy."""
  rows = [r for r in read_metrics(workdir) if "persistently_failed_n" in r]
  failed = sum(r["persistently_failed_n"] for r in rows)
  solved = sum(r.get("persistently_failed_solved_n", 0) for r in rows)
  refine = [r["refine_accuracy"] for r in rows if "refine_accuracy" in r]
  mean = lambda xs: sum(xs) / len(xs) if xs else NAN
  return {"persistently_failed": mean([r["persistently_failed"] for r in rows]),
          "pf_solved": solved / failed if failed else NAN, "refine_accuracy": mean(refine), "rl_steps": len(rows)}


def run(base: ml_collections.ConfigDict, workdir: Path, seeds, arms, log=print, warmup_from=None) -> dict:
  unknown = sorted(set(arms) - set(ARMS))
  if unknown:
    raise ValueError(f"unknown arm(s) {unknown}; expected some of {list(ARMS)}")
  results = {name: [] for name in ["warmup", *arms]}
  t0 = time.perf_counter()
  workdir.mkdir(parents=True, exist_ok=True)
  for seed in seeds:
    b = ml_collections.ConfigDict(base.to_dict())
    b.seed = seed
    if warmup_from:
      wdir = Path(warmup_from) / f"seed{seed}" / "warmup"
      warm = loop.last_logged_eval(wdir)
      if not warm:
        raise FileNotFoundError(f"--warmup_from: {wdir} holds no finished warm-up run")
    else:
      wdir = workdir / f"seed{seed}" / "warmup"
      w = ml_collections.ConfigDict(b.to_dict())
      w.train.steps = 0
      warm = loop.train(from_configdict(w), wdir).eval
    rows = {"warmup": {"accuracy": warm["accuracy"], "gain": 0.0, "persistently_failed": NAN, "pf_solved": NAN,
                       "refine_accuracy": NAN}}
    for arm in arms:
      adir = workdir / f"seed{seed}" / arm
      t_arm = time.perf_counter()
      acc = loop.train(from_configdict(arm_config(b, wdir, ARMS[arm])), adir).eval["accuracy"]
      rows[arm] = {"accuracy": acc, "gain": acc - warm["accuracy"], **training_summary(adir),
                   "seconds": time.perf_counter() - t_arm}
    for name, m in rows.items():
      results[name].append({"seed": seed, **m})
      log(f"seed {seed} {name:>10}: " + " ".join(f"{k} {m[k]:.3f}" for k, _ in COLUMNS)
          + f"  ({time.perf_counter() - t0:.0f}s)")
    (workdir / "results.partial.json").write_text(json.dumps(results, indent=2))
  (workdir / "results.json").write_text(json.dumps(results, indent=2))
  table = format_table(results, columns=COLUMNS)
  for ref in ("cot", "grpo"):
    if ref in results and len(arms) > 1:
      table += f"\n\nPaired by seed ({ref} minus each arm):\n\n" + format_paired(results, ref, keys=PAIRED)
  (workdir / "table.md").write_text(table + "\n")
  write_bar_chart(results, str(workdir / "table.png"), columns=COLUMNS[:2] + COLUMNS[3:4], title="Critique-GRPO (toy)")
  return {"results": results, "table": table, "seconds": time.perf_counter() - t0}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)     # orbax logs every save and restore at INFO
  out = run(_CONFIG.value, Path(_WORKDIR.value), [int(s) for s in _SEEDS.value.split(",")],
            [a for a in _ARMS.value.split(",") if a], warmup_from=_WARMUP_FROM.value)
  print("\n" + out["table"] + f"\n\n{out['seconds']:.0f} s")


if __name__ == "__main__":
  # Flags are defined only when run as a script: tests import several table modules into one process.
  _SEEDS = flags.DEFINE_string("seeds", "0,1,2", "comma-separated seeds")
  _WORKDIR = flags.DEFINE_string("workdir", None, "where every run and the table go")
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/critique_grpo.py:tiny", "the config every run starts from")
  _WARMUP_FROM = flags.DEFINE_string("warmup_from", None, "reuse seed{s}/warmup runs from this table workdir")
  _ARMS = flags.DEFINE_string("arms", ",".join(ARMS), "comma-separated arms to train")
  flags.mark_flag_as_required("workdir")
  app.run(main)
