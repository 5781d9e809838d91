"""Two processes x 4 CPU devices (experiments/launch_local.py) train as one process x 8 does: the same
GRPO metrics and parameters on the (2, 2, 2) mesh, with both processes stopped after step 1 and
restarted; bad input (an unreachable coordinator, a mesh or a batch that does not fit the processes)
stops with the address or the fields named, before any compute."""
import subprocess
import time

import jax
import numpy as np
import pytest
from conftest import compilation_cache, role_checkpoints, set_fields, strip_timing

from configs import grpo
from critjax import sharding as sh
from critjax.config import from_configdict
from critjax.train.loop import check_process_split, train
from critjax.train.metrics import read_metrics
from experiments import launch_local

# The tiny GRPO run, shrunk: no warm-up (an untrained policy), 4 prompts x 4 samples of <= 12 tokens.
FIELDS = {"model.d_model": 32, "model.n_layers": 1, "model.n_heads": 2, "model.n_kv_heads": 1, "model.head_dim": 16,
          "model.d_ff": 64, "warmup.steps": 0, "rollout.prompts_per_step": 4, "rollout.group_size": 4,
          "rollout.max_new_tokens": 12,
          "rl.soft_overlong_cache": 8,    # DAPO's length penalty: an untrained model's groups get advantages
          "task.min_digits": 1, "task.max_digits": 2, "tokenizer.corpus_size": 2000, "train.steps": 2,
          "train.eval_every": 2, "train.eval_prompts": 4, "mesh.data": 2, "mesh.fsdp": 2, "mesh.tensor": 2}
LAUNCH_TIMEOUT_S = 300    # a bound for a hang; a healthy launch here takes well under a minute


def _config(**over):
  return from_configdict(set_fields(grpo.get_config("tiny"), {**FIELDS, **over}))


def _launch(tmp_path, name: str, workdir, **over):
  """2 processes x 4 devices of experiments.train with FIELDS and `over`: (status, each process's log)."""
  flags = {**FIELDS, "mesh.distributed": True, **over}
  args = ["-m", "experiments.train", "--config=configs/grpo.py:tiny", f"--workdir={workdir}"]
  args += [f"--config.{k}={v}" for k, v in flags.items()]
  logs = tmp_path / f"logs_{name}"
  rc = launch_local.launch(args, 2, 4, log_dir=logs, init_timeout=60, timeout=LAUNCH_TIMEOUT_S)
  return rc, [(logs / f"process_{i}.log").read_text() for i in range(2)]


def test_two_processes_train_as_one_of_eight_devices_and_resume(tmp_path):
  assert jax.device_count() == 8 and jax.process_count() == 1
  two = tmp_path / "two"
  with compilation_cache(tmp_path / "cache"):      # the restarted processes load what the first ones compiled
    ref = train(_config(), tmp_path / "one")
    for name, steps in (("stop", 1), ("restart", 2)):   # stop both after step 1 (its checkpoint), restart both
      rc, logs = _launch(tmp_path, name, two, **{"train.steps": steps})
      assert rc == 0, "\n".join(log[-3000:] for log in logs)
      assert (two / "checkpoints" / str(steps)).is_dir()
  one, multi = strip_timing(read_metrics(tmp_path / "one")), strip_timing(read_metrics(two))
  rl = lambda rows: [r for r in rows if "loss" in r]
  final_eval = lambda rows: [r for r in rows if "eval/accuracy" in r and r["step"] == 2]
  assert [r["step"] for r in rl(multi)] == [r["step"] for r in rl(one)] == [1, 2]   # once each: process 0 writes
  assert min(r["grad_norm"] for r in rl(one)) > 0                                   # the updates moved the policy
  for a, b in zip(rl(one) + final_eval(one), rl(multi) + final_eval(multi), strict=True):
    assert a.keys() == b.keys()
    for k in a:
      np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=f"step {a['step']} {k}")
  load, _ = role_checkpoints(two, _config().model)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), y, rtol=1e-5, atol=1e-6),
               ref.params, load("policy", 2))
  assert len(list((two / "tensorboard").glob("events.out.tfevents.*"))) == 1


def test_mesh_that_does_not_fit_all_processes_devices_is_named(tmp_path):
  rc, logs = _launch(tmp_path, "mesh", tmp_path / "w", **{"mesh.data": 3, "mesh.fsdp": 1, "mesh.tensor": 1})
  assert rc == 2
  for log in logs:
    assert "error: config.mesh data=3 fsdp=1 tensor=1 does not fit 8 devices (2 processes x 4)" in log
  assert not (tmp_path / "w" / "config.json").exists()


def test_batch_that_does_not_split_over_processes_is_named():
  cfg = _config(**{"rollout.prompts_per_step": 3, "rollout.group_size": 3})
  check_process_split(cfg, {"policy": 9}, [], processes=1)
  with pytest.raises(ValueError, match=r"config.rollout.prompts_per_step=3 x rollout.group_size=3 .* 9-row "
                                       r"mini-batch of role 'policy' does not split over 2 processes"):
    check_process_split(cfg, {"policy": 9}, [], processes=2)


def test_unreachable_coordinator_is_named_after_a_bounded_wait(monkeypatch):
  port = launch_local.free_port()        # nothing listens there
  monkeypatch.setenv(sh.ENV_COORDINATOR, f"127.0.0.1:{port}")
  monkeypatch.setenv(sh.ENV_NUM_PROCESSES, "2")
  monkeypatch.setenv(sh.ENV_PROCESS_ID, "1")
  monkeypatch.setenv(sh.ENV_INIT_TIMEOUT, "2")
  t0 = time.monotonic()
  with pytest.raises(ConnectionError, match=rf"process 1 of 2, coordinator 127.0.0.1:{port} .*no coordinator "
                                            rf"answered within 2 s"):
    sh.initialize_distributed()
  assert time.monotonic() - t0 < 10
  monkeypatch.setenv(sh.ENV_PROCESS_ID, "0")   # process 0 serves the coordinator: it must be this machine's
  monkeypatch.setenv(sh.ENV_COORDINATOR, f"192.0.2.1:{port}")     # TEST-NET-1 (RFC 5737): no host's address
  with pytest.raises(ConnectionError, match=rf"coordinator 192.0.2.1:{port} .*not an address of this machine"):
    sh.initialize_distributed()


def test_launched_process_without_distributed_mesh_is_refused(monkeypatch):
  monkeypatch.setenv(sh.ENV_NUM_PROCESSES, "2")
  with pytest.raises(ValueError, match="CRITJAX_NUM_PROCESSES=2 .* config.mesh.distributed=False"):
    sh.make_mesh(sh.MeshConfig())


def test_launcher_stops_the_others_when_one_fails_and_returns_its_status(tmp_path):
  # process 1 fails at once; process 0 would sleep for a minute
  code = "import os, sys, time; sys.exit(3) if os.environ['CRITJAX_PROCESS_ID'] == '1' else time.sleep(60)"
  t0 = time.monotonic()
  assert launch_local.launch(["-c", code], 2, 4, log_dir=tmp_path) == 3
  assert time.monotonic() - t0 < 20
  env = launch_local.process_env(1, 2, 4, "127.0.0.1:1234", base={"XLA_FLAGS": "--xla_force_host_platform_device_count=8 "
                                                                            "--xla_backend_optimization_level=0"})
  assert env["XLA_FLAGS"] == "--xla_backend_optimization_level=0 --xla_force_host_platform_device_count=4"
  assert (env["JAX_PLATFORMS"], env[sh.ENV_PROCESS_ID], env[sh.ENV_NUM_PROCESSES]) == ("cpu", "1", "2")


@pytest.mark.parametrize("script", ["experiments/slurm_grpo.sh", "experiments/tpu_pod_grpo.sh"])
def test_pod_recipes_parse(script):
  subprocess.run(["bash", "-n", script], check=True)
