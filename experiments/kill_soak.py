"""Kill a small training run at random moments, resume it each time, and compare it with an
uninterrupted run of the same command (the fault test of tests/test_faults.py, longer).

  python -m experiments.kill_soak --workdir=/tmp/soak --kills=20 --terms=3 [--seed=0]

Each interruption starts `python -m experiments.train` on the soak's workdir, waits until the run
has logged a row past its last checkpoint, and then either SIGKILLs it at a random moment, SIGKILLs
it while a checkpoint is being written (an orbax temporary folder exists), or SIGTERMs it (timed to
exit). After every interruption the log must be a prefix of the uninterrupted run's log (no row
twice, every value equal); at the end the resumed run's log must equal it row for row. Prints one
JSON line per interruption and a summary (kills, exact resumes, corrupt checkpoints, duplicated rows,
seconds from SIGTERM to exit).
"""
from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

TIMING = ("step_seconds", "rollout_seconds", "update_seconds", "tokens_per_second")
# A GRPO run small enough to start in seconds, long enough to be killed many times (a checkpoint
# every 2 RL steps, so kills often land in a write). The tiny model's rewards are mostly 0, so an
# entropy bonus gives every step a gradient: a resume that got the parameters or the optimizer
# state wrong shows in the next step's loss and entropy.
OVERRIDES = {
    "model.d_model": 32, "model.n_layers": 1, "model.n_heads": 2, "model.n_kv_heads": 1, "model.head_dim": 16,
    "model.d_ff": 64, "warmup.steps": 10, "warmup.batch_size": 8, "rollout.prompts_per_step": 4,
    "rollout.group_size": 4, "rollout.max_new_tokens": 28, "task.min_digits": 1, "task.max_digits": 2,
    "tokenizer.corpus_size": 2000, "train.eval_every": 4, "train.eval_prompts": 8, "train.checkpoint_every": 2,
    "rl.loss.entropy_coef": 0.01,
}


def command(workdir: Path, steps: int) -> list[str]:
  over = {**OVERRIDES, "train.steps": steps}
  return [sys.executable, "-m", "experiments.train", "--config=configs/grpo.py:tiny", f"--workdir={workdir}",
          *[f"--config.{k}={v}" for k, v in over.items()]]


def read_rows(workdir: Path) -> list[dict]:
  """metrics.jsonl's complete rows without the wall-clock fields."""
  from critjax.train.metrics import read_metrics
  return [{k: v for k, v in r.items() if k not in TIMING} for r in read_metrics(workdir)]


def row_key(row: dict) -> tuple:
  """What makes a row unique: its step and which metrics it holds (train, warmup/ or eval/ row)."""
  return (row["step"], next(iter(sorted(k for k in row if k != "step")), ""))


def duplicated_rows(rows: list[dict]) -> int:
  return len(rows) - len({row_key(r) for r in rows})


def same_row(a: dict, b: dict) -> bool:
  if a.keys() != b.keys():
    return False
  for k in a:
    x, y = a[k], b[k]
    if isinstance(x, float) and isinstance(y, float):
      if not (x == y or (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-6 * max(abs(x), abs(y))):
        return False
    elif x != y:
      return False
  return True


def is_prefix(rows: list[dict], reference: list[dict]) -> bool:
  return len(rows) <= len(reference) and all(same_row(a, b) for a, b in zip(rows, reference))


def _checkpoint_rows(workdir: Path) -> int:
  """Rows of metrics.jsonl saved with the latest finished checkpoint (0 when there is none)."""
  ckpts = Path(workdir) / "checkpoints"
  steps = sorted(int(p.name) for p in ckpts.iterdir() if p.name.isdigit()) if ckpts.is_dir() else []
  if not steps:
    return 0
  meta = ckpts / str(steps[-1]) / "_CHECKPOINT_METADATA"
  return json.loads(meta.read_text()).get("custom_metadata", {}).get("metrics_rows", 0) if meta.exists() else 0


def _temporary_checkpoints(workdir: Path) -> set:
  """orbax's folders of checkpoints being written (a kill can leave them behind; orbax ignores them)."""
  ckpts = Path(workdir) / "checkpoints"
  return {p.name for p in ckpts.iterdir() if "tmp" in p.name} if ckpts.is_dir() else set()


def _progressed(workdir: Path, since: float, rows0: int) -> bool:
  """This start has logged a row past its checkpoint (the log was written after `since`)."""
  path = Path(workdir) / "metrics.jsonl"
  return path.exists() and path.stat().st_mtime > since and len(read_rows(workdir)) > rows0


def interrupt(workdir: Path, steps: int, mode: str, rng: random.Random, timeout: float = 300.0) -> dict:
  """Starts the run, waits for progress past its checkpoint, interrupts it by `mode`
  (kill | kill_in_checkpoint | term); returns what happened."""
  rows0, stale = _checkpoint_rows(workdir), _temporary_checkpoints(workdir)
  since = time.time()
  proc = subprocess.Popen(command(workdir, steps), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          env={**os.environ, "JAX_PLATFORMS": "cpu"})
  t0 = time.monotonic()
  out = {"mode": mode}
  writing = lambda: bool(_temporary_checkpoints(workdir) - stale)
  while time.monotonic() - t0 < timeout and proc.poll() is None and not _progressed(workdir, since, rows0):
    time.sleep(0.02)
  if mode == "kill_in_checkpoint":
    while time.monotonic() - t0 < timeout and proc.poll() is None and not writing():
      time.sleep(0.002)
  elif proc.poll() is None:
    time.sleep(rng.uniform(0.0, 1.5))
  if proc.poll() is not None:           # it finished (or failed) before the signal
    _, err = proc.communicate()
    return {**out, "signalled": False, "returncode": proc.returncode, "stderr": err[-2000:]}
  sig = signal.SIGTERM if mode == "term" else signal.SIGKILL
  out["in_checkpoint_write"] = writing()
  t_sig = time.monotonic()
  proc.send_signal(sig)
  _, err = proc.communicate()
  last = err.strip().splitlines()[-1:] if mode == "term" else []
  step = last[0].split("after step ")[1].split(";")[0] if last and "stopped by SIGTERM after step " in last[0] else None
  out["checkpointed"] = step is not None and (Path(workdir) / "checkpoints" / step).is_dir()
  out.update(signalled=True, returncode=proc.returncode, exit_seconds=round(time.monotonic() - t_sig, 3),
             rows=len(read_rows(workdir)), after_rows=rows0, stderr_lines=err.strip().splitlines()[-1:] if mode == "term" else [])
  return out


def soak(workdir: Path, *, kills: int, terms: int, steps: int, seed: int = 0, log=print) -> dict:
  """The uninterrupted reference, then `kills` + `terms` interruptions in a random order, then the
  resumed run to its end. Returns the summary."""
  rng = random.Random(seed)
  ref_dir, run_dir = Path(workdir) / "reference", Path(workdir) / "interrupted"
  done = subprocess.run(command(ref_dir, steps), capture_output=True, text=True)
  if done.returncode:
    raise RuntimeError(f"the uninterrupted run failed:\n{done.stderr[-3000:]}")
  reference = read_rows(ref_dir)
  # Every other kill waits for a checkpoint write; the order of kills and SIGTERMs is random.
  modes = ["term"] * terms + [("kill_in_checkpoint", "kill")[i % 2] for i in range(kills)]
  rng.shuffle(modes)
  events = []
  for mode in modes:
    ev = interrupt(run_dir, steps, mode, rng)
    rows = read_rows(run_dir)
    ev.update(log_is_prefix=is_prefix(rows, reference), duplicated_rows=duplicated_rows(rows))
    # A start that failed by itself (not by our signal) is a checkpoint it could not restore.
    ev["failed_start"] = not ev["signalled"] and ev["returncode"] != 0
    events.append(ev)
    log(json.dumps(ev))
  final = subprocess.run(command(run_dir, steps), capture_output=True, text=True)
  rows = read_rows(run_dir)
  terms_ev = [e for e in events if e["mode"] == "term" and e["signalled"]]
  summary = {
      "kills": sum(e["signalled"] and e["mode"] != "term" for e in events),
      "kills_in_checkpoint_write": sum(bool(e.get("in_checkpoint_write")) for e in events if e["mode"] != "term"),
      "terms": len(terms_ev),
      # status 143, one line naming the step, and that step's checkpoint on disk
      "term_clean_exits": sum(e["returncode"] == 128 + signal.SIGTERM and e["checkpointed"] for e in terms_ev),
      "term_exit_seconds": [e["exit_seconds"] for e in terms_ev],
      "exact_resumes": sum(e["log_is_prefix"] for e in events),
      "interruptions": len(events),
      "corrupt_checkpoints": sum(e["failed_start"] for e in events) + (final.returncode != 0),
      "duplicated_rows": duplicated_rows(rows),
      "final_equals_reference": len(rows) == len(reference) and is_prefix(rows, reference),
      "rows": len(rows),
  }
  if final.returncode:
    summary["final_stderr"] = final.stderr[-2000:]
  return summary


def main(argv):
  del argv
  f = flags.FLAGS
  t0 = time.monotonic()
  summary = soak(Path(f.workdir), kills=f.kills, terms=f.terms, steps=f.steps, seed=f.seed)
  summary["wall_seconds"] = round(time.monotonic() - t0, 1)
  print(json.dumps(summary))


if __name__ == "__main__":
  # Flags only when run as a script: tests import this module beside other experiments' flags.
  flags.DEFINE_string("workdir", None, "a new directory for the two runs")
  flags.DEFINE_integer("kills", 20, "SIGKILLs (at random moments, some during checkpoint writes)")
  flags.DEFINE_integer("terms", 3, "SIGTERMs")
  flags.DEFINE_integer("steps", 60, "RL steps of the run")
  flags.DEFINE_integer("seed", 0, "the interruptions' random moments")
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
