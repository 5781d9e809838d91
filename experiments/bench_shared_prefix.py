"""The k-sample judge's shared prefix: k samples of a prompt from one prefill (`num_samples=k`, the
KV cache's rows copied, as GRM.sample_judgments and grpo_judged sample) against k independent
prefills of the same prompt (the prompt repeated k times, num_samples=1), in the same run.

Command (repo root, project venv; ~2 min on a 2-core CPU):
  python -m experiments.bench_shared_prefix --out runs/bench_shared_prefix.json

Dimension key: B prompts, k samples each, P prompt length, N new tokens.

Model: configs/common.py `tiny_model()` (random weights; EOS disabled so every row runs N tokens),
B = 4, k = 8, at two shapes: the toy GRM's (P = 112, N = 96: configs/grm.py:tiny) and a long-prompt
judge's (P = 1024, N = 128: a query and its responses much longer than the judgment, the real
GRM's case). Per shape and mode, the median wall time over --repeats calls after one warm-up call
(compile excluded), for the prefill alone (`start`) and prefill + decode (`generate`); the ratio
is independent / shared (> 1: sharing is faster). Decoding is the same B x k rows in both modes,
so the whole-call ratio approaches 1 as N grows against P.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np

from configs.common import tiny_model
from critjax.config import ModelConfig
from critjax.models import decoder
from critjax.sampling.sampler import Sampler, SamplingConfig

NO_EOS = -1


def _median_time(fn, repeats: int) -> float:
  jax.block_until_ready(fn())                     # warm-up: compile
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return float(np.median(times))


def measure(cfg: ModelConfig, b: int, k: int, p: int, n: int, repeats: int) -> dict:
  params, _ = decoder.init_params(cfg, jax.random.key(0))
  sampler = Sampler(cfg, SamplingConfig(max_new_tokens=n, temperature=1.0, eos_id=NO_EOS), capacity=p + n)
  rng = np.random.default_rng(0)
  prompts = rng.integers(1, cfg.vocab_size, size=(b, p)).astype(np.int32)
  lengths = np.full((b,), p, np.int32)
  rep, rep_len = np.repeat(prompts, k, axis=0), np.repeat(lengths, k)
  key = jax.random.key(1)
  out = {"B": b, "k": k, "P": p, "N": n}
  out["prefill_shared_s"] = _median_time(lambda: sampler.start(params, prompts, lengths, num_samples=k).tokens, repeats)
  out["prefill_independent_s"] = _median_time(lambda: sampler.start(params, rep, rep_len).tokens, repeats)
  out["generate_shared_s"] = _median_time(
      lambda: sampler.generate(params, prompts, lengths, key, num_samples=k).tokens, repeats)
  out["generate_independent_s"] = _median_time(lambda: sampler.generate(params, rep, rep_len, key).tokens, repeats)
  out["prefill_ratio"] = out["prefill_independent_s"] / out["prefill_shared_s"]
  out["generate_ratio"] = out["generate_independent_s"] / out["generate_shared_s"]
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", type=Path, default=None)
  ap.add_argument("--repeats", type=int, default=5)
  args = ap.parse_args()
  cfg = ModelConfig(**tiny_model())
  rows = [measure(cfg, 4, 8, p, n, args.repeats) for p, n in ((112, 96), (1024, 128))]
  print(f"{'P':>5} {'N':>4} | prefill shared / indep. (s) ratio | generate shared / indep. (s) ratio")
  for r in rows:
    print(f"{r['P']:>5} {r['N']:>4} | {r['prefill_shared_s']:.4f} / {r['prefill_independent_s']:.4f} "
          f"{r['prefill_ratio']:.2f}x | {r['generate_shared_s']:.3f} / {r['generate_independent_s']:.3f} "
          f"{r['generate_ratio']:.2f}x")
  record = {"device": str(jax.devices()[0]), "rows": rows}
  if args.out:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
  main()
