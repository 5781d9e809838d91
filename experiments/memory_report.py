"""Peak memory per device of a config's jitted update, from abstract shapes: nothing is materialised.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 \\
    python -m experiments.memory_report --config=configs/grpo.py:qwen2.5-1.5b --out=runs/memory.json

The policy's parameters, optimizer state (and its KL reference when rl.loss.kl_coef > 0) are
jax.ShapeDtypeStructs laid out by their logical axes on the config's mesh over 8 fake CPU devices;
the update (critjax.train.update.update_step, one mini-batch of rollout.prompts_per_step x
group_size / rl.num_minibatches rows of max_prompt_len + max_new_tokens tokens, micro-batched by
rl.micro_batch_size) is lowered and compiled, never run, once per --chunks setting (the token
log-probs whole, 0, or in chunks of N positions). Printed per device: XLA's memory analysis
(arguments, outputs, temporaries; peak = arguments + temporaries + outputs not aliased to an
argument) beside the analytic floor:

  parameters + gradients + optimizer moments    sharded like the parameters (fsdp x tensor)
  activations under remat                       per layer its input, micro-rows x T x D in the
                                                compute dtype, over the batch-sharded devices
  one layer's working set                       not counted (the floor is a lower bound)

and, with --decode, the same for the sampler's decode turn (critjax.sampling.sampler.decode: all
prompts_per_step x group_size rows at once, capacity max_prompt_len + max_new_tokens), whose floor is
the sharded parameters + the KV cache (2 x layers x rows x kv-heads x capacity x head_dim in the
compute dtype, rows over the batch-sharded devices) + the rows' next-token float32 logits.

CPU compilation of a 28-layer model takes minutes; XLA's CPU memory analysis is what it reports
for the CPU backend, an estimate of a GPU / TPU's, whose compilers fuse and schedule differently.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from critjax import sharding as sh
from critjax.config import from_configdict
from critjax.models import decoder
from critjax.sampling import sampler
from critjax.sampling.token_choice import SamplingConfig
from critjax.train.state import make_optimizer, new_state, state_shardings
from critjax.train.update import RoleSpec, update_step
from experiments.config_loading import load_config

MiB = 2 ** 20


def _bytes(tree) -> int:
  return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def _per_device(tree, shardings) -> int:
  """Bytes of a tree's largest shard per device (each leaf's shard shape under its sharding)."""
  total = 0
  for x, s in zip(jax.tree.leaves(tree), jax.tree.leaves(shardings, is_leaf=lambda v: isinstance(v, NamedSharding))):
    total += math.prod(s.shard_shape(x.shape)) * np.dtype(x.dtype).itemsize
  return total


def _memory(m, floor: int) -> dict:
  """XLA's memory analysis as a record: peak = arguments + temporaries + outputs not aliased."""
  if m is None:
    return {}
  peak = m.argument_size_in_bytes + m.temp_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes
  return {"arguments": m.argument_size_in_bytes, "outputs": m.output_size_in_bytes, "temps": m.temp_size_in_bytes,
          "aliased": m.alias_size_in_bytes, "peak": peak, "peak_over_floor": peak / floor}


def decode_report(cfg, model, params, param_sh, mesh) -> dict:
  """Compile (never run) one decode turn for all the step's rows from abstract shapes."""
  r = cfg.rollout
  rows, cap = r.prompts_per_step * r.group_size, r.max_prompt_len + r.max_new_tokens
  ro = jax.eval_shape(lambda p: sampler.start(p, jnp.zeros((rows, r.max_prompt_len), jnp.int32),
                                              jnp.ones((rows,), jnp.int32), cfg=model, capacity=cap), params)
  rows_sh = jax.tree.map(lambda x: sh.batch_sharding(mesh, x.ndim), ro)
  scfg = SamplingConfig(max_new_tokens=r.max_new_tokens, temperature=r.temperature, top_k=r.top_k, top_p=r.top_p)
  fn = jax.jit(sh.with_activation_sharding(functools.partial(sampler.decode, cfg=model, scfg=scfg), mesh),
               in_shardings=(param_sh, rows_sh, None), out_shardings=rows_sh, donate_argnums=1)
  t0 = time.perf_counter()
  m = fn.lower(params, ro, jax.ShapeDtypeStruct((2,), jnp.uint32)).compile().memory_analysis()
  n_batch = mesh.shape["data"] * mesh.shape["fsdp"]
  cache = _per_device(ro.cache, rows_sh.cache)
  p_bytes = _per_device(params, param_sh)
  floor = p_bytes + cache + (rows // n_batch) * model.vocab_size * 4
  return {"rows": rows, "capacity": cap, "compile_seconds": round(time.perf_counter() - t0, 1),
          "floor": {"params": p_bytes, "cache": cache, "total": floor}, **_memory(m, floor)}


def report(config: str, chunks, devices=None, decode: bool = False, activation_sharding: bool = True) -> dict:
  """The memory record of `config`'s update for each chunk setting (and its decode turn with
  `decode`); activation_sharding=False traces without the model's activation constraints (as
  before they were put in force), for comparison."""
  cfg = from_configdict(load_config(config))
  role = cfg.role_configs()["policy"]
  model, o = role.model, role.optim
  devices = list(devices if devices is not None else jax.devices())[:8]
  mesh = sh.make_mesh(cfg.mesh, devices)
  params = jax.eval_shape(lambda: decoder.init_params(model, jax.random.key(0))[0])
  axes = decoder.logical_axes(model)
  opt = make_optimizer(o.learning_rate, warmup_steps=o.warmup_steps, b1=o.b1, b2=o.b2,
                       weight_decay=o.weight_decay, grad_clip=o.grad_clip)
  kl = cfg.rl.loss.kl_coef > 0
  state = jax.eval_shape(lambda p: new_state({"policy": p}, {"policy": opt}, {"reference": p} if kl else {}, 0), params)
  shardings = state_shardings(state, {"policy": axes, "reference": axes}, mesh)
  r = cfg.rollout
  rows, t = r.prompts_per_step * r.group_size // cfg.rl.num_minibatches, r.max_prompt_len + r.max_new_tokens
  f32 = lambda: jax.ShapeDtypeStruct((rows, t), jnp.float32)
  batch = {"tokens": jax.ShapeDtypeStruct((rows, t), jnp.int32), "mask": f32(), "adv": f32(), "old_logp": f32()}
  if kl:
    batch["ref_logp"] = f32()
  batch_sh = {k: NamedSharding(mesh, P(("data", "fsdp"), None)) for k in batch}
  n_batch = mesh.shape["data"] * mesh.shape["fsdp"]
  micro = cfg.rl.micro_batch_size or rows
  floor_state = (_per_device(state.roles["policy"], shardings.roles["policy"])      # params + optimizer state
                 + _per_device(state.frozen, shardings.frozen))                     # the KL reference
  grads = _per_device(jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, jnp.float32), params),
                      shardings.roles["policy"].params)
  act = model.n_layers * max(micro // n_batch, 1) * t * model.d_model * np.dtype(model.dtype).itemsize
  out = {"config": config, "mesh": dict(mesh.shape), "params": _bytes(params), "rows": rows, "micro_rows": micro,
         "tokens": t, "floor": {"state": floor_state, "grads": grads, "activations": act,
                                "total": floor_state + grads + act}, "runs": []}
  for c in chunks:
    spec = RoleSpec(model, opt, kind="policy", loss=cfg.rl.loss, micro_batch_size=cfg.rl.micro_batch_size,
                    temperature=r.temperature or 1.0, logprob_chunk=c)
    step = functools.partial(update_step, specs={"policy": spec})
    fn = jax.jit(sh.with_activation_sharding(step, mesh) if activation_sharding else step, in_shardings=(shardings, {"policy": batch_sh}),
                 out_shardings=(shardings, None), donate_argnums=0)
    t0 = time.perf_counter()
    compiled = fn.lower(state, {"policy": batch}).compile()
    m = compiled.memory_analysis()
    run = {"logprob_chunk": c, "compile_seconds": round(time.perf_counter() - t0, 1)}
    run.update(_memory(m, out["floor"]["total"]))
    out["runs"].append(run)
  if decode:
    out["decode"] = decode_report(cfg, model, params, shardings.roles["policy"].params, mesh)
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--config", required=True)
  ap.add_argument("--chunks", default="0,1024", help="comma-separated rl.logprob_chunk settings (0 = whole)")
  ap.add_argument("--decode", action="store_true", help="also the sampler's decode turn")
  ap.add_argument("--out", type=Path, default=None)
  args = ap.parse_args()
  rec = report(args.config, [int(c) for c in args.chunks.split(",") if c], decode=args.decode)
  f = rec["floor"]
  print(f"{rec['config']}: {rec['params'] / 1e9:.2f} G parameter bytes, mesh {rec['mesh']}, {rec['rows']} rows "
        f"(micro {rec['micro_rows']}) x {rec['tokens']} tokens")
  print(f"floor per device: state {f['state'] / MiB:.0f} MiB + grads {f['grads'] / MiB:.0f} + activations "
        f"{f['activations'] / MiB:.0f} = {f['total'] / MiB:.0f} MiB")
  for r in rec["runs"]:
    if "peak" in r:
      print(f"  logprob_chunk={r['logprob_chunk']}: peak {r['peak'] / MiB:.0f} MiB (args {r['arguments'] / MiB:.0f}, "
            f"temps {r['temps'] / MiB:.0f}) = {r['peak_over_floor']:.2f}x the floor; compiled in {r['compile_seconds']} s")
  if "decode" in rec:
    d = rec["decode"]
    print(f"decode turn, {d['rows']} rows x capacity {d['capacity']}: floor params {d['floor']['params'] / MiB:.0f} "
          f"MiB + KV cache {d['floor']['cache'] / MiB:.0f} = {d['floor']['total'] / MiB:.0f} MiB"
          + (f"; peak {d['peak'] / MiB:.0f} MiB = {d['peak_over_floor']:.2f}x the floor" if "peak" in d else "")
          + f"; compiled in {d['compile_seconds']} s")
  if args.out:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rec, indent=1))


if __name__ == "__main__":
  main()
