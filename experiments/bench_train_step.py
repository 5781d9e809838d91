"""Train-step time (forward + backward + AdamW through `critjax.train.update.update_step`) for the
tiny model at the tiny config's batch, float32 vs bfloat16 activations, and peak host memory.

Command (repo root, project venv; ~3 min on a 2-core CPU):
  python -m experiments.bench_train_step --out runs/bench_train_step.json

Dimension key: N rows (prompts x samples), T tokens.

The step is the one `configs/grpo.py:tiny` runs: N = 16 prompts x 8 samples = 128 rows of
T = max_prompt_len 16 + max_new_tokens 48 = 64 tokens, GRPO policy loss (token ratio, clip 0.2,
seq-mean-token-mean, no KL), clip-by-global-norm 1.0 + AdamW 3e-4, one micro-batch, jitted with
the state donated. Inputs are random (tokens, advantages, old log-probs); the loss mask covers the
48 response tokens. bfloat16 keeps float32 parameters and optimizer state (`param_dtype`), only
activations are bfloat16.

Each variant runs in its own child process so that `resource.getrusage(RUSAGE_SELF).ru_maxrss`
(peak resident memory, compile included) belongs to that variant alone; the parent alternates
float32, bfloat16, float32, ... for --rounds rounds and reports medians of the per-child medians.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from configs.common import base_config, tiny_model
from critjax.models import decoder
from critjax.models.config import ModelConfig
from critjax.rl.losses import LossConfig
from critjax.train.state import make_optimizer, new_state
from critjax.train.update import RoleSpec, update_step

DTYPES = ("float32", "bfloat16")


def tiny_shapes() -> dict:
  """Batch shape of configs/grpo.py:tiny, read from the shared config block (not re-typed here)."""
  r = base_config("tiny").rollout
  return dict(rows=r.prompts_per_step * r.group_size, prompt=r.max_prompt_len, new=r.max_new_tokens)


def random_batch(cfg: ModelConfig, rows: int, prompt: int, new: int, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  t = prompt + new
  mask = np.zeros((rows, t), np.float32)
  mask[:, prompt:] = 1.0
  return {"tokens": rng.integers(0, cfg.vocab_size, (rows, t)).astype(np.int32), "mask": mask,
          "adv": (rng.standard_normal((rows, 1)) * mask).astype(np.float32),
          "old_logp": (np.log(1.0 / cfg.vocab_size) + 0.1 * rng.standard_normal((rows, t)) * mask).astype(np.float32)}


def time_train_step(dtype: str, *, steps: int = 5, rows: int | None = None, prompt: int | None = None,
                    new: int | None = None, seed: int = 0, model: dict | None = None) -> dict:
  """Median wall time of `steps` jitted update steps after one compile call (`model` overrides
  configs/common.py `tiny_model()`, for the smoke test)."""
  shapes = tiny_shapes()
  rows, prompt, new = rows or shapes["rows"], prompt or shapes["prompt"], new or shapes["new"]
  c = base_config("tiny")
  cfg = ModelConfig(**dict(model or tiny_model(), dtype=dtype, param_dtype="float32"))
  params, _ = decoder.init_params(cfg, jax.random.key(seed))
  o = c.optim
  opt = make_optimizer(o.learning_rate, warmup_steps=o.warmup_steps, b1=o.b1, b2=o.b2,
                       weight_decay=o.weight_decay, grad_clip=o.grad_clip)
  spec = RoleSpec(model=cfg, optimizer=opt, kind="policy", loss=LossConfig(**c.rl.loss.to_dict()))
  state = new_state({"policy": params}, {"policy": opt}, {}, seed)
  step = jax.jit(functools.partial(update_step, specs={"policy": spec}), donate_argnums=0)
  batch = {k: jnp.asarray(v) for k, v in random_batch(cfg, rows, prompt, new, seed).items()}
  t0 = time.perf_counter()
  state, m = jax.block_until_ready(step(state, {"policy": batch}))
  first = time.perf_counter() - t0
  ts, losses = [], []
  for _ in range(steps):
    t0 = time.perf_counter()
    state, m = jax.block_until_ready(step(state, {"policy": batch}))
    ts.append(time.perf_counter() - t0)
    losses.append(float(m["loss"]))
  if not np.all(np.isfinite(losses)) or float(m["skipped"]):
    raise RuntimeError(f"{dtype}: non-finite or skipped step, losses {losses}")
  return dict(dtype=dtype, rows=rows, T=prompt + new, first_call_s=first, step_s=float(np.median(ts)), all_s=ts,
              tokens_per_s=rows * (prompt + new) / float(np.median(ts)), last_loss=losses[-1],
              maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def load() -> float:
  return round(os.getloadavg()[0], 2)


def child(dtype: str, steps: int) -> dict:
  proc = subprocess.run([sys.executable, "-m", "experiments.bench_train_step", "--child", dtype,
                         "--steps", str(steps)], capture_output=True, text=True,
                        cwd=Path(__file__).resolve().parents[1])
  if proc.returncode:
    raise RuntimeError(f"child {dtype} failed:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--rounds", type=int, default=2)
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--child", choices=DTYPES, help=argparse.SUPPRESS)
  ap.add_argument("--out", default="runs/bench_train_step.json")
  args = ap.parse_args()
  if args.child:
    print(json.dumps(time_train_step(args.child, steps=args.steps)))
    return
  t0 = time.perf_counter()
  runs = []
  for i in range(args.rounds):
    for dtype in (DTYPES if i % 2 == 0 else DTYPES[::-1]):
      l0 = load()
      r = child(dtype, args.steps)
      r.update(round=i, load_before=l0, load_after=load())
      print(f"round {i + 1} {dtype:8s}: step {r['step_s'] * 1e3:7.1f} ms (median of {args.steps}; all "
            f"{[round(x * 1e3) for x in r['all_s']]}), first call {r['first_call_s']:.1f}s, "
            f"peak RSS {r['maxrss_mb']:.0f} MB, load {l0}->{r['load_after']}", flush=True)
      runs.append(r)
  med = {d: {k: float(np.median([r[k] for r in runs if r["dtype"] == d])) for k in ("step_s", "maxrss_mb",
                                                                                    "tokens_per_s")}
         for d in DTYPES}
  ratio = med["float32"]["step_s"] / med["bfloat16"]["step_s"]
  s = runs[0]
  print(f"| activations | step ms (median of rounds) | tokens/s | peak RSS MB |\n|---|---|---|---|")
  for d in DTYPES:
    print(f"| {d} | {med[d]['step_s'] * 1e3:.1f} | {med[d]['tokens_per_s']:,.0f} | {med[d]['maxrss_mb']:.0f} |")
  print(f"N={s['rows']} rows x T={s['T']} tokens; float32 / bfloat16 step time = {ratio:.2f}")
  Path(args.out).parent.mkdir(parents=True, exist_ok=True)
  Path(args.out).write_text(json.dumps(dict(meta=dict(jax=jax.__version__, cpus=os.cpu_count(),
                                                      wall_s=time.perf_counter() - t0),
                                            runs=runs, median=med, f32_over_bf16=ratio), indent=1))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
