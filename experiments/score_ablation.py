"""SCoRe's comparison and ablation table at toy scale, over seeds (critjax.train.correction_sweep).

  python -m experiments.score_ablation --workdir=workdirs/score_ablation --seeds=0,1,2
  python -m experiments.score_ablation --seeds=0 --methods=base,score --set=task.answer_first=True

Writes results.json, table.md (mean ± standard error over seeds) and ablation.png.
"""
import ast

from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string("workdir", "workdirs/score_ablation", "output directory")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "seeds")
_CONFIG = flags.DEFINE_string("config", "configs/score.py:tiny", "base SCoRe config")
_METHODS = flags.DEFINE_list("methods", None, "subset of methods (default: all)")
_STEPS = flags.DEFINE_integer("steps", None, "override train.steps for every trained method")
_PROMPTS = flags.DEFINE_integer("prompts_per_step", None, "override rollout.prompts_per_step")
_SET = flags.DEFINE_list("set", [], "config overrides for every method, e.g. task.answer_first=True,warmup.steps=300")


def apply_override(cfg, item: str):
  """`a.b=value` on a ConfigDict; the value is a Python literal, else a string. A path that is not
  in the config fails here, naming it, before anything trains."""
  key, sep, raw = item.partition("=")
  if not sep:
    raise ValueError(f"--set {item!r}: expected key=value")
  try:
    value = ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    value = raw
  *path, last = key.split(".")
  node = cfg
  for i, part in enumerate(path + [last]):
    if part not in node:
      raise ValueError(f"--set {item!r}: config has no field {'.'.join(path[:i] + [part])!r}")
    if i < len(path):
      node = node[part]
  node[last] = value


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from critjax.train import correction_sweep
  from experiments.config_loading import load_config
  base = load_config(_CONFIG.value)
  if _STEPS.value is not None:
    base.train.steps = _STEPS.value
  if _PROMPTS.value is not None:
    base.rollout.prompts_per_step = _PROMPTS.value
  for item in _SET.value:
    apply_override(base, item)
  out = correction_sweep.run(base, _WORKDIR.value, [int(s) for s in _SEEDS.value],
                             _METHODS.value or correction_sweep.METHODS)
  print("\n" + out["table"])
  print(f"\n{len(_SEEDS.value)} seeds, {out['seconds']:.0f} s; results in {_WORKDIR.value}")


if __name__ == "__main__":
  app.run(main)
