"""RL-MIA on the toy: RL-train on half of a problem set, then detect that half.

  python -m experiments.rl_mia_toy --seeds=0,1,2 --workdir=/tmp/rl_mia

Per seed: a warm-up-only run (supervised, on the task's own stream) in seed{s}/base, then GRPO
from its parameters on a fixed pool of `--pool` problems (`task.pool_size`: the members) in
seed{s}/rl. The non-members are as many problems of the held-out stream, never trained on by
either run. Both models are scored by the three detectors of critjax/eval/contamination.py
(Self-Critique, perplexity, Min-K% 20%); the base model is the control (neither half seen).
Writes results.json (every seed's row), table.md (mean ± SE over seeds; the Self-Critique AUC
minus each baseline's, paired by seed) and table.png. Finished runs are restored, not retrained.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from critjax.config import from_configdict
from critjax.data.tasks import make_task
from critjax.data.templates import TEMPLATES
from critjax.eval import contamination
from critjax.eval.models import load_model
from critjax.eval.self_correction import format_table, write_bar_chart
from critjax.train import loop

COLUMNS = (("auc_self_critique", "AUC Self-Critique"), ("auc_perplexity", "AUC PPL"), ("auc_min_20%", "AUC Min-20%"),
           ("sc_minus_ppl", "SC − PPL"), ("sc_minus_min_20%", "SC − Min-20%"),
           ("acc_member", "Acc members"), ("acc_nonmember", "Acc non-members"))


def configs(base: ml_collections.ConfigDict, seed: int, pool: int, base_dir: Path):
  """(warm-up-only config, RL config): the RL run takes the warm-up run's tokenizer file."""
  b = ml_collections.ConfigDict(base.to_dict())
  b.seed, b.task.pool_size = seed, pool
  w = ml_collections.ConfigDict(b.to_dict())
  w.train.steps = 0
  r = ml_collections.ConfigDict(b.to_dict())
  r.warmup.steps = 0
  r.tokenizer.update(kind="spm", path=str(base_dir / "tokenizer.model"))
  return from_configdict(w), from_configdict(r)


def score_model(workdir: Path, cfg, pool: int, max_new_tokens: int) -> dict:
  task = make_task(cfg.task)
  template = TEMPLATES.get("toy")
  members = task.problems(cfg.seed, 0, pool)
  others = task.eval_problems(cfg.seed, pool)
  problems = members + others
  model = load_model(str(workdir))
  out = contamination.detect(model, [template.first_prompt(p.problem) for p in problems],
                             [True] * pool + [False] * pool, max_new_tokens=max_new_tokens)
  correct = task.score(problems, [d.text for d in out["first"]])
  row = {f"auc_{k}": v for k, v in out["auc"].items()}
  row["sc_minus_ppl"] = row["auc_self_critique"] - row["auc_perplexity"]
  row["sc_minus_min_20%"] = row["auc_self_critique"] - row["auc_min_20%"]
  row["acc_member"], row["acc_nonmember"] = float(correct[:pool].mean()), float(correct[pool:].mean())
  row.update({f"nan_{k}": int(np.isnan(v).sum()) for k, v in out["scores"].items()})   # dropped from the AUC
  return row


def run(base: ml_collections.ConfigDict, workdir: Path, seeds, pool: int, log=print) -> dict:
  results = {"before RL": [], "after RL": []}
  t0 = time.perf_counter()
  workdir.mkdir(parents=True, exist_ok=True)
  for seed in seeds:
    bdir, rdir = workdir / f"seed{seed}" / "base", workdir / f"seed{seed}" / "rl"
    wcfg, rcfg = configs(base, seed, pool, bdir)
    warm = loop.train(wcfg, bdir)
    loop.train(rcfg, rdir, init_params=warm.params)
    for name, d, c in (("before RL", bdir, wcfg), ("after RL", rdir, rcfg)):
      row = {"seed": seed, **score_model(d, c, pool, c.rollout.max_new_tokens)}
      results[name].append(row)
      log(f"seed {seed} {name:>9}: " + " ".join(f"{k} {row[k]:.3f}" for k, _ in COLUMNS)
          + f"  ({time.perf_counter() - t0:.0f}s)")
    (workdir / "results.partial.json").write_text(json.dumps(results, indent=2))
  (workdir / "results.json").write_text(json.dumps(results, indent=2))
  table = format_table(results, columns=COLUMNS, percent=False, digits=3)
  (workdir / "table.md").write_text(table + "\n")
  write_bar_chart(results, str(workdir / "table.png"), columns=COLUMNS[:3], percent=False, title="RL-MIA (toy)")
  return {"results": results, "table": table, "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
  _SEEDS = flags.DEFINE_string("seeds", "0,1,2", "comma-separated seeds")
  _WORKDIR = flags.DEFINE_string("workdir", None, "where every run and the table go")
  _POOL = flags.DEFINE_integer("pool", 64, "members: problems in the RL pool (as many non-members)")
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/grpo.py:tiny", "the config every run starts from")
  flags.mark_flag_as_required("workdir")

  def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    out = run(_CONFIG.value, Path(_WORKDIR.value), [int(s) for s in _SEEDS.value.split(",")], _POOL.value)
    print("\n" + out["table"] + f"\n\n{out['seconds']:.0f} s")

  app.run(main)
