"""Arms from one warm-up per seed: the shared skeleton of the toy tables (CRL, Critique-GRPO, ...).

Per seed, one warm-up run (`train.steps=0`) in workdir/seed{s}/warmup; every arm then starts each
trained role from that run's checkpoint (`roles.*.init="checkpoint"`; a single-policy config gets
`roles.policy`) with the same RL budget. An arm is a function config -> config. A run already
finished in the workdir is restored, not retrained. Writes results.json (every seed's row of every
arm; `warmup` is each arm's evaluation before its first RL step, the same model for every arm),
table.md (mean ± SE, then `reference` minus each arm paired by seed) and table.png.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import ml_collections

from critjax.config import from_configdict
from critjax.eval.self_correction import format_paired, format_table, write_bar_chart
from critjax.train import loop
from critjax.train.metrics import read_metrics


def from_warmup(base: ml_collections.ConfigDict, warmup_dir: Path) -> ml_collections.ConfigDict:
  """The config `base` started from the warm-up run's checkpoint and tokenizer, with no warm-up of its own."""
  c = ml_collections.ConfigDict(base.to_dict())
  if not c.roles:                 # a single-policy config: its one role, named
    c.roles = ml_collections.ConfigDict({"policy": {}})
  for role in c.roles:
    c.roles[role].update(dict(init="checkpoint", init_from=str(warmup_dir)))
  c.warmup.steps = 0
  if c.tokenizer.kind == "train_spm":
    c.tokenizer.update(kind="spm", path=str(Path(warmup_dir) / "tokenizer.model"))
  return c


def stage_evals(workdir: Path, bounds: dict[str, int]) -> dict[str, dict]:
  """{row: the evaluation a run logged at that RL step} (prefix stripped): the rows of a table whose
  rows are one run's stages (ReVISE's, self-rationalization's iterations)."""
  evals = {r["step"]: {k[len("eval/"):]: v for k, v in r.items() if k.startswith("eval/")}
           for r in read_metrics(workdir) if any(k.startswith("eval/") for k in r)}
  missing = {row: s for row, s in bounds.items() if s not in evals}
  if missing:
    raise ValueError(f"{workdir}: no evaluation at RL step(s) {missing}; config.train.eval_every must divide "
                     "every stage's steps")
  return {row: evals[s] for row, s in bounds.items()}


def first_eval(workdir: Path) -> dict:
  """The evaluation a run logged before its first RL step (its starting model), without the prefix."""
  for r in read_metrics(workdir):
    if r.get("step") == 0 and any(k.startswith("eval/") for k in r):
      return {k[5:]: v for k, v in r.items() if k.startswith("eval/")}
  return {}


def run(base: ml_collections.ConfigDict, workdir: Path, seeds, arms: dict[str, Callable], *, columns, reference: str,
        title: str, log=print) -> dict:
  results = {name: [] for name in ["warmup", *arms]}
  t0 = time.perf_counter()
  workdir.mkdir(parents=True, exist_ok=True)
  for seed in seeds:
    b = ml_collections.ConfigDict(base.to_dict())
    b.seed = seed
    wdir = workdir / f"seed{seed}" / "warmup"
    w = ml_collections.ConfigDict(b.to_dict())
    w.train.steps = 0
    loop.train(from_configdict(w), wdir)
    rows = {}
    for name, arm in arms.items():
      rdir = workdir / f"seed{seed}" / name
      rows[name] = loop.train(from_configdict(arm(from_warmup(b, wdir))), rdir).eval
      rows.setdefault("warmup", first_eval(rdir))
    for name in results:
      m = rows[name]
      results[name].append({"seed": seed, **m})
      log(f"seed {seed} {name:>10}: " + " ".join(f"{k} {m.get(k, float('nan')):.3f}" for k, _ in columns)
          + f"  ({time.perf_counter() - t0:.0f}s)")
    (workdir / "results.partial.json").write_text(json.dumps(results, indent=2))
  (workdir / "results.json").write_text(json.dumps(results, indent=2))
  table = write_table(results, workdir, columns=columns, reference=reference, title=title)
  return {"results": results, "table": table, "seconds": time.perf_counter() - t0}


def write_table(results: dict, workdir: Path, *, columns, reference: str, title: str) -> str:
  """table.md (mean ± SE; `reference` minus each arm, paired by seed) and table.png from the rows."""
  table = format_table(results, columns=columns)
  if reference in results and len(results) > 1:
    table += "\n\nPaired by seed:\n\n" + format_paired(results, reference, keys=columns)
  (workdir / "table.md").write_text(table + "\n")
  write_bar_chart(results, str(workdir / "table.png"), columns=columns, title=title)
  return table
