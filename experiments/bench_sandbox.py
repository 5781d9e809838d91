"""HumanEval code-reward latency: the old sandbox (one child, pass = a nonce printed after `check`)
against the new one (program sandbox + trusted judge, verdict over a pipe), per item.

Command (repo root, project venv; about 40 s for 40 items x 3 repeats, 2-core CPU):
  python -m experiments.bench_sandbox --limit 40 --repeats 3 [--out runs/bench_sandbox.json]

Items: the HumanEval canonical solutions in ../shared/data (`load_humaneval`), each built into a
program the way the reward builds it (`registry.humaneval_program`). The old design is loaded from
git (`--old-ref`, default the last commit before the change) into a temporary folder, so both run
in the same process on the same machine. Each item is run by both designs back to back, the
order alternating from item to item (shared-CPU drift hits both alike), one at a time
(`max_concurrency=1`), after one warm-up run each; the time is the wall time of `CodeSandbox.run`
seen by the caller. Printed: per-item mean and median seconds of each, the ratio new / old of the
means, and how many items each scored 1. Then, for throughput (the new design starts two or three
processes per item instead of one), `run_batch` over all items at `--concurrency` (the reward's
default, 2) for each design: items/s and the ratio.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from critjax.data.datasets import load_humaneval
from critjax.rewards import code_sandbox as new_sandbox
from critjax.rewards.registry import humaneval_program

OLD_REF = "0ba88e879cc9c02523f2e73c281116f16055a71b"  # last commit with the nonce design
FILES = ("code_sandbox.py", "sandbox_child.py")


def load_old(ref: str, folder: Path):
  """The old `code_sandbox` module, its child script beside it (it finds it by its own path)."""
  repo = Path(__file__).resolve().parents[1]
  for name in FILES:
    text = subprocess.run(["git", "show", f"{ref}:critjax/rewards/{name}"], cwd=repo,
                          capture_output=True, text=True, check=True).stdout
    (folder / name).write_text(text)
  spec = importlib.util.spec_from_file_location("old_code_sandbox", folder / FILES[0])
  mod = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = mod  # dataclasses looks the module up by name
  spec.loader.exec_module(mod)
  return mod


def main():
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--limit", type=int, default=40)
  ap.add_argument("--repeats", type=int, default=1, help="runs of each item per design")
  ap.add_argument("--timeout_s", type=float, default=10.0)
  ap.add_argument("--concurrency", type=int, default=2, help="for the run_batch throughput")
  ap.add_argument("--old-ref", default=OLD_REF)
  ap.add_argument("--out", default=None, help="also write the summary as JSON here")
  args = ap.parse_args()

  exs = load_humaneval(limit=args.limit)
  items = [(humaneval_program(e.prompt, e.answer), e.meta["test"], e.meta["entry_point"])
           for e in exs]
  with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as tmp:
    old_mod = load_old(args.old_ref, Path(tmp))
    sandboxes = {
        "old": old_mod.CodeSandbox(old_mod.SandboxConfig(timeout_s=args.timeout_s), 1),
        "new": new_sandbox.CodeSandbox(new_sandbox.SandboxConfig(timeout_s=args.timeout_s), 1),
    }
    for sb in sandboxes.values():  # warm-up: page cache, unshare, interpreter
      sb.run(*items[0])
    times = {k: [] for k in sandboxes}
    failed_ids = {k: [] for k in sandboxes}
    for i, (item, ex) in enumerate(zip(items, exs)):
      order = ("old", "new") if i % 2 == 0 else ("new", "old")
      for k in order:
        for r in range(args.repeats):
          t = time.perf_counter()
          ok, _ = sandboxes[k].run(*item)
          times[k].append(time.perf_counter() - t)
          if not ok and r == 0:
            failed_ids[k].append(ex.id)
    batch_s = {}
    for k, cfg_mod in (("old", old_mod), ("new", new_sandbox)):
      sb = cfg_mod.CodeSandbox(cfg_mod.SandboxConfig(timeout_s=args.timeout_s), args.concurrency)
      t = time.perf_counter()
      sb.run_batch(*zip(*items))
      batch_s[k] = time.perf_counter() - t

  summary = {"items": len(items), "repeats": args.repeats, "isolation":
             new_sandbox.sandbox_isolation()}
  for k in sandboxes:
    summary[k] = {"mean_s": statistics.mean(times[k]), "median_s": statistics.median(times[k]),
                  "passed": len(items) - len(failed_ids[k]), "failed": failed_ids[k]}
    summary[k]["batch_items_per_s"] = len(items) / batch_s[k]
  summary["ratio_new_over_old"] = summary["new"]["mean_s"] / summary["old"]["mean_s"]
  summary["concurrency"] = args.concurrency
  summary["throughput_ratio_new_over_old"] = (summary["new"]["batch_items_per_s"]
                                              / summary["old"]["batch_items_per_s"])
  for k in sandboxes:
    s = summary[k]
    print(f"{k}: {s['mean_s']:.3f} s/item mean, {s['median_s']:.3f} median, "
          f"{s['passed']}/{len(items)} passed {s['failed'] or ''}")
  print(f"ratio new/old (means): {summary['ratio_new_over_old']:.2f}")
  print(f"run_batch at concurrency {args.concurrency}: old "
        f"{summary['old']['batch_items_per_s']:.1f} items/s, new "
        f"{summary['new']['batch_items_per_s']:.1f} items/s (ratio new/old "
        f"{summary['throughput_ratio_new_over_old']:.2f})")
  if args.out:
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
  main()
