"""Evaluate a model on a critique benchmark.

  python -m experiments.evaluate --bench=processbench --model=PATH --workdir=DIR [--limit=50]

`--model`: a GGUF file, a Hugging Face model directory, or a critjax run's workdir (`--role`
picks which of its models). Generations are cached in DIR/generations/ by model weights, stage,
prompt and sampling settings, so rerunning an interrupted evaluation continues it. Results:
DIR/results/<bench>.json (metrics, the chance level, every item's output and parse) and
DIR/results/<bench>.md (the summary table, also printed). Bad input (an unknown --bench, a bad
--limit, a missing model file, an unparsable benchmark record) is one `error:` line, before the
model is loaded.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from absl import app, flags, logging

from critjax.eval.benches import BENCHES

_BENCH = flags.DEFINE_string("bench", None, f"one of {BENCHES.names()}")
_MODEL = flags.DEFINE_string("model", None, "GGUF file, Hugging Face model directory or critjax workdir")
_WORKDIR = flags.DEFINE_string("workdir", None, "where generations and results go")
_LIMIT = flags.DEFINE_integer("limit", None, "evaluate the first N items (default: all)")
_SUBSET = flags.DEFINE_string("subset", None, "the benchmark's subsets, comma-separated (default: all)")
_ROLE = flags.DEFINE_string("role", "policy", "which model of a critjax workdir")
_BATCH = flags.DEFINE_integer("batch_size", 16, "rows per generation batch")
_MAX_NEW = flags.DEFINE_integer("max_new_tokens", 1024, "tokens per generated answer")
_MAX_PROMPT = flags.DEFINE_integer("max_prompt_len", 2048, "prompts are cut to their last N tokens")
_SAMPLES = flags.DEFINE_integer("samples", 1, "GRM benches (rmbench_grm, judgebench_grm): sampled judgments per "
                                "order, voted (SPCT)")
_TEMPERATURE = flags.DEFINE_float("temperature", None, "GRM benches: sampling temperature (default 0.5 when "
                                  "--samples > 1, else greedy)")
flags.mark_flags_as_required(["bench", "model", "workdir"])


def _fail(msg) -> None:
  print("error: " + " ".join(str(msg).split()), file=sys.stderr)
  sys.exit(2)


def summary_table(name: str, model: str, metrics: dict, chance: dict) -> str:
  lines = [f"| {name}: {model} | model | chance |", "|---|---|---|"]
  fmt = lambda x: "" if x is None else (f"{x:.1f}" if isinstance(x, float) else str(x))
  for k in list(metrics) + [k for k in chance if k not in metrics]:     # chance-only rows last
    lines.append(f"| {k} | {fmt(metrics.get(k))} | {fmt(chance.get(k))} |")
  return "\n".join(lines)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from critjax.eval.generation import Generator
  from critjax.eval.models import load_model
  if _BENCH.value not in BENCHES:
    _fail(f"--bench={_BENCH.value!r}: unknown benchmark; have {BENCHES.names()}")
  bench = BENCHES.get(_BENCH.value)()
  try:
    items = bench.load(_LIMIT.value, _SUBSET.value)     # bad records and limits stop here
  except (ValueError, OSError) as e:
    _fail(e)
  if getattr(bench, "limit_exceeded", False):
    print(f"note: --limit={_LIMIT.value} is more than the benchmark has; evaluating all {len(items)} items",
          file=sys.stderr)
  t0 = time.perf_counter()
  try:
    model = load_model(_MODEL.value, role=_ROLE.value)
  except (ValueError, OSError, ImportError) as e:
    _fail(e)
  t_load = time.perf_counter() - t0
  workdir = Path(_WORKDIR.value)
  gen = Generator(model, workdir, batch_size=_BATCH.value, max_prompt_len=_MAX_PROMPT.value)
  t1 = time.perf_counter()
  opts = {"max_new_tokens": _MAX_NEW.value, "samples": _SAMPLES.value}
  if _TEMPERATURE.value is not None:
    opts["temperature"] = _TEMPERATURE.value
  result = bench.run(gen, items, opts)
  wall = time.perf_counter() - t1
  out = workdir / "results"
  out.mkdir(parents=True, exist_ok=True)
  timing = {"items": len(items), "model_load_seconds": round(t_load, 1), "eval_seconds": round(wall, 1),
            "items_per_minute": round(60 * len(items) / max(wall, 1e-9), 2),
            "generated_tokens": gen.generated_tokens}
  record = {"bench": bench.name, "model": _MODEL.value, "model_key": model.key, "limit": _LIMIT.value,
            "subset": _SUBSET.value, "metrics": result.metrics, "chance": result.chance, "timing": timing,
            "items": result.items, "curves": result.curves}
  (out / f"{bench.name}.json").write_text(json.dumps(record, indent=1))
  table = summary_table(bench.name, model.name, result.metrics, result.chance)
  (out / f"{bench.name}.md").write_text(table + "\n")
  if result.curves:
    from critjax.eval.plots import curves_png
    curves_png(result.curves, out / f"{bench.name}.png", title=f"{bench.name}: {model.name}")
  print(table)
  print(json.dumps(timing))


if __name__ == "__main__":
  app.run(main)
