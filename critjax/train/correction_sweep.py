"""SCoRe's comparison table on one task: base, prompted and trained baselines, ablations, SCoRe.

For each seed the base model is fitted once (supervised warm-up on the two-attempt format); every
trained method then starts from it with the same budget (steps x prompts x samples) and is
evaluated by the same greedy two-attempt protocol. Rows follow SCoRe Tables 2-4:

  base              the warm-up model prompted to self-correct
  self_refine       the warm-up model with Self-Refine prompting (feedback, then refine)
  star              STaR-style filtered SFT on successful second attempts, re-sampled every step
  pair_sft          Pair-SFT on (wrong attempt -> correct attempt) pairs, re-sampled every step
  star_offline      STaR on episodes of the frozen base model, the paper's form (its data is
  pair_sft_offline  generated once by the base model); Pair-SFT likewise
  single_turn_rl    RL on the first attempt only (same estimator and KL), then prompted to correct
  score_no_stage1   SCoRe with all steps in Stage II
  score_no_shaping  SCoRe with r2 = r_hat(y2) (no progress bonus)
  score             SCoRe, Stage I then Stage II
"""
from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, Sequence

import jax
import ml_collections

from critjax.config import ExperimentConfig, from_configdict
from critjax.eval import correction_protocols
from critjax.eval.self_correction import format_paired, format_table, write_bar_chart
from critjax.train import loop

METHODS = ("base", "self_refine", "star_offline", "pair_sft_offline", "star", "pair_sft", "single_turn_rl",
           "score_no_stage1", "score_no_shaping", "score")


def method_config(base: ml_collections.ConfigDict, method: str) -> ml_collections.ConfigDict:
  """The SCoRe config changed only where the method differs (recipe, its args, its loss kind)."""
  c = copy.deepcopy(base)
  c.name = f"{base.name}_{method}"
  recipe, offline = method.removesuffix("_offline"), method.endswith("_offline")
  if recipe in ("star", "pair_sft"):
    c.recipe = recipe
    c.recipe_args = ml_collections.ConfigDict(dict(template=base.recipe_args.template,
                                                   attempts=base.recipe_args.attempts,
                                                   data="base" if offline else "online"))
  elif method == "single_turn_rl":
    c.recipe = "grpo"
    c.recipe_args = ml_collections.ConfigDict(dict(template=base.recipe_args.template))
    c.rl.loss.kl_coef = base.recipe_args.beta1      # SCoRe's single-turn objective: r - beta1 KL
  elif method == "score_no_stage1":
    c.recipe_args.stage1_steps = 0
  elif method == "score_no_shaping":
    c.recipe_args.shaping = False
  elif method != "score":
    raise ValueError(f"method {method!r} is not trained; known: {METHODS}")
  return c


def run(base: ml_collections.ConfigDict, workdir: Path, seeds: Sequence[int], methods: Sequence[str] = METHODS,
        log: Callable[[str], None] = print) -> dict:
  """Trains and evaluates every method for every seed; writes results.json, table.md, ablation.png.

  Rows already in the workdir's results.json are kept, so a later pass with more methods or seeds
  adds to the table; a (method, seed) run again replaces its row."""
  _require_known(methods, "")   # before any warm-up: a typo should not cost the base model's minutes
  workdir = Path(workdir)
  results = _earlier_rows(workdir / "results.json", methods, seeds)
  t0 = time.perf_counter()
  for seed in seeds:
    cfg0 = copy.deepcopy(base)
    cfg0.seed = seed
    typed: ExperimentConfig = from_configdict(cfg0)
    evaluator = loop.build(typed, workdir / f"seed{seed}" / "base")["recipe"]   # SCoRe recipe: 2-attempt eval
    problems = evaluator.task.eval_problems(seed, typed.train.eval_prompts)
    base_run = loop.train(dataclasses.replace(typed, train=dataclasses.replace(typed.train, steps=0)),
                          workdir / f"seed{seed}" / "base")
    base_params = base_run.params
    for m in methods:
      if m == "base":
        metrics = evaluator.evaluate(base_params, problems)
      elif m == "self_refine":
        metrics = correction_protocols.self_refine(evaluator, base_params, problems)
      else:
        c = method_config(cfg0, m)
        c.tokenizer.update(kind="spm", path=str(workdir / f"seed{seed}" / "base" / "tokenizer.model"))
        res = loop.train(from_configdict(c), workdir / f"seed{seed}" / m, init_params=base_params)
        metrics = evaluator.evaluate(res.params, problems)
      results[m] = sorted(results[m] + [{"seed": seed, **metrics}], key=lambda r: r["seed"])
      # rows so far, so a run cut short still leaves every finished method's numbers
      (workdir / "results.partial.json").write_text(json.dumps(results, indent=2))
      log(f"seed {seed} {m:>17}: acc@t1 {metrics['acc_t1']:.3f} acc@t2 {metrics['acc_t2']:.3f} "
          f"delta {metrics['delta']:+.3f} i->c {metrics['delta_i2c']:.3f} c->i {metrics['delta_c2i']:.3f}"
          f"  ({time.perf_counter() - t0:.0f}s)")
  return {**write_outputs(results, workdir), "seconds": time.perf_counter() - t0}


def _require_known(methods: Sequence[str], where: str):
  unknown = [m for m in methods if m not in METHODS]
  if unknown:
    raise ValueError(f"{where}unknown method(s) {unknown}; known: {list(METHODS)}")


def _earlier_rows(path: Path, methods: Sequence[str], seeds: Sequence[int]) -> dict[str, list[dict]]:
  """The rows of an earlier pass in this workdir, minus those this pass will redo, in METHODS order."""
  earlier = json.loads(path.read_text()) if path.exists() else {}
  _require_known(earlier, f"{path}: ")
  redo = set(seeds)
  return {m: [r for r in earlier.get(m, []) if not (m in methods and r["seed"] in redo)]
          for m in METHODS if m in earlier or m in methods}


def write_outputs(results: dict[str, list[dict]], workdir: Path) -> dict:
  """results.json, table.md (mean ± standard error over seeds; with SCoRe, its paired differences
  from every other row) and ablation.png in workdir."""
  workdir.mkdir(parents=True, exist_ok=True)
  table = format_table(results)
  if "score" in results and len(results) > 1:
    table += "\nPaired by seed:\n\n" + format_paired(results, "score")
  (workdir / "results.json").write_text(json.dumps(results, indent=2))
  (workdir / "table.md").write_text(table + "\n")
  write_bar_chart(results, str(workdir / "ablation.png"))
  return {"results": results, "table": table}


def merge(sources: Sequence[Path], workdir: Path) -> dict:
  """One table from sweeps run apart (e.g. a seed per process or per host): their results.json
  files must hold the same methods and disjoint seeds."""
  merged: dict[str, list[dict]] = {}
  for src in sources:
    path = Path(src) / "results.json"
    if not path.exists():
      raise FileNotFoundError(f"{path}: no results.json (did that sweep finish?)")
    part = json.loads(path.read_text())
    if merged and set(part) != set(merged):
      raise ValueError(f"{path}: methods {sorted(part)} differ from the first source's {sorted(merged)}")
    for m, rows in part.items():
      seen = {r["seed"] for r in merged.get(m, [])}
      dup = seen & {r["seed"] for r in rows}
      if dup:
        raise ValueError(f"{path}: seed(s) {sorted(dup)} of method {m!r} already come from another source")
      merged.setdefault(m, []).extend(rows)
  return write_outputs(merged, Path(workdir))
