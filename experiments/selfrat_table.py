"""Self-rationalization on the toy: the judge's scoring accuracy after SFT and each DPO iteration,
against self-consistency and best-of-N of the SFT judge on N samples.

  python -m experiments.selfrat_table --seeds=0,1,2 --workdir=/tmp/selfrat_table

Per seed one run of configs/self_rationalization.py:tiny (warm-up = the seed judge's SFT, then
recipe_args.iterations DPO iterations) in workdir/seed{s}; its evaluations at the end of each
phase are the table's rows (`sft`, `iter1`, `iter2`; critjax/rl/recipes/self_rationalization.py).
Writes results.json and table.md: mean ± SE per row, then paired by seed: each iteration's greedy
accuracy minus the SFT judge's greedy, self-consistency (sc_N) and best-of-N (bon_N). A finished
run in the workdir is read back. `--config.a.b=value` changes the config of every seed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import ml_collections
from absl import app, flags
from ml_collections import config_flags

from configs import self_rationalization as sr_configs
from critjax.config import from_configdict
from critjax.eval.self_correction import format_table, mean_stderr
from critjax.train import loop
from experiments.arm_table import stage_evals

_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/selfrat_table", "where the runs and the table go")
_CONFIG = config_flags.DEFINE_config_dict("config", sr_configs.get_config("tiny"))


def main(argv):
  del argv
  base: ml_collections.ConfigDict = _CONFIG.value
  a = base.recipe_args
  n = a.eval_samples
  bounds = {"sft": 0, **{f"iter{i}": i * a.dpo_steps for i in range(1, a.iterations + 1)}}
  root = Path(_WORKDIR.value)
  rows: dict[str, list] = {k: [] for k in bounds}
  t0 = time.time()
  for s in map(int, _SEEDS.value):
    c = ml_collections.ConfigDict(base.to_dict())
    c.seed = s
    wd = root / f"seed{s}"
    loop.train(from_configdict(c), wd)
    for row, ev in stage_evals(wd, bounds).items():
      rows[row].append(dict(ev, seed=s))
    (root / "results.json").write_text(json.dumps(rows, indent=1))
  cols = (("accuracy", "greedy"), (f"sc_{n}", f"self-consistency@{n}"), (f"bon_{n}", f"best-of-{n}"),
          ("sampled_accuracy", "one sample"), ("invalid", "invalid (greedy)"))
  parts = [f"Judge scoring accuracy (score = gold), held-out items; N = {n} samples at T = "
           f"{base.rollout.temperature}:\n", format_table(rows, columns=cols),
           "\nEach iteration's greedy accuracy minus the SFT judge's, paired by seed (mean ± SE; seeds ahead):\n",
           "| Row | − SFT greedy | − SFT self-consistency | − SFT best-of-N |\n|---|---|---|---|\n"]
  sft = {m["seed"]: m for m in rows["sft"]}
  for row in list(bounds)[1:]:
    cells = []
    for key in ("accuracy", f"sc_{n}", f"bon_{n}"):
      d = [m["accuracy"] - sft[m["seed"]][key] for m in rows[row]]
      mean, se = mean_stderr(d)
      cells.append(f"{100 * mean:+.1f} ± {100 * se:.1f} ({sum(x > 0 for x in d)}/{len(d)})")
    parts.append(f"| {row} | " + " | ".join(cells) + " |\n")
  parts.append("\nPer seed (greedy / sc / bon / one sample):\n")
  for row, per_seed in rows.items():
    parts.append(f"- {row}: " + "; ".join(
        f"seed {m['seed']}: {100 * m['accuracy']:.1f} / {100 * m[f'sc_{n}']:.1f} / {100 * m[f'bon_{n}']:.1f} / "
        f"{100 * m['sampled_accuracy']:.1f}" for m in per_seed) + "\n")
  parts.append(f"\n{time.time() - t0:.0f} s for {len(_SEEDS.value)} seed(s).\n")
  table = "".join(parts)
  (root / "table.md").write_text(table)
  print(table)


if __name__ == "__main__":
  app.run(main)
