"""Critique-Coder's comparison on the toy task: RL-only GRPO against the 80/20 CRL hybrid.

  python -m experiments.crl_table --seeds=0,1,2 --workdir=/tmp/crl_table

Per seed one warm-up (worked solutions and oracle critiques, configs/crl.py:tiny), then both arms
from it with the same RL budget (steps, prompts per step, samples per prompt):
  rl_only   every prompt a solve prompt (mixture solve 1.0)
  hybrid    round(0.2 x 16) = 3 of the 16 prompts a step are critique items (mixture 0.8 / 0.2)
Both are evaluated the same way: greedy accuracy on 256 held-out problems, and greedy verdict
accuracy on one critique item per held-out problem (a candidate sampled from the warm-up policy
when RL starts; the same items for both arms, since the key is the seed's and the model the
warm-up's). `warmup` is that evaluation before the first RL step.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from experiments import arm_table

COLUMNS = (("accuracy", "Accuracy"), ("critique_acc", "Critique acc"), ("critique_balanced_acc", "Balanced"),
           ("critique_acc_right", "on right"), ("critique_acc_wrong", "on wrong"),
           ("verdict_missing", "Verdict missing"))


def with_balanced(results: dict) -> dict:
  """Every row with the balanced critique accuracy (rows written before the recipe logged it)."""
  for rows in results.values():
    for r in rows:
      if "critique_balanced_acc" not in r and "critique_acc_right" in r:
        r["critique_balanced_acc"] = float(np.nanmean([r["critique_acc_right"], r["critique_acc_wrong"]]))
  return results


def rl_only(c):
  c.recipe_args.mixture = dict(solve=1.0, critique=0.0)
  return c


def hybrid(c):
  return c


ARMS = {"rl_only": rl_only, "hybrid": hybrid}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  workdir = Path(_WORKDIR.value)
  if _TABLE_ONLY.value:          # the table again from results.json (e.g. with a column added since)
    results = with_balanced(json.loads((workdir / "results.json").read_text()))
    print(arm_table.write_table(results, workdir, columns=COLUMNS, reference="hybrid", title="CRL (toy)"))
    return
  out = arm_table.run(_CONFIG.value, workdir, [int(s) for s in _SEEDS.value.split(",")], ARMS,
                      columns=COLUMNS, reference="hybrid", title="CRL (toy)")
  print("\n" + out["table"] + f"\n\n{out['seconds']:.0f} s")


if __name__ == "__main__":
  # Flags are defined only when run as a script: tests import several table modules into one process.
  _SEEDS = flags.DEFINE_string("seeds", "0,1,2", "comma-separated seeds")
  _WORKDIR = flags.DEFINE_string("workdir", None, "where every run and the table go")
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/crl.py:tiny", "the config every run starts from")
  _TABLE_ONLY = flags.DEFINE_bool("table_only", False, "rewrite table.md / table.png from workdir/results.json")
  flags.mark_flag_as_required("workdir")
  app.run(main)
