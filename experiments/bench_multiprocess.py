"""Two processes x 4 CPU devices against one process x 8: the same GRPO run, compared step by step.

  python -m experiments.bench_multiprocess --steps=5 --meshes=8,1,1:2,2,2:1,4,2 --out=runs/bench_multiprocess.json

For each (data, fsdp, tensor) mesh, configs/grpo.py:tiny (shrunk as tests/test_multiprocess.py does,
`--steps` RL steps) runs once as one process with 8 fake CPU devices and once as two processes with
4 each (experiments.launch_local), in fresh workdirs. Printed per mesh: the largest difference of
every logged RL metric (loss, grad_norm, reward, ...) over the steps, the largest parameter
difference after the last step, and the median step time of the two (steps 2.. only: step 1
compiles). On one 2-core machine the two processes share the cores and talk over loopback, so the
time ratio is this machine's cost of the distributed runtime, not a pod's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

from critjax.config import from_configdict
from critjax.models import decoder
from critjax.train.checkpoint import load_role_params
from critjax.train.metrics import read_metrics
from experiments import launch_local
from experiments.config_loading import load_config

FIELDS = {"model.d_model": 32, "model.n_layers": 1, "model.n_heads": 2, "model.n_kv_heads": 1, "model.head_dim": 16,
          "model.d_ff": 64, "warmup.steps": 0, "rollout.prompts_per_step": 4, "rollout.group_size": 4,
          "rollout.max_new_tokens": 12, "rl.soft_overlong_cache": 8, "task.min_digits": 1, "task.max_digits": 2,
          "tokenizer.corpus_size": 2000, "train.eval_every": 1000, "train.eval_prompts": 4}
TIMING = {"step_seconds", "rollout_seconds", "update_seconds", "tokens_per_second"}


def _args(workdir: Path, flags: dict) -> list[str]:
  return (["-m", "experiments.train", "--config=configs/grpo.py:tiny", f"--workdir={workdir}"]
          + [f"--config.{k}={v}" for k, v in flags.items()])


def _params(workdir: Path, flags: dict, step: int):
  cfg = load_config("configs/grpo.py:tiny")
  for k, v in flags.items():
    if k.startswith("model."):
      setattr(cfg.model, k.split(".", 1)[1], v)
  model = from_configdict(cfg).model
  shapes = jax.eval_shape(lambda: decoder.init_params(model, jax.random.PRNGKey(0))[0])
  one = jax.tree.map(lambda _: jax.sharding.SingleDeviceSharding(jax.devices()[0]), shapes)
  return load_role_params(workdir, "policy", shapes, one, step=step)


def compare(mesh: tuple, steps: int, root: Path) -> dict:
  data, fsdp, tensor = mesh
  flags = {**FIELDS, "train.steps": steps, "mesh.data": data, "mesh.fsdp": fsdp, "mesh.tensor": tensor}
  one, two = root / f"one_{data}{fsdp}{tensor}", root / f"two_{data}{fsdp}{tensor}"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=8")
  subprocess.run([sys.executable, *_args(one, flags)], env=env, check=True, capture_output=True)
  rc = launch_local.launch(_args(two, {**flags, "mesh.distributed": True}), 2, 4, log_dir=root / f"logs_{data}{fsdp}{tensor}",
                           init_timeout=120, timeout=1800)
  if rc:
    raise RuntimeError(f"the 2 x 4 run of mesh {mesh} exited with {rc}; logs in {root}")
  rl = lambda d: [r for r in read_metrics(d) if "loss" in r]
  a, b = rl(one), rl(two)
  assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, steps + 1))
  diffs = {k: max(abs(x[k] - y[k]) for x, y in zip(a, b)) for k in a[0] if k not in TIMING | {"step"}
           and isinstance(a[0][k], (int, float))}
  pa, pb = _params(one, flags, steps), _params(two, flags, steps)
  param_diff = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in
                   zip(jax.tree.leaves(pa), jax.tree.leaves(pb)))
  t1, t2 = (float(np.median([r["step_seconds"] for r in rows[1:]])) for rows in (a, b))
  return {"mesh": {"data": data, "fsdp": fsdp, "tensor": tensor}, "steps": steps, "max_metric_diff": diffs,
          "max_loss_diff": diffs["loss"], "max_param_diff": param_diff, "step_seconds_1x8": t1, "step_seconds_2x4": t2,
          "time_ratio_2x4_over_1x8": t2 / t1}


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--meshes", default="8,1,1:2,2,2:1,4,2", help="data,fsdp,tensor meshes separated by ':'")
  ap.add_argument("--out", type=Path, default=None)
  args = ap.parse_args()
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for spec in args.meshes.split(":"):
      r = compare(tuple(int(x) for x in spec.split(",")), args.steps, Path(tmp))
      rows.append(r)
      worst = max(r["max_metric_diff"], key=r["max_metric_diff"].get)
      print(f"mesh {r['mesh']}: {args.steps} steps, max |loss diff| {r['max_loss_diff']:.2e}, largest metric diff "
            f"{worst} {r['max_metric_diff'][worst]:.2e}, max |param diff| {r['max_param_diff']:.2e}; median step "
            f"{r['step_seconds_1x8']:.3f} s (1 x 8) / {r['step_seconds_2x4']:.3f} s (2 x 4) = "
            f"{r['time_ratio_2x4_over_1x8']:.2f}x", flush=True)
  if args.out:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
  main()
