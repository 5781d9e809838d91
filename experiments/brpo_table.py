"""BRPO against GRPO with a scalar reward model on the length-hacking toy (configs/brpo.py), per seed:

  python -m experiments.brpo_table --seeds=0,1,2 --workdir=/tmp/brpo_table

Per seed, in workdir/seed{s}/: judge (configs/brpo.py:tiny_judge, which trains the tokenizer the
others read), sft (the policy's shared start), rm (the scalar RM on confounded pairs), then the two
arms from the same SFT checkpoint on the same budget: brpo (the frozen pairwise judge) and grpo_rm
(the frozen scalar RM). A run already finished in the workdir is read back, not retrained.

Writes results.json (per seed: the judge's and the RM's evaluations, each arm's held-out accuracy
and response length at the start and the end, and its training curves), table.md (mean ± SE;
brpo minus grpo_rm paired by seed) and curves.png (held-out accuracy and training response length
against the RL step, mean over seeds). `--rl_steps=N` sets both arms' RL steps.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from absl import app, flags, logging

from configs import brpo as brpo_configs
from critjax.config import from_configdict
from critjax.eval.self_correction import format_paired, format_table
from critjax.train import loop

ARMS = ("brpo", "grpo_rm")


def stage_configs(seed: int, d: Path, rl_steps: int | None = None) -> dict:
  """name -> (config, workdir) of one seed's five runs, in the order they must run; rl_steps, when
  given, sets both arms' RL steps."""
  tok = str(d / "judge" / "tokenizer.model")
  out = {}
  for name, variant in (("judge", "tiny_judge"), ("sft", "tiny_sft"), ("rm", "tiny_rm"), ("brpo", "tiny"),
                        ("grpo_rm", "tiny_grpo_rm")):
    c = brpo_configs.get_config(variant)
    c.seed = seed
    if name in ARMS and rl_steps is not None:
      c.train.steps = rl_steps
    if name != "judge":
      c.tokenizer.path = tok
    if name in ("rm", "brpo", "grpo_rm"):
      c.roles.policy.init_from = str(d / "sft")
    if name == "brpo":
      c.roles.judge.init_from = str(d / "judge")
    if name == "grpo_rm":
      c.roles.rm.init_from = str(d / "rm")
    out[name] = (c, d / name)
  return out


def curves(workdir: Path) -> dict:
  """Per RL step from metrics.jsonl: train response_length and accuracy; eval accuracy and length."""
  train, ev = {}, {}
  for line in (workdir / "metrics.jsonl").read_text().splitlines():
    m = json.loads(line)
    if "eval/accuracy" in m:
      ev[m["step"]] = {"accuracy": m["eval/accuracy"], "response_length": m.get("eval/response_length")}
    elif "response_length" in m:
      train[m["step"]] = {"accuracy": m.get("accuracy"), "response_length": m["response_length"]}
  return {"train": [dict(step=s, **v) for s, v in sorted(train.items())],
          "eval": [dict(step=s, **v) for s, v in sorted(ev.items())]}


def run(seeds, workdir: Path, rl_steps=None, log=print) -> dict:
  results = {a: [] for a in ARMS}
  extra = {"judge": [], "rm": []}
  t0 = time.perf_counter()
  workdir.mkdir(parents=True, exist_ok=True)
  for seed in seeds:
    runs = stage_configs(seed, workdir / f"seed{seed}", rl_steps)
    evals = {name: loop.train(from_configdict(c), w).eval for name, (c, w) in runs.items()}
    extra["judge"].append({"seed": seed, **evals["judge"]})
    extra["rm"].append({"seed": seed, **evals["rm"]})
    for arm in ARMS:
      cv = curves(runs[arm][1])
      first, last = cv["eval"][0], cv["eval"][-1]
      tr = cv["train"]
      results[arm].append({"seed": seed, "accuracy_start": first["accuracy"], "accuracy": last["accuracy"],
                           "length_start": first["response_length"], "length": last["response_length"],
                           "length_gain": last["response_length"] - first["response_length"],
                           "accuracy_gain": last["accuracy"] - first["accuracy"],
                           "train_length_first5": float(np.mean([x["response_length"] for x in tr[:5]])),
                           "train_length_last5": float(np.mean([x["response_length"] for x in tr[-5:]])),
                           "curves": cv})
    log(f"seed {seed}: judge {evals['judge']} rm {evals['rm']} "
        + " ".join(f"{a}: acc {results[a][-1]['accuracy_start']:.3f}->{results[a][-1]['accuracy']:.3f} "
                   f"len {results[a][-1]['length_start']:.1f}->{results[a][-1]['length']:.1f}" for a in ARMS)
        + f" ({time.perf_counter() - t0:.0f}s)")
    (workdir / "results.partial.json").write_text(json.dumps({"arms": results, **extra}, indent=2))
  (workdir / "results.json").write_text(json.dumps({"arms": results, **extra}, indent=2))
  table = write_tables(results, extra, workdir)
  write_curves(results, workdir / "curves.png")
  return {"results": results, "extra": extra, "table": table, "seconds": time.perf_counter() - t0}


def write_tables(results: dict, extra: dict, workdir: Path) -> str:
  results = {a: [{k: v for k, v in r.items() if k != "curves"} for r in rows] for a, rows in results.items()}
  acc = [("accuracy_start", "acc start"), ("accuracy", "acc end"), ("accuracy_gain", "acc gain")]
  length = [("length_start", "len start"), ("length", "len end"), ("length_gain", "len gain")]
  parts = ["Held-out greedy accuracy (%), before and after RL:\n", format_table(results, columns=acc),
           "\nHeld-out greedy response length (tokens):\n", format_table(results, columns=length, percent=False),
           "\nbrpo minus grpo_rm, paired by seed (accuracy in points, length in tokens):\n",
           format_paired(results, "brpo", keys=[("accuracy", "acc end"), ("accuracy_gain", "acc gain")]),
           format_paired(results, "brpo", keys=[("length", "len end"), ("length_gain", "len gain")], percent=False),
           "\nThe judge (held-out decisive pairs, both orders) and the scalar RM (held-out pairs):\n",
           format_table({"judge": extra["judge"]}, columns=[("accuracy", "accuracy"), ("accuracy_both_orders", "both orders"),
                                                           ("invalid", "invalid"), ("first_preferred", "first preferred"),
                                                           ("inconsistent", "inconsistent")]),
           format_table({"rm": extra["rm"]}, columns=[("pair_accuracy", "confounded pairs"),
                                                     ("unconfounded_accuracy", "unconfounded pairs"),
                                                     ("length_preference", "prefers longer (both right)")])]
  table = "\n".join(parts)
  (workdir / "table.md").write_text(table + "\n")
  return table


def write_curves(results: dict, path: Path) -> None:
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(10, 4))
  FigureCanvasAgg(fig)
  for j, (split, key, label) in enumerate((("eval", "accuracy", "held-out accuracy (%)"),
                                           ("train", "response_length", "training response length (tokens)"))):
    ax = fig.add_subplot(1, 2, j + 1)
    for arm, color in zip(ARMS, ("tab:blue", "tab:red")):
      rows = [r["curves"][split] for r in results[arm]]
      n = min(len(x) for x in rows)
      steps = [x["step"] for x in rows[0][:n]]
      v = np.array([[x[key] for x in r[:n]] for r in rows]) * (100 if key == "accuracy" else 1)
      se = v.std(0, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else np.zeros(n)
      ax.plot(steps, v.mean(0), "-o" if split == "eval" else "-", color=color, label=arm, markersize=3)
      ax.fill_between(steps, v.mean(0) - se, v.mean(0) + se, color=color, alpha=0.2)
    ax.set_xlabel("RL step")
    ax.set_ylabel(label)
    ax.legend(fontsize=8)
  fig.suptitle("BRPO (pairwise judge) vs GRPO (scalar RM), length-hacking toy; mean ± SE over seeds")
  fig.tight_layout()
  fig.savefig(str(path), dpi=120)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  out = run([int(s) for s in _SEEDS.value.split(",")], Path(_WORKDIR.value), _RL_STEPS.value)
  print("\n" + out["table"] + f"\n\n{out['seconds']:.0f} s")


if __name__ == "__main__":
  _SEEDS = flags.DEFINE_string("seeds", "0,1,2", "comma-separated seeds")
  _WORKDIR = flags.DEFINE_string("workdir", None, "where every run and the table go")
  _RL_STEPS = flags.DEFINE_integer("rl_steps", None, "both arms' RL steps (default: configs/brpo.py's)")
  flags.mark_flag_as_required("workdir")
  app.run(main)
