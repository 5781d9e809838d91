"""The quickstart: toy self-correction end to end on a CPU in a few minutes.

  make quickstart        (= python -m experiments.quickstart --workdir=workdirs/quickstart)

tokenizer (trained on the task) -> supervised warm-up -> SCoRe Stage I -> Stage II -> evaluation.
Prints the Delta table of the trained model against the base (warm-up) model and writes
TensorBoard logs, metrics.jsonl, table.md and quickstart.png into the workdir.
"""
import json
from pathlib import Path

from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string("workdir", "workdirs/quickstart", "output directory")
_VARIANT = flags.DEFINE_string("config", "configs/score.py:tiny", "config file:variant")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from critjax.config import from_configdict
  from critjax.eval import plots
  from critjax.eval.self_correction import format_table
  from critjax.train.loop import train
  from critjax.train.metrics import read_metrics
  from experiments.config_loading import load_config

  workdir = Path(_WORKDIR.value)
  cfg = from_configdict(load_config(_VARIANT.value))
  run = train(cfg, workdir)
  rows = read_metrics(workdir)
  evals = [r for r in rows if "eval/acc_t1" in r]
  strip = lambda r: {k[len("eval/"):]: v for k, v in r.items() if k.startswith("eval/")}
  base, final = strip(evals[0]), strip(evals[-1])
  table = format_table({"base (warm-up)": [base], f"SCoRe ({final['n']} problems)": [final]})
  (workdir / "table.md").write_text(table + "\n")
  plots.training_curves(rows, workdir / "quickstart.png", title="SCoRe on toy arithmetic")
  print("\n" + table)
  # SCoRe Fig. 1 (right) at toy scale: k self-corrected samples + majority vote vs 2k samples + vote
  import jax
  from critjax.eval import correction_protocols
  from critjax.train.loop import build
  recipe = build(cfg, workdir)["recipe"]
  study = correction_protocols.compute_matched(recipe, {"policy": run.params}, recipe.task.eval_problems(cfg.seed, 128),
                                               jax.random.PRNGKey(cfg.seed), ks=(1, 2, 4))
  (workdir / "compute_matched.json").write_text(json.dumps(study, indent=2))
  print("\ncompute-matched majority vote (128 problems, temperature sampling):")
  for k, par, sc in zip(study["k"], study["parallel_acc"], study["self_correct_acc"]):
    print(f"  {2 * k:>2} samples: {2 * k} parallel {par:.3f}   vs   {k} x (attempt + correction) {sc:.3f}")
  print(f"\nworkdir: {workdir}  (tensorboard --logdir {workdir / 'tensorboard'}; plot {workdir / 'quickstart.png'})")
  print(json.dumps({"base": base, "score": final}))


if __name__ == "__main__":
  app.run(main)
