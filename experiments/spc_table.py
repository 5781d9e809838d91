"""SPC on the toy task: the critic's error detection after rounds 0, 1 and 2, the generator's fooling rate beside it.

  python -m experiments.spc_table --seeds=0,1,2 --workdir=/tmp/spc_table

Per seed one run of the config (configs/spc.py:tiny: round 0 is the supervised warm-up, then the
self-play rounds) in workdir/seed{s}. The run evaluates at the end of every round (train.eval_every
is set to the rounds' common divisor), so its logged evaluations at RL steps 0, n1, n1 + n2 are the
rows round0, round1, round2: the critic's accuracy on held-out sneaky steps (made by the task's fixed
error procedure, so rounds are comparable), on real errors (the first wrong step of task-made flawed
solutions) and on right steps, their balanced pair accuracies, and the generator's greedy attack
against the current and the SFT critic. Beside them, the round's games (training metrics, averaged
over the round's steps): their fooling rate (the round's generator against the previous round's
critic), games per step, unchanged and invalid shares; round 0 plays no games (NaN).

Writes results.json (every seed's rows), table.md (mean ± SE over seeds, and every round minus round 0
paired by seed). A run already finished in the workdir is restored, not retrained. `--config.a.b=value`
changes the config every run starts from.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from critjax.config import from_configdict
from critjax.eval.self_correction import format_paired, format_table
from critjax.rl.recipes.spc import round_steps
from critjax.train import loop
from critjax.train.metrics import read_metrics

COLUMNS = (("sneaky_acc", "Sneaky acc"), ("real_error_acc", "Real-error acc"), ("correct_acc", "Right-step acc"),
           ("sneaky_pair_acc", "Sneaky pair acc"), ("real_pair_acc", "Real pair acc"),
           ("game_fool_rate", "Fool rate (games)"), ("fool_rate", "Fool rate (eval)"),
           ("fool_rate_sft", "Fool rate vs SFT"))
GAME_KEYS = {"game_fool_rate": "fool_rate", "games": "games", "unchanged_share": "unchanged_share",
             "invalid_share": "invalid_share"}


def seed_config(base: ml_collections.ConfigDict, seed: int) -> ml_collections.ConfigDict:
  """The seed's run: evaluated at the end of every round."""
  c = ml_collections.ConfigDict(base.to_dict())
  c.seed = seed
  ends = np.cumsum(round_steps(c.train.steps, c.recipe_args.rounds))
  c.train.eval_every = math.gcd(*map(int, ends))
  return c


def round_rows(workdir: Path, steps: int, rounds: int) -> dict:
  """{'round0': eval metrics, 'round1': ..., ...} from a finished run's metrics.jsonl, each with its
  round's mean game metrics (NaN for round 0)."""
  rows = read_metrics(workdir)
  evals = {r["step"]: {k[len("eval/"):]: v for k, v in r.items() if k.startswith("eval/")}
           for r in rows if any(k.startswith("eval/") for k in r)}
  ends = [0, *map(int, np.cumsum(round_steps(steps, rounds)))]
  out = {}
  for i, end in enumerate(ends):
    if end not in evals:
      raise ValueError(f"{workdir}: no evaluation logged at RL step {end} (the end of round {i})")
    games = [r for r in rows if r.get("round") == i and "games" in r]
    m = dict(evals[end])
    for key, src in GAME_KEYS.items():
      vals = [r[src] for r in games if not math.isnan(r[src])]
      m[key] = float(np.mean(vals)) if vals else float("nan")
    m.setdefault("fool_rate_sft", float("nan"))
    out[f"round{i}"] = m
  return out


def run(base: ml_collections.ConfigDict, workdir: Path, seeds, log=print) -> dict:
  t0 = time.perf_counter()
  workdir.mkdir(parents=True, exist_ok=True)
  results: dict = {}
  for seed in seeds:
    c = seed_config(base, seed)
    t = time.perf_counter()
    loop.train(from_configdict(c), workdir / f"seed{seed}")
    rows = round_rows(workdir / f"seed{seed}", c.train.steps, c.recipe_args.rounds)
    for name, m in rows.items():
      results.setdefault(name, []).append({"seed": seed, **m})
      log(f"seed {seed} {name}: " + " ".join(f"{k} {m[k]:.3f}" for k, _ in COLUMNS))
    log(f"seed {seed}: {time.perf_counter() - t:.0f} s")
    (workdir / "results.partial.json").write_text(json.dumps(results, indent=2))
  (workdir / "results.json").write_text(json.dumps(results, indent=2))
  table = format_table(results, columns=COLUMNS)
  if len(results) > 1:
    table += "\n\nPaired by seed (each round minus round 0):\n\n" + _minus_round0(results)
  (workdir / "table.md").write_text(table + "\n")
  return {"results": results, "table": table, "seconds": time.perf_counter() - t0}


def _minus_round0(results: dict) -> str:
  """format_paired reports reference minus others; negate by pairing each round as the reference."""
  keys = [(k, t) for k, t in COLUMNS if k != "game_fool_rate"]
  parts = [format_paired({name: results[name], "round0": results["round0"]}, name, keys=keys)
           for name in results if name != "round0"]
  return "\n".join(parts)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)     # orbax logs every save and restore at INFO
  out = run(_CONFIG.value, Path(_WORKDIR.value), [int(s) for s in _SEEDS.value.split(",")])
  print("\n" + out["table"] + f"\n\n{out['seconds']:.0f} s")


if __name__ == "__main__":
  # Flags are defined only when run as a script: tests import several table modules into one process.
  _SEEDS = flags.DEFINE_string("seeds", "0,1,2", "comma-separated seeds")
  _WORKDIR = flags.DEFINE_string("workdir", None, "where every run and the table go")
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/spc.py:tiny", "the config every run starts from")
  flags.mark_flag_as_required("workdir")
  app.run(main)
