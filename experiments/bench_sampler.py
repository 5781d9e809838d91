"""Sampler decode throughput: critjax's KV-cache sampler against naive decoding that recomputes the
whole prefix every step, in the same run.

Command (repo root, project venv; ~10 min on a loaded 2-core CPU):
  python -m experiments.bench_sampler --out runs/bench_sampler.json

Dimension key: B batch, P prompt length, N new tokens, S = P + N buffer length.

Models (random weights, greedy, EOS disabled so every row runs all N tokens):
  tiny   configs/common.py `tiny_model()` (vocab 64, width 128, 4 layers)
  tunix  the dimensions of ../shared/bench/tunix_baseline.py: Qwen3 layout, 4 layers, width 256,
         4 heads x 64, 4 kv heads, MLP 704, vocab 4096, untied, QK-norm (5.3M parameters)

Measured for B = 1, 16, 64 with P = 32, N = 256, compile excluded (one warm-up call first):
  cached         `Sampler.generate` (prefill + `lax.while_loop` decode), median of --repeats;
                 tok/s = B * N / wall. `decode_tok_s` subtracts the median prefill time.
  naive_fixed    a (B, S) token buffer and a full causal forward over all S positions each step
                 (one jitted step, buffer donated); logits only at the last written position.
                 Its cost is the same at every step, so the median of --naive-steps steps x N
                 gives the 256-token time.
  naive_growing  a jitted forward over the growing prefix; estimated as N x the step time at the
                 mean prefix length P + N/2 (cost is convex in length, so this underestimates the
                 naive time and the speed-up against it is a lower bound).
The speed-up reported (`speedup`) is cached tok/s / naive_growing tok/s, the conservative one.
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
from jax import lax

from configs.common import tiny_model
from critjax.models import decoder
from critjax.models.config import ModelConfig
from critjax.sampling.sampler import Sampler
from critjax.sampling.token_choice import SamplingConfig

PROMPT_LEN = 32
NEW_TOKENS = 256
BATCHES = (1, 16, 64)
NO_EOS = -1  # argmax never returns -1, so no row stops early


def tunix_dims_model(**overrides) -> ModelConfig:
  """The model of ../shared/bench/tunix_baseline.py (`qwen3_lib.ModelConfig(num_layers=4, ...)`)."""
  d = dict(vocab_size=4096, d_model=256, n_layers=4, n_heads=4, n_kv_heads=4, head_dim=64, d_ff=704,
           activation="silu", norm_eps=1e-6, rope_theta=10_000.0, tie_embeddings=False, qk_norm=True)
  d.update(overrides)
  return ModelConfig(**d)


def models() -> dict[str, ModelConfig]:
  return {"tiny": ModelConfig(**tiny_model()), "tunix": tunix_dims_model()}


def load() -> float:
  """1-minute load average (the machine is shared: reported with every measurement)."""
  return round(os.getloadavg()[0], 2)


def n_params(params) -> int:
  return int(sum(x.size for x in jax.tree.leaves(params)))


def random_prompts(cfg: ModelConfig, batch: int, prompt_len: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return rng.integers(4, cfg.vocab_size, (batch, prompt_len)).astype(np.int32)


def _median_wall(fn, repeats: int) -> tuple[float, list[float]]:
  ts = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    ts.append(time.perf_counter() - t0)
  return float(np.median(ts)), ts


def time_cached(cfg: ModelConfig, params, batch: int, *, prompt_len: int = PROMPT_LEN,
                new_tokens: int = NEW_TOKENS, repeats: int = 3, temperature: float = 0.0) -> dict:
  """critjax `Sampler.generate` (prefill + decode), compile excluded. -> timings and tokens/s."""
  scfg = SamplingConfig(max_new_tokens=new_tokens, temperature=temperature, eos_id=NO_EOS)
  sampler = Sampler(cfg, scfg, capacity=prompt_len + new_tokens)
  prompts = random_prompts(cfg, batch, prompt_len)
  lens = np.full((batch,), prompt_len, np.int32)
  key = jax.random.key(1)
  gen = lambda: sampler.generate(params, prompts, lens, key).tokens
  pre = lambda: sampler.start(params, prompts, lens).cache
  t0 = time.perf_counter()
  ro = jax.block_until_ready(sampler.generate(params, prompts, lens, key))
  compile_s = time.perf_counter() - t0
  tokens = np.asarray(ro.tokens)
  written = int((np.asarray(ro.length) - prompt_len).min())
  if written != new_tokens:
    raise RuntimeError(f"a row stopped after {written} < {new_tokens} tokens: EOS was not disabled")
  wall, all_s = _median_wall(gen, repeats)
  prefill, _ = _median_wall(pre, repeats)
  return dict(first_call_s=compile_s, wall_s=wall, all_s=all_s, prefill_s=prefill,
              tok_s=batch * new_tokens / wall, decode_tok_s=batch * new_tokens / max(wall - prefill, 1e-9),
              tokens=tokens[:, prompt_len:prompt_len + new_tokens])


def _last_position_logits(params, tokens_bt, pos_b, cfg: ModelConfig):
  """Full forward over (B, T); the LM head only at each row's position pos_b (a naive decoder that
  does not waste the vocab projection on every position: keeps the baseline honest)."""
  hidden, _ = decoder.forward(params, tokens_bt, cfg, return_hidden=True)           # (B, T, D)
  h_bd = jnp.take_along_axis(hidden, pos_b[:, None, None], axis=1)[:, 0]
  head = params["embed"].T if cfg.tie_embeddings else params["lm_head"]            # (D, V)
  logits = jnp.einsum("bd,dv->bv", h_bd, head.astype(h_bd.dtype), preferred_element_type=jnp.float32)
  if cfg.final_logit_softcap is not None:
    logits = jnp.tanh(logits / cfg.final_logit_softcap) * cfg.final_logit_softcap
  return logits


def naive_step(params, buf_bs, length, *, cfg: ModelConfig):
  """One greedy token by recomputing the whole buffer: write argmax at position `length`."""
  b = buf_bs.shape[0]
  logits = _last_position_logits(params, buf_bs, jnp.full((b,), length - 1, jnp.int32), cfg)
  tok = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  return lax.dynamic_update_slice(buf_bs, tok[:, None], (0, length))


def naive_greedy(cfg: ModelConfig, params, prompts_bp: np.ndarray, new_tokens: int) -> np.ndarray:
  """Greedy decode with full recomputation for every token (the reference of the smoke test)."""
  b, p = prompts_bp.shape
  step = jax.jit(functools.partial(naive_step, cfg=cfg), donate_argnums=1)
  buf = jnp.zeros((b, p + new_tokens), jnp.int32).at[:, :p].set(prompts_bp)
  for i in range(new_tokens):
    buf = step(params, buf, jnp.int32(p + i))
  return np.asarray(buf[:, p:])


def time_naive(cfg: ModelConfig, params, batch: int, *, prompt_len: int = PROMPT_LEN,
               new_tokens: int = NEW_TOKENS, steps: int = 8) -> dict:
  """Per-step medians of the two naive decoders, scaled to `new_tokens` steps."""
  s = prompt_len + new_tokens
  prompts = random_prompts(cfg, batch, prompt_len)
  step = jax.jit(functools.partial(naive_step, cfg=cfg), donate_argnums=1)
  buf = jnp.zeros((batch, s), jnp.int32).at[:, :prompt_len].set(prompts)
  buf = jax.block_until_ready(step(params, buf, jnp.int32(prompt_len)))   # compile
  ts = []
  for i in range(1, steps + 1):
    t0 = time.perf_counter()
    buf = jax.block_until_ready(step(params, buf, jnp.int32(prompt_len + i)))
    ts.append(time.perf_counter() - t0)
  fixed = float(np.median(ts))
  mean_len = prompt_len + new_tokens // 2
  grow = jax.jit(functools.partial(_last_position_logits, cfg=cfg))
  toks = buf[:, :mean_len]
  pos = jnp.full((batch,), mean_len - 1, jnp.int32)
  jax.block_until_ready(grow(params, toks, pos))                           # compile
  grow_s, _ = _median_wall(lambda: grow(params, toks, pos), steps)
  return dict(steps_timed=steps, fixed_step_s=fixed, fixed_tok_s=batch / fixed,
              growing_mean_len=mean_len, growing_step_s=grow_s, growing_tok_s=batch / grow_s)


def run(names=("tiny", "tunix"), batches=BATCHES, *, prompt_len=PROMPT_LEN, new_tokens=NEW_TOKENS,
        repeats=3, naive_steps=8, seed=0, log=print) -> list[dict]:
  rows = []
  for name in names:
    cfg = models()[name]
    params, _ = decoder.init_params(cfg, jax.random.key(seed))
    log(f"model {name}: {n_params(params) / 1e6:.2f}M params")
    for b in batches:
      load_before = load()
      cached = time_cached(cfg, params, b, prompt_len=prompt_len, new_tokens=new_tokens, repeats=repeats)
      naive = time_naive(cfg, params, b, prompt_len=prompt_len, new_tokens=new_tokens, steps=naive_steps)
      cached.pop("tokens")
      row = dict(model=name, B=b, P=prompt_len, N=new_tokens, load_before=load_before, load_after=load(),
                 cached=cached, naive=naive, speedup=cached["tok_s"] / naive["growing_tok_s"],
                 speedup_vs_fixed=cached["tok_s"] / naive["fixed_tok_s"])
      log(f"  {name:5s} B={b:3d}: cached {cached['tok_s']:8.0f} tok/s (decode only {cached['decode_tok_s']:8.0f}) | "
          f"naive growing {naive['growing_tok_s']:7.1f}, fixed {naive['fixed_tok_s']:7.1f} tok/s | "
          f"x{row['speedup']:.1f} (x{row['speedup_vs_fixed']:.1f} vs fixed) | load {load_before}->{row['load_after']}")
      rows.append(row)
  return rows


def table(rows) -> str:
  head = "| model | B | cached tok/s | decode-only tok/s | naive growing tok/s | naive fixed tok/s | speed-up (vs growing / fixed) | load |"
  out = [head, "|" + "---|" * 8]
  for r in rows:
    c, n = r["cached"], r["naive"]
    out.append(f"| {r['model']} | {r['B']} | {c['tok_s']:,.0f} | {c['decode_tok_s']:,.0f} | {n['growing_tok_s']:,.1f} | "
               f"{n['fixed_tok_s']:,.1f} | {r['speedup']:.1f}x / {r['speedup_vs_fixed']:.1f}x | "
               f"{r['load_before']}-{r['load_after']} |")
  return "\n".join(out)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--models", default="tiny,tunix")
  ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
  ap.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--naive-steps", type=int, default=8)
  ap.add_argument("--out", default="runs/bench_sampler.json")
  args = ap.parse_args()
  t0 = time.perf_counter()
  rows = run(args.models.split(","), tuple(int(b) for b in args.batches.split(",")), new_tokens=args.new_tokens,
             repeats=args.repeats, naive_steps=args.naive_steps)
  print(table(rows))
  Path(args.out).parent.mkdir(parents=True, exist_ok=True)
  meta = dict(jax=jax.__version__, devices=str(jax.devices()), cpus=os.cpu_count(), wall_s=time.perf_counter() - t0)
  Path(args.out).write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
  print(f"wrote {args.out} ({meta['wall_s']:.0f}s)")


if __name__ == "__main__":
  main()
