"""Side by side with Tunix: the dimensions of ../shared/bench/tunix_baseline.py built in critjax,
both timed in one run, alternating, and reported as ratios.

Command (repo root, project venv; Tunix in its own venv, ~8 min for 2 rounds on a 2-core CPU):
  python3 -m venv /work/tunix_venv && /work/tunix_venv/bin/pip install google-tunix sentencepiece grain
  python -m experiments.bench_vs_tunix --tunix-python /work/tunix_venv/bin/python \
      --tunix-script ../shared/bench/tunix_baseline.py --rounds 2 --out runs/bench_vs_tunix.json

Dimension key: B prompts, G generations per prompt, N = B * G rows, P prompt length, T tokens.

Model: Qwen3 layout, 4 layers, width 256, 4 heads x 64, 4 kv heads, MLP 704, vocab 4096, untied,
QK-norm, float32 (Tunix's default), random weights, EOS disabled.
  sampler  greedy, P = 32, 256 new tokens, B = 1 / 16 / 64, compile excluded, median of repeats
           (critjax: experiments.bench_sampler.time_cached; Tunix: `Sampler(...)` on strings).
  grpo     one step as critjax/train/loop.py composes it: generate G = 4 samples for each of 4
           prompts (temperature 0.9, 256 new tokens) -> host reward -> GRPO advantages ->
           reference log-probs (jitted forward) -> one jitted `update_step` (adamw 1e-5,
           beta = 0.04 k3 KL, clip 0.2): Tunix's GRPOConfig / RLTrainingConfig of the baseline.
           Median over steps after the first (compile). Tunix's step time is the sum of the
           medians of its timed phases (generate, reference / old log-probs, actor update): it
           leaves out Tunix's own bookkeeping between phases, so the ratio favours Tunix.
Rounds alternate the order (critjax, Tunix), (Tunix, critjax), ... to spread drift in the load.
--dtype bfloat16 runs critjax with bfloat16 activations (float32 parameters); Tunix stays float32,
so those ratios are no longer like for like (on a CPU it changes the update by only ~3%: XLA's CPU
dots gain little from bfloat16). The update phase is matmul-bound: XLA's cost analysis gives
136 GFLOP for 16 x 288 tokens (forward + backward of the 5.3M-parameter model, ~25% in the LM head).
Ratios: sampler = critjax tok/s / Tunix tok/s; grpo = Tunix step s / critjax step s (per round,
then the median over rounds).
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from critjax.models import decoder
from critjax.rl import episodes
from critjax.rl.advantages import ADVANTAGES
from critjax.rl.losses import LossConfig
from critjax.sampling.sampler import Sampler, completions
from critjax.sampling.token_choice import SamplingConfig
from critjax.train.state import new_state
from critjax.train.update import RoleSpec, sequence_logprobs, update_step
from experiments.bench_sampler import (BATCHES, NEW_TOKENS, NO_EOS, PROMPT_LEN, load, random_prompts, time_cached,
                                       tunix_dims_model)

# tunix_baseline.py `bench_grpo`: 4 prompts x 4 generations, rollout temperature 0.9, adamw(1e-5),
# GRPOConfig(beta=0.04, epsilon=0.2), 4 learner steps (the first one compiles).
GRPO = dict(prompts=4, generations=4, temperature=0.9, lr=1e-5, beta=0.04, epsilon=0.2, steps=4)


def toy_reward(completion_ids: np.ndarray) -> float:
  """Host-side stand-in for the baseline's string rewards: share of even token ids (any cheap
  callable does; its only job is to give the group advantages a spread)."""
  return float(np.mean(completion_ids % 2 == 0)) if len(completion_ids) else 0.0


class GrpoStep:
  """One GRPO step on the Tunix dimensions, composed from library functions as train/loop.py does."""

  def __init__(self, cfg, *, prompt_len=PROMPT_LEN, new_tokens=NEW_TOKENS, seed=0, **over):
    g = dict(GRPO, **over)
    self.cfg, self.g, self.prompt_len = cfg, g, prompt_len
    params, _ = decoder.init_params(cfg, jax.random.key(seed))
    opt = optax.adamw(g["lr"])
    loss = LossConfig(clip_low=g["epsilon"], clip_high=g["epsilon"], kl_estimator="k3", kl_coef=g["beta"])
    spec = RoleSpec(model=cfg, optimizer=opt, kind="policy", loss=loss, temperature=g["temperature"])
    ref = jax.tree.map(jnp.copy, params)
    self.state = new_state({"policy": params}, {"policy": opt}, {"reference": ref}, seed)
    self.sampler = Sampler(cfg, SamplingConfig(max_new_tokens=new_tokens, temperature=g["temperature"],
                                               eos_id=NO_EOS), capacity=prompt_len + new_tokens)
    self.update = jax.jit(functools.partial(update_step, specs={"policy": spec}), donate_argnums=0)
    self.ref_logprobs = jax.jit(functools.partial(sequence_logprobs, cfg=cfg, temperature=g["temperature"]))
    self.rng = jax.random.key(seed + 1)

  def step(self, i: int) -> dict:
    """-> phase wall times (s) and metrics of one step; every phase is blocked on before timing."""
    g = self.g
    prompts = random_prompts(self.cfg, g["prompts"], self.prompt_len, seed=i)
    lens = np.full((g["prompts"],), self.prompt_len, np.int32)
    self.rng, key = jax.random.split(self.rng)
    t0 = time.perf_counter()
    ro = jax.block_until_ready(self.sampler.generate(self.state.roles["policy"].params, prompts, lens, key,
                                                     num_samples=g["generations"]))
    t1 = time.perf_counter()
    rewards = np.array([toy_reward(c) for c in completions(ro, 0)], np.float32)
    adv = np.asarray(ADVANTAGES.get("grpo")(jnp.asarray(rewards.reshape(-1, g["generations"]))))
    batch = episodes.policy_batch(ro, adv.reshape(-1, 1))
    t2 = time.perf_counter()
    batch["ref_logp"] = jax.block_until_ready(self.ref_logprobs(self.state.frozen["reference"],
                                                                jnp.asarray(batch["tokens"])))
    t3 = time.perf_counter()
    self.state, m = self.update(self.state, {"policy": {k: jnp.asarray(v) for k, v in batch.items()}})
    m = jax.block_until_ready(m)
    t4 = time.perf_counter()
    return dict(generate_s=t1 - t0, reward_adv_s=t2 - t1, ref_logp_s=t3 - t2, update_s=t4 - t3, step_s=t4 - t0,
                rows=int(batch["tokens"].shape[0]), T=int(batch["tokens"].shape[1]),
                loss=float(m["loss"]), skipped=float(m["skipped"]))


def critjax_grpo(steps: int = GRPO["steps"], dtype: str = "float32", **kw) -> dict:
  bench = GrpoStep(tunix_dims_model(dtype=dtype, param_dtype="float32"), **kw)
  per_step = [bench.step(i) for i in range(steps)]
  later = per_step[1:] or per_step
  med = {k: float(np.median([s[k] for s in later])) for k in ("generate_s", "reward_adv_s", "ref_logp_s",
                                                               "update_s", "step_s")}
  return dict(steps=per_step, median=med, first_step_s=per_step[0]["step_s"])


def critjax_sampler(batches=BATCHES, repeats: int = 2, dtype: str = "float32", **kw) -> list[dict]:
  cfg = tunix_dims_model(dtype=dtype, param_dtype="float32")
  params, _ = decoder.init_params(cfg, jax.random.key(0))
  rows = []
  for b in batches:
    r = time_cached(cfg, params, b, repeats=repeats, **kw)
    r.pop("tokens")
    rows.append(dict(B=b, **r))
  return rows


def run_critjax(dtype: str = "float32", log=print) -> dict:
  l0 = load()
  sampler = critjax_sampler(dtype=dtype)
  for r in sampler:
    log(f"  critjax sampler B={r['B']:3d}: {r['tok_s']:8.0f} tok/s ({r['wall_s']:.2f}s)")
  grpo = critjax_grpo(dtype=dtype)
  m = grpo["median"]
  log(f"  critjax grpo step {m['step_s']:.2f}s (generate {m['generate_s']:.2f}, reward+adv {m['reward_adv_s']:.3f}, "
      f"ref {m['ref_logp_s']:.2f}, update {m['update_s']:.2f}); first step {grpo['first_step_s']:.1f}s")
  return dict(sampler=sampler, grpo=grpo, dtype=dtype, load_before=l0, load_after=load())


def tunix_step_s(res: dict) -> dict:
  """Median of later calls per phase from tunix_baseline.py's JSON, and their sum."""
  out = {}
  for k, v in res["grpo"]["timings"].items():
    later = v[1:] if len(v) > 1 else v
    out[k] = float(np.median(later))
  out["step_s"] = float(sum(out.values()))
  return out


def run_tunix(python: str, script: str, out: Path, log=print) -> dict:
  l0 = load()
  t0 = time.perf_counter()
  proc = subprocess.run([python, script, "sampler", "grpo", "--out", str(out)], capture_output=True, text=True)
  if proc.returncode:
    raise RuntimeError(f"tunix baseline failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
  res = json.loads(out.read_text())
  res["grpo_phases"] = tunix_step_s(res)
  for r in res["sampler"]:
    log(f"  tunix   sampler B={r['B']:3d}: {r['tok_s']:8.0f} tok/s ({r['run_s']:.2f}s)")
  log(f"  tunix   grpo step {res['grpo_phases']['step_s']:.2f}s {res['grpo_phases']}")
  res.update(load_before=l0, load_after=load(), process_wall_s=time.perf_counter() - t0)
  return res


def ratios(c: dict, t: dict) -> dict:
  tun = {r["B"]: r["tok_s"] for r in t["sampler"]}
  out = {f"sampler_B{r['B']}": r["tok_s"] / tun[r["B"]] for r in c["sampler"] if r["B"] in tun}
  out["grpo_step"] = t["grpo_phases"]["step_s"] / c["grpo"]["median"]["step_s"]
  return out


def summary(rounds: list[dict]) -> str:
  keys = list(rounds[0]["ratio"])
  lines = ["| measure | critjax (per round) | Tunix (per round) | ratio per round | median ratio | goal |",
           "|---|---|---|---|---|---|"]
  for k in keys:
    if k == "grpo_step":
      cv = [r["critjax"]["grpo"]["median"]["step_s"] for r in rounds]
      tv = [r["tunix"]["grpo_phases"]["step_s"] for r in rounds]
      unit, goal = "s", ">= 2 (Tunix s / critjax s)"
    else:
      b = int(k.split("B")[1])
      cv = [next(x["tok_s"] for x in r["critjax"]["sampler"] if x["B"] == b) for r in rounds]
      tv = [next(x["tok_s"] for x in r["tunix"]["sampler"] if x["B"] == b) for r in rounds]
      unit, goal = "tok/s", ">= 2" if b in (16, 64) else "-"
    rs = [r["ratio"][k] for r in rounds]
    fmt = (lambda v: f"{v:.2f}") if unit == "s" else (lambda v: f"{v:,.0f}")
    lines.append(f"| {k} ({unit}) | {' / '.join(map(fmt, cv))} | {' / '.join(map(fmt, tv))} | "
                 f"{' / '.join(f'{x:.2f}' for x in rs)} | {np.median(rs):.2f} | {goal} |")
  return "\n".join(lines)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--tunix-python", default="/work/tunix_venv/bin/python")
  ap.add_argument("--tunix-script", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "bench" /
                                                "tunix_baseline.py"))
  ap.add_argument("--rounds", type=int, default=2)
  ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                  help="critjax activations (parameters stay float32); Tunix runs its float32 default")
  ap.add_argument("--out", default="runs/bench_vs_tunix.json")
  args = ap.parse_args()
  out = Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  rounds = []
  t0 = time.perf_counter()
  for i in range(args.rounds):
    print(f"round {i + 1}/{args.rounds} (load {load()})", flush=True)
    order = ("critjax", "tunix") if i % 2 == 0 else ("tunix", "critjax")
    r = {"order": order}
    for who in order:
      if who == "critjax":
        r["critjax"] = run_critjax(args.dtype)
      else:
        r["tunix"] = run_tunix(args.tunix_python, args.tunix_script, out.with_suffix(f".tunix{i}.json"))
    r["ratio"] = ratios(r["critjax"], r["tunix"])
    print(f"  ratios: {json.dumps({k: round(v, 2) for k, v in r['ratio'].items()})}", flush=True)
    rounds.append(r)
  print(summary(rounds))
  meta = dict(jax=jax.__version__, cpus=os.cpu_count(), python=sys.version.split()[0],
              wall_s=time.perf_counter() - t0, grpo=GRPO, critjax_dtype=args.dtype)
  out.write_text(json.dumps(dict(meta=meta, rounds=rounds), indent=1, default=str))
  print(f"wrote {out} ({meta['wall_s']:.0f}s)")


if __name__ == "__main__":
  main()
