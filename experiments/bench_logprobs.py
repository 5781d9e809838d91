"""Token log-probs in chunks against the whole (B, T, V) path: time of the loss's forward + backward.

  python -m experiments.bench_logprobs --repeats=5 --out=runs/bench_logprobs.json

A 1-layer width-256 decoder with a 32,768-token vocabulary (where rl.logprob_chunk's auto setting
starts chunking), B = 4 rows of T = 1024 tokens; the gradient of sum(w * logp) + 0.01 sum(w * H)
is jitted once per setting (0 = whole, then chunks of 1024 / 256 / 64 positions) and timed as the
median of --repeats calls after a compile call, all in one run so the ratios compare like with
like. The head's work is the same in every setting; the chunked path recomputes each (B, C, V)
block in the backward (jax.checkpoint), which is its cost.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from critjax.models import decoder
from critjax.models.config import ModelConfig
from critjax.train.logprobs import token_logprobs


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--chunks", default="0,1024,256,64")
  ap.add_argument("--rows", type=int, default=4)
  ap.add_argument("--tokens", type=int, default=1024)
  ap.add_argument("--out", type=Path, default=None)
  args = ap.parse_args()
  cfg = ModelConfig(vocab_size=32_768, d_model=256, n_layers=1, n_heads=4, n_kv_heads=2, head_dim=64, d_ff=512)
  params, _ = decoder.init_params(cfg, jax.random.key(0))
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(0, cfg.vocab_size, (args.rows, args.tokens)), jnp.int32)
  w = jnp.asarray(rng.normal(size=(args.rows, args.tokens)), jnp.float32)
  rows = []
  for c in (int(x) for x in args.chunks.split(",")):
    def loss(p, c=c):
      lp, ent = token_logprobs(p, tokens, cfg, 1.0, chunk=c)
      return (w * lp).sum() + 0.01 * (w * ent).sum()
    fn = jax.jit(jax.grad(loss))
    jax.block_until_ready(fn(params))
    times = []
    for _ in range(args.repeats):
      t0 = time.perf_counter()
      jax.block_until_ready(fn(params))
      times.append(time.perf_counter() - t0)
    rows.append({"logprob_chunk": c, "median_seconds": float(np.median(times)), "seconds": times})
  base = rows[0]["median_seconds"]
  for r in rows:
    r["ratio_to_whole"] = r["median_seconds"] / base
    print(f"logprob_chunk={r['logprob_chunk']:5d}: {r['median_seconds']:.3f} s  ({r['ratio_to_whole']:.2f}x the whole path)")
  if args.out:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "tokens": args.tokens, "vocab": cfg.vocab_size, "runs": rows},
                                   indent=1))


if __name__ == "__main__":
  main()
