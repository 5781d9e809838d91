"""A DPO step against a GRPO step on the same tokens: what loss 'dpo' costs (issue 19).

Command (repo root, project venv; ~1 min on a 2-core CPU):
  python -m experiments.bench_dpo_step --out runs/bench_dpo_step.json

Dimension key: N rows, T tokens. Both steps take configs/grpo.py:tiny's batch, N = 128 rows of
T = 64 tokens (the loss mask on the 48 response tokens), on the tiny model, float32, one
micro-batch, jitted with the state donated (experiments/bench_train_step.py's set-up):
  grpo        the GRPO update (token ratio, clip 0.2, no KL): forward + backward + AdamW;
  dpo         the reference's log-probs of the 128 rows (= 64 pairs; the loop scores them once per
              step, `Trainer.ref_logprobs`) + the DPO update (RPO alpha 0.1);
  dpo_update  the DPO update alone.
The steps alternate in one process (grpo, dpo, grpo, ...) for --rounds rounds of --steps steps;
the table reports medians and the ratios to grpo. A GRPO step of the loop also samples its rows,
which a DPO step (offline pairs) does not: the loop-level ratio is in the runs' step_seconds.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
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
from critjax.train.update import RoleSpec, sequence_logprobs, update_step
from experiments.bench_train_step import random_batch, tiny_shapes


def make_steps(seed: int = 0):
  shapes, c = tiny_shapes(), base_config("tiny")
  cfg = ModelConfig(**dict(tiny_model(), dtype="float32", param_dtype="float32"))
  params, _ = decoder.init_params(cfg, jax.random.key(seed))
  o = c.optim
  opt = make_optimizer(o.learning_rate, warmup_steps=o.warmup_steps, b1=o.b1, b2=o.b2,
                       weight_decay=o.weight_decay, grad_clip=o.grad_clip)
  loss = LossConfig(**dict(c.rl.loss.to_dict(), rpo_alpha=0.1))
  batch = {k: jnp.asarray(v) for k, v in random_batch(cfg, shapes["rows"], shapes["prompt"], shapes["new"],
                                                       seed).items()}
  specs = {kind: {"policy": RoleSpec(model=cfg, optimizer=opt, kind=kind, loss=loss)} for kind in ("policy", "dpo")}
  upd = {kind: jax.jit(functools.partial(update_step, specs=s), donate_argnums=0) for kind, s in specs.items()}
  ref = jax.jit(functools.partial(sequence_logprobs, cfg=cfg))
  states = {kind: new_state({"policy": jax.tree.map(jnp.copy, params)}, {"policy": opt}, {}, seed)
            for kind in ("policy", "dpo")}
  ref_params = jax.tree.map(jnp.copy, params)
  dpo_batch = {"tokens": batch["tokens"], "mask": batch["mask"]}

  def grpo():
    states["policy"], m = jax.block_until_ready(upd["policy"](states["policy"], {"policy": batch}))
    return m

  def dpo(with_ref: bool = True):
    mb = dict(dpo_batch, ref_logp=ref(ref_params, batch["tokens"]) if with_ref else ref_logp0)
    states["dpo"], m = jax.block_until_ready(upd["dpo"](states["dpo"], {"policy": mb}))
    return m

  ref_logp0 = jax.block_until_ready(ref(ref_params, batch["tokens"]))
  return {"grpo": grpo, "dpo": dpo, "dpo_update": functools.partial(dpo, False)}, shapes


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--rounds", type=int, default=3)
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--out", default="runs/bench_dpo_step.json")
  args = ap.parse_args()
  steps, shapes = make_steps()
  for f in steps.values():           # compile
    f()
  times: dict[str, list[float]] = {k: [] for k in steps}
  for r in range(args.rounds):
    for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
      for _ in range(args.steps):
        t0 = time.perf_counter()
        m = steps[name]()
        times[name].append(time.perf_counter() - t0)
      if not np.isfinite(float(m["loss"])):
        raise RuntimeError(f"{name}: non-finite loss")
  med = {k: float(np.median(v)) for k, v in times.items()}
  print(f"N={shapes['rows']} rows x T={shapes['prompt'] + shapes['new']} tokens, tiny model, float32, "
        f"{args.rounds} rounds x {args.steps} steps, load {os.getloadavg()[0]:.2f}")
  print("| step | median ms | / grpo |\n|---|---|---|")
  for k, v in med.items():
    print(f"| {k} | {v * 1e3:.1f} | {v / med['grpo']:.2f} |")
  Path(args.out).parent.mkdir(parents=True, exist_ok=True)
  Path(args.out).write_text(json.dumps(dict(median_s=med, all_s=times, jax=jax.__version__,
                                            ratios={k: v / med["grpo"] for k, v in med.items()}), indent=1))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
