"""SCoRe's comparison and ablation table at toy scale, over seeds (experiments/score_sweep.py).

  python -m experiments.score_ablation --workdir=workdirs/score_ablation --seeds=0,1,2
  python -m experiments.score_ablation --seeds=0 --methods=base,score --config.task.answer_first=True

  # seeds run apart (one process or host each), then one table:
  python -m experiments.score_ablation --workdir=sweep --merge=sweep_s0,sweep_s1,sweep_s2

  # after a sweep: every trained model corrects the base model's first attempts (SCoRe §4)
  python -m experiments.score_ablation --workdir=workdirs/score_ablation --seeds=0,1,2 --fixed_first

Writes results.json, table.md (mean ± standard error over seeds, then SCoRe minus every row paired
by seed) and ablation.png. A later pass into the same workdir (more --methods or --seeds) adds its rows
to the table; methods already trained there are restored from their checkpoints, not retrained.
--fixed_first trains nothing and writes fixed_first.json / fixed_first.md (fix and break rates on one
pool of first attempts; same --config, --steps and --seeds as the sweep); --merge joins those too.
"""
from absl import app, flags, logging
from ml_collections import config_flags

_WORKDIR = flags.DEFINE_string("workdir", "workdirs/score_ablation", "output directory")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds")
_CONFIG = config_flags.DEFINE_config_file("config", "configs/score.py:tiny",
                                          "base SCoRe config; --config.a.b=value overrides it for every method")
_METHODS = flags.DEFINE_list("methods", None, "subset of methods (default: all)")
_STEPS = flags.DEFINE_integer("steps", None, "override train.steps for every trained method")
_PROMPTS = flags.DEFINE_integer("prompts_per_step", None, "override rollout.prompts_per_step")
_FIXED_FIRST = flags.DEFINE_bool("fixed_first", False, "train nothing: every finished model in --workdir "
                                  "corrects the base model's greedy first attempts")
_MERGE = flags.DEFINE_list("merge", None, "train nothing: merge these sweeps' results.json into --workdir")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from experiments import score_sweep as correction_sweep
  if _MERGE.value:
    out = correction_sweep.merge(_MERGE.value, _WORKDIR.value)
    print("\n" + out["table"])
    if "fixed_first" in out:
      print("\nCorrecting the base model's first attempts:\n\n" + out["fixed_first"]["table"])
    return
  base = _CONFIG.value
  if _STEPS.value is not None:
    base.train.steps = _STEPS.value
  if _PROMPTS.value is not None:
    base.rollout.prompts_per_step = _PROMPTS.value
  if _FIXED_FIRST.value:
    out = correction_sweep.fixed_first(base, _WORKDIR.value, [int(s) for s in _SEEDS.value],
                                       _METHODS.value or correction_sweep.METHODS)
    print("\n" + out["table"])
    return
  out = correction_sweep.run(base, _WORKDIR.value, [int(s) for s in _SEEDS.value],
                             _METHODS.value or correction_sweep.METHODS)
  print("\n" + out["table"])
  print(f"\n{len(_SEEDS.value)} seeds, {out['seconds']:.0f} s; results in {_WORKDIR.value}")


if __name__ == "__main__":
  app.run(main)
