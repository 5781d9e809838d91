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
from typing import Callable, Optional, Sequence

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
    cfg0, evaluator, problems, base_params = _seed_setup(base, workdir, seed)
    for m in methods:
      if m == "base":
        metrics = evaluator.evaluate({"policy": base_params}, problems)
      elif m == "self_refine":
        metrics = correction_protocols.self_refine(evaluator, {"policy": base_params}, problems)
      else:
        metrics = evaluator.evaluate({"policy": _trained(cfg0, m, workdir, seed, base_params)}, problems)
      results[m] = sorted(results[m] + [{"seed": seed, **metrics}], key=lambda r: r["seed"])
      # rows so far, so a run cut short still leaves every finished method's numbers
      (workdir / "results.partial.json").write_text(json.dumps(results, indent=2))
      log(f"seed {seed} {m:>17}: acc@t1 {metrics['acc_t1']:.3f} acc@t2 {metrics['acc_t2']:.3f} "
          f"delta {metrics['delta']:+.3f} i->c {metrics['delta_i2c']:.3f} c->i {metrics['delta_c2i']:.3f}"
          f"  ({time.perf_counter() - t0:.0f}s)")
  return {**write_outputs(results, workdir), "seconds": time.perf_counter() - t0}


def _seed_setup(base: ml_collections.ConfigDict, workdir: Path, seed: int):
  """The seed's config, evaluator (a SCoRe recipe: the 2-attempt eval), eval problems and base model
  (warmed up in workdir/seed{seed}/base, or restored from there)."""
  cfg0 = copy.deepcopy(base)
  cfg0.seed = seed
  typed: ExperimentConfig = from_configdict(cfg0)
  evaluator = loop.build(typed, workdir / f"seed{seed}" / "base")["recipe"]
  problems = evaluator.task.eval_problems(seed, typed.train.eval_prompts)
  base_run = loop.train(dataclasses.replace(typed, train=dataclasses.replace(typed.train, steps=0)),
                        workdir / f"seed{seed}" / "base")
  return cfg0, evaluator, problems, base_run.params


def _trained(cfg0: ml_collections.ConfigDict, method: str, workdir: Path, seed: int, base_params):
  """The method's final params: trained from the base in workdir/seed{seed}/{method}, or restored."""
  c = method_config(cfg0, method)
  c.tokenizer.update(kind="spm", path=str(workdir / f"seed{seed}" / "base" / "tokenizer.model"))
  return loop.train(from_configdict(c), workdir / f"seed{seed}" / method, init_params=base_params).params


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


FIXED_FIRST_COLUMNS = (
    ("fix_rate", "fix rate"),
    ("break_rate", "break rate"),
    ("acc_t2", "Acc@t2"),
    ("delta", "Δ(t1,t2)"),
)


def fixed_first(base: ml_collections.ConfigDict, workdir: Path, seeds: Sequence[int],
                methods: Sequence[str] = METHODS, log: Callable[[str], None] = print) -> dict:
  """SCoRe §4's fixed-first-attempt check on a finished sweep: every model writes its second attempt
  after the *base model's* greedy first attempt (critjax.eval.correction_protocols.fixed_first).

  A method's own Δ depends on how many of its own first attempts are wrong; here every row corrects
  one pool of errors, so the fix rate P(t2 right | t1 wrong) and break rate P(t2 wrong | t1 right)
  compare correction itself, and an offline method's gap between the two protocols is the paper's
  distribution shift. Trains nothing: every (method, seed) must have its final checkpoint in workdir
  (self_refine, a different protocol, is left out). Writes fixed_first.json and fixed_first.md."""
  _require_known(methods, "")
  workdir = Path(workdir)
  methods = [m for m in methods if m != "self_refine"]
  missing = []
  for seed in seeds:
    for m in methods:
      if m == "base" and not base.warmup.steps:
        continue          # no warm-up: the base is the seeded init; nothing to restore
      run_dir = workdir / f"seed{seed}" / m
      want = base.warmup.steps if m == "base" else base.train.steps    # the base run saves its warm-up phase
      final = _final_step(run_dir)
      if final != want:
        missing.append(f"{run_dir} (final checkpoint {final}, want step {want})")
  if missing:
    raise FileNotFoundError("fixed_first evaluates finished runs only; missing:\n  " + "\n  ".join(missing)
                            + "\nRun the sweep (experiments/score_sweep.run) with the same config first.")
  results: dict[str, list[dict]] = {m: [] for m in methods}
  for seed in seeds:
    cfg0, evaluator, problems, base_params = _seed_setup(base, workdir, seed)
    first_ids, first_ok = correction_protocols.first_attempts(evaluator, {"policy": base_params}, problems)
    for m in methods:
      params = base_params if m == "base" else _trained(cfg0, m, workdir, seed, base_params)
      metrics = correction_protocols.fixed_first(evaluator, {"policy": params}, problems, first_ids, first_ok)
      results[m].append({"seed": seed, **metrics})
      log(f"seed {seed} {m:>17}: base's first attempts right {metrics['acc_t1']:.3f}; fix rate "
          f"{metrics['fix_rate']:.3f} break rate {metrics['break_rate']:.3f} acc@t2 {metrics['acc_t2']:.3f}")
  return write_fixed_first(results, workdir)


def write_fixed_first(results: dict[str, list[dict]], workdir: Path) -> dict:
  """fixed_first.json and fixed_first.md (mean ± SE; with SCoRe, its paired differences) in workdir."""
  workdir.mkdir(parents=True, exist_ok=True)
  table = format_table(results, columns=FIXED_FIRST_COLUMNS)
  if "score" in results and len(results) > 1:
    table += "\nPaired by seed:\n\n" + format_paired(results, "score", keys=FIXED_FIRST_COLUMNS[::2])
  (workdir / "fixed_first.json").write_text(json.dumps(results, indent=2))
  (workdir / "fixed_first.md").write_text(table + "\n")
  return {"results": results, "table": table}


def _final_step(run_dir: Path) -> Optional[int]:
  """The latest checkpoint step under run_dir/checkpoints (None if none); reads the folder names only."""
  steps = [int(p.name) for p in (run_dir / "checkpoints").glob("*") if p.name.isdigit()]
  return max(steps, default=None)


def merge(sources: Sequence[Path], workdir: Path) -> dict:
  """One table from sweeps run apart (e.g. a seed per process or per host): their results.json
  files must hold the same methods and disjoint seeds. Where every source also has a fixed_first.json
  (`fixed_first`), those are joined the same way into the workdir's fixed_first table."""
  out = write_outputs(_join(sources, "results.json"), Path(workdir))
  if all((Path(src) / "fixed_first.json").exists() for src in sources):
    out["fixed_first"] = write_fixed_first(_join(sources, "fixed_first.json"), Path(workdir))
  return out


def _join(sources: Sequence[Path], name: str) -> dict[str, list[dict]]:
  merged: dict[str, list[dict]] = {}
  for src in sources:
    path = Path(src) / name
    if not path.exists():
      raise FileNotFoundError(f"{path}: no {name} (did that sweep finish?)")
    part = json.loads(path.read_text())
    if merged and set(part) != set(merged):
      raise ValueError(f"{path}: methods {sorted(part)} differ from the first source's {sorted(merged)}")
    for m, rows in part.items():
      seen = {r["seed"] for r in merged.get(m, [])}
      dup = seen & {r["seed"] for r in rows}
      if dup:
        raise ValueError(f"{path}: seed(s) {sorted(dup)} of method {m!r} already come from another source")
      merged.setdefault(m, []).extend(rows)
  return merged
