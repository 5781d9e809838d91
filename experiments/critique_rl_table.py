"""Critique-RL's comparison on the toy task: warm-up critic, indirect reward only, Stage I only, two-stage.

  python -m experiments.critique_rl_table --seeds=0,1,2 --workdir=/tmp/critique_rl_table

Per seed, one warm-up run (actor and critic fitted together, `train.steps=0`) in
workdir/seed{s}/warmup; every arm then starts both roles from that run's checkpoint
(`roles.*.init="checkpoint"`) with the same RL budget, and is evaluated by the same greedy
attempt -> critique -> refinement protocol on the same held-out problems:

  warmup     the SFT critic (no RL)
  indirect   Stage II's reward from the first step (stage1_fraction 0): the paper's "indirect
             reward only" case
  stage1     Stage I's discriminability reward only (stage1_fraction 1)
  two_stage  Stage I for a third of the steps, then Stage II from the Stage-I critic

Writes results.json (every seed's row), table.md (mean ± SE, and two_stage minus each arm paired
by seed) and table.png. A run already finished in the workdir is restored, not retrained.
`--config.a.b=value` changes the config every run starts from; `--warmup_from=DIR` takes each
seed's warm-up run from another table's workdir (a change to the RL settings only, without
refitting the warm-up models).
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

ARMS = {"indirect": 0.0, "stage1": 1.0, "two_stage": 1 / 3}
COLUMNS = (("verdict_acc", "Verdict acc"), ("f1_wrong", "F1 (wrong)"), ("processbench_f1", "ProcessBench F1"),
           ("helpfulness", "Helpfulness"), ("acc_after", "Acc after"), ("delta", "Δ"),
           ("delta_i2c", "Δ^{i→c}"), ("delta_c2i", "Δ^{c→i}"))


def arm_config(base: ml_collections.ConfigDict, warmup_dir: Path, fraction: float) -> ml_collections.ConfigDict:
  """The arm: both roles from the warm-up run's checkpoint, no warm-up of its own, its stage split."""
  c = ml_collections.ConfigDict(base.to_dict())
  for role in c.roles:
    c.roles[role].update(dict(init="checkpoint", init_from=str(warmup_dir)))
  c.warmup.steps = 0
  c.tokenizer.update(kind="spm", path=str(warmup_dir / "tokenizer.model"))
  c.recipe_args.stage1_fraction = fraction
  return c


def run(base: ml_collections.ConfigDict, workdir: Path, seeds, arms, log=print, warmup_from=None) -> dict:
  results = {name: [] for name in ["warmup", *arms]}
  t0 = time.perf_counter()
  workdir.mkdir(parents=True, exist_ok=True)
  for seed in seeds:
    b = ml_collections.ConfigDict(base.to_dict())
    b.seed = seed
    if warmup_from:     # another table's warm-up: its logged evaluation, its checkpoint
      wdir = Path(warmup_from) / f"seed{seed}" / "warmup"
      rows = {"warmup": loop.last_logged_eval(wdir)}
      if not rows["warmup"]:
        raise FileNotFoundError(f"--warmup_from: {wdir} holds no finished warm-up run")
    else:
      wdir = workdir / f"seed{seed}" / "warmup"
      w = ml_collections.ConfigDict(b.to_dict())
      w.train.steps = 0
      rows = {"warmup": loop.train(from_configdict(w), wdir).eval}
    for arm in arms:
      rows[arm] = loop.train(from_configdict(arm_config(b, wdir, ARMS[arm])), workdir / f"seed{seed}" / arm).eval
    for name, m in rows.items():
      results[name].append({"seed": seed, **m})
      log(f"seed {seed} {name:>10}: " + " ".join(f"{k} {m[k]:.3f}" for k, _ in COLUMNS)
          + f"  ({time.perf_counter() - t0:.0f}s)")
    (workdir / "results.partial.json").write_text(json.dumps(results, indent=2))
  (workdir / "results.json").write_text(json.dumps(results, indent=2))
  table = format_table(results, columns=COLUMNS)
  if "two_stage" in results and len(results) > 1:
    table += "\n\nPaired by seed:\n\n" + format_paired(results, "two_stage", keys=COLUMNS)
  (workdir / "table.md").write_text(table + "\n")
  write_bar_chart(results, str(workdir / "table.png"), columns=COLUMNS, title="Critique-RL (toy)")
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
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/critique_rl.py:tiny", "the config every run starts from")
  _WARMUP_FROM = flags.DEFINE_string("warmup_from", None, "reuse seed{s}/warmup runs from this table workdir")
  _ARMS = flags.DEFINE_string("arms", ",".join(ARMS), "comma-separated arms to train")
  flags.mark_flag_as_required("workdir")
  app.run(main)
