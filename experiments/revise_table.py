"""ReVISE on the toy: the verifier, refinement and confidence-aware voting after each stage.

  python -m experiments.revise_table --seeds=0,1,2 --workdir=/tmp/revise_table

Per seed one run of configs/revise.py:tiny (warm-up = Stage 0, then Stage 1 and Stage 2) in
workdir/seed{s}; its evaluations at the end of each stage are the table's rows: `base` (after the
warm-up, before Stage 1), `stage1`, `stage2` (critjax/rl/recipes/revise.py for every metric).
Writes results.json and table.md: mean ± SE per row, then paired by seed: each stage minus the
base, and confidence-aware minus majority voting at N = 1, 2, 4, 8 per row. A finished run in the
workdir is read back. `--config.a.b=value` changes the config of every seed.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import ml_collections
from absl import app, flags
from ml_collections import config_flags

from configs import revise as revise_configs
from critjax.config import from_configdict
from critjax.eval.self_correction import format_paired, format_table, mean_stderr
from critjax.train import loop
from experiments.arm_table import stage_evals

_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/revise_table", "where the runs and the table go")
_CONFIG = config_flags.DEFINE_config_dict("config", revise_configs.get_config("tiny"))

COLUMNS = (("accuracy_t1", "Acc@t1"), ("accuracy", "Acc (refined)"), ("refine_rate", "refine rate"),
           ("delta_i2c", "Δi→c"), ("delta_c2i", "Δc→i"), ("verify_accuracy", "verifier acc"),
           ("verify_auc", "verifier AUC"))
VOTE_KS = (1, 2, 4, 8)


def main(argv):
  del argv
  base: ml_collections.ConfigDict = _CONFIG.value
  a = base.recipe_args
  bounds = {"base": 0, "stage1": a.verify_steps, "stage2": a.verify_steps + a.correct_steps}
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
  vote_cols = tuple((f"{kind}_{k}", f"{kind}@{k}") for k in VOTE_KS for kind in ("maj", "conf"))
  parts = ["Per stage (greedy; the verifier on greedy first attempts):\n", format_table(rows, columns=COLUMNS),
           f"\nVoting over N sampled trajectories (T = {base.rollout.temperature}):\n",
           format_table(rows, columns=vote_cols),
           "\nEach stage minus the base, paired by seed:\n"]
  for stage in ("stage1", "stage2"):
    parts.append(format_paired({stage: rows[stage], "base": rows["base"]}, stage, keys=COLUMNS))
  parts.append("\nConfidence-aware minus majority voting, paired by seed (mean ± SE; seeds ahead):\n")
  parts.append("| Row | " + " | ".join(f"N = {k}" for k in VOTE_KS) + " |\n|" + "---|" * (len(VOTE_KS) + 1) + "\n")
  for row, per_seed in rows.items():
    cells = []
    for k in VOTE_KS:
      d = [m[f"conf_{k}"] - m[f"maj_{k}"] for m in per_seed]
      mean, se = mean_stderr(d)
      cells.append(f"{100 * mean:+.1f} ± {100 * se:.1f} ({sum(x > 0 for x in d)}/{len(d)})")
    parts.append(f"| {row} | " + " | ".join(cells) + " |\n")
  parts.append("\nPer seed (Acc@t1 / Acc refined / verifier acc / AUC / maj@8 / conf@8):\n")
  for row, per_seed in rows.items():
    parts.append(f"- {row}: " + "; ".join(
        f"seed {m['seed']}: {100 * m['accuracy_t1']:.1f} / {100 * m['accuracy']:.1f} / "
        f"{100 * m['verify_accuracy']:.1f} / {m['verify_auc']:.3f} / {100 * m['maj_8']:.1f} / {100 * m['conf_8']:.1f}"
        for m in per_seed) + "\n")
  parts.append(f"\n{time.time() - t0:.0f} s for {len(_SEEDS.value)} seed(s).\n")
  table = "".join(parts)
  (root / "table.md").write_text(table)
  print(table)


if __name__ == "__main__":
  app.run(main)
