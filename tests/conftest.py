"""Shared fixtures. `make test` sets XLA_FLAGS for 8 CPU devices; set it here too so a bare
`pytest` gives the sharding tests their devices (it must happen before jax is imported)."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import pytest  # noqa: E402

from critjax.models.config import ModelConfig  # noqa: E402


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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
  """One tiny trained critjax run (1 GRPO step) shared by every evaluation test: its model is
  noise, which is all the benchmarks' plumbing tests need, and training it once saves ~10 s per file."""
  from critjax.train.loop import train
  from test_train_loop import tiny
  d = tmp_path_factory.mktemp("tiny_run")
  train(tiny(steps=1), d)
  return d
