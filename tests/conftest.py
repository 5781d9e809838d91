"""Shared fixtures. `make test` sets XLA_FLAGS (8 CPU devices, LLVM optimisation level 0); set them
here too so a bare `pytest` gives the sharding tests their devices (before jax is imported)."""
import contextlib
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0")

import jax  # noqa: E402
import pytest  # noqa: E402

from critjax.models.config import ModelConfig  # noqa: E402


@contextlib.contextmanager
def compilation_cache(path):
  """JAX's persistent compilation cache in `path`, on while the block runs, for this process and
  for the processes it starts (environment variables). A test that starts several runs of one
  config (a resume, a kill soak, an ablation sweep) compiles the same programs in every run; with
  the cache only the first run compiles them, the others load the executables. Every run still
  builds its own trainer, recipe and sampler from scratch and traces and lowers its own programs:
  an entry is keyed by the lowered program itself, so a run whose program differs (other shapes,
  shardings, dtypes) compiles its own. Off again afterwards, so no other test sees it."""
  from jax.experimental.compilation_cache import compilation_cache as cc
  names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
  old = {n: getattr(jax.config, n) for n in names}
  env = {"JAX_COMPILATION_CACHE_DIR": str(path), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
  old_env = {k: os.environ.get(k) for k in env}
  jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  os.environ.update(env)
  cc.reset_cache()
  try:
    yield path
  finally:
    for n, v in old.items():
      jax.config.update(n, v)
    for k, v in old_env.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    cc.reset_cache()


def assert_resumed_like_uninterrupted(dir_a, dir_b, after: int):
  """The RL rows (warm-up rows left out, wall-clock fields stripped) that the uninterrupted run in
  `dir_a` and the interrupted-and-resumed run in `dir_b` logged after step `after` are the same:
  at least two of them, the same keys, values within 1e-6."""
  import numpy as np
  from critjax.train.metrics import read_metrics
  rl = lambda d: [r for r in strip_timing(read_metrics(d))
                  if r["step"] > after and not any(k.startswith("warmup/") for k in r)]
  ra, rb = rl(dir_a), rl(dir_b)
  assert len(ra) == len(rb) >= 2
  for x, y in zip(ra, rb):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_allclose(x[k], y[k], rtol=1e-6, err_msg=f"step {x['step']} {k}")


@pytest.fixture(scope="session")
def compilation_cache_dir(tmp_path_factory):
  """One cache directory for the session: tests of one tiny config share their executables."""
  return tmp_path_factory.mktemp("jax_compilation_cache")


@pytest.fixture
def compiled_once(compilation_cache_dir):
  """`compilation_cache` on for the duration of the test."""
  with compilation_cache(compilation_cache_dir) as path:
    yield path


@pytest.fixture
def tiny_cfg():
  return ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)


def set_fields(c, over: dict):
  """Sets dotted ConfigDict fields ({"rl.loss.kl_coef": 0.1}) in place; returns c."""
  for k, v in over.items():
    node = c
    *path, last = k.split(".")
    for p in path:
      node = node[p]
    node[last] = v
  return c


def strip_timing(rows):
  """metrics.jsonl rows without the wall-clock fields (they differ between identical runs)."""
  timing = {"step_seconds", "rollout_seconds", "update_seconds", "tokens_per_second"}
  return [{k: v for k, v in r.items() if k not in timing} for r in rows]


def role_checkpoints(workdir, model_cfg):
  """(load, same): load(role, step) reads a role's parameters (of `model_cfg`'s shapes) from the
  run's checkpoint at `step`; same(x, y) says whether two parameter trees are equal."""
  import jax
  import numpy as np
  from critjax.models import decoder
  from critjax.train.checkpoint import load_role_params
  shapes = jax.eval_shape(lambda: decoder.init_params(model_cfg, jax.random.PRNGKey(0))[0])
  sh = jax.tree.map(lambda _: jax.sharding.SingleDeviceSharding(jax.devices()[0]), shapes)
  load = lambda role, step: load_role_params(workdir, role, shapes, sh, step=step)
  same = lambda x, y: all(np.array_equal(p, q) for p, q in zip(jax.tree.leaves(x), jax.tree.leaves(y)))
  return load, same


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
  """One tiny trained critjax run (1 GRPO step) shared by every evaluation test: its model is
  noise, which is all the benchmarks' plumbing tests need, and training it once saves ~10 s per file."""
  from critjax.train.loop import train
  from test_train_loop import tiny
  d = tmp_path_factory.mktemp("tiny_run")
  train(tiny(steps=1), d)
  return d
