"""Smoke tests of the benchmark scripts' critjax parts, shrunk to a few tokens (timings not checked).

The naive decoder of bench_sampler is also the reference for an equivalence: greedy tokens of the
KV-cache sampler equal greedy tokens recomputed from the whole prefix every step."""
import jax
import numpy as np
import pytest

from critjax.models import decoder
from critjax.models.config import ModelConfig
from experiments import bench_sampler, bench_train_step, bench_vs_tunix

SMALL_DICT = dict(vocab_size=64, d_model=32, n_layers=1, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64, qk_norm=True)
SMALL = ModelConfig(**SMALL_DICT)


@pytest.fixture(scope="module")
def params():
  return decoder.init_params(SMALL, jax.random.key(0))[0]


def test_cached_greedy_equals_naive_recompute(params):
  r = bench_sampler.time_cached(SMALL, params, 2, prompt_len=5, new_tokens=6, repeats=1)
  ref = bench_sampler.naive_greedy(SMALL, params, bench_sampler.random_prompts(SMALL, 2, 5), 6)
  np.testing.assert_array_equal(r["tokens"], ref)
  assert r["tok_s"] > 0 and r["wall_s"] > 0


def test_naive_timing_fields(params):
  n = bench_sampler.time_naive(SMALL, params, 2, prompt_len=4, new_tokens=4, steps=1)
  assert n["growing_mean_len"] == 6 and n["fixed_tok_s"] > 0 and n["growing_tok_s"] > 0


def test_tunix_dims_parameter_count():
  # tunix_baseline.py prints 5.31M for its Qwen3 model; by hand: embed + head 2 * 4096 * 256, per layer
  # q, k, v, o 4 * 256 * 256, MLP 3 * 256 * 704, norms 2 * 256 + 2 * 64, final norm 256.
  want = 2 * 4096 * 256 + 4 * (4 * 256 * 256 + 3 * 256 * 704 + 2 * 256 + 2 * 64) + 256
  shapes = jax.eval_shape(lambda: decoder.init_params(bench_sampler.tunix_dims_model(), jax.random.key(0))[0])
  assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes)) == want


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])   # bfloat16: the --dtype option's model
def test_grpo_step_updates_policy(dtype):
  cfg = ModelConfig(**dict(SMALL_DICT, dtype=dtype, param_dtype="float32"))
  bench = bench_vs_tunix.GrpoStep(cfg, prompt_len=4, new_tokens=4, prompts=2, generations=2)
  before = jax.tree.map(np.asarray, bench.state.roles["policy"].params)
  s = bench.step(0)
  after = bench.state.roles["policy"].params
  assert (s["rows"], s["T"]) == (4, 8) and s["skipped"] == 0.0 and np.isfinite(s["loss"])
  assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(after)))


def test_tunix_ratios_by_hand():
  tunix = {"sampler": [{"B": 16, "tok_s": 1000.0}],
           "grpo": {"timings": {"generate": [9.0, 2.0, 4.0, 3.0], "update_actor": [5.0, 1.0]}}}
  tunix["grpo_phases"] = bench_vs_tunix.tunix_step_s(tunix)
  assert tunix["grpo_phases"]["step_s"] == 3.0 + 1.0      # medians of the calls after the first
  critjax = {"sampler": [{"B": 16, "tok_s": 2500.0}], "grpo": {"median": {"step_s": 2.0}}}
  assert bench_vs_tunix.ratios(critjax, tunix) == {"sampler_B16": 2.5, "grpo_step": 2.0}


@pytest.mark.parametrize("dtype", ["bfloat16"])  # float32 is the path test_grpo_step runs
def test_train_step_runs(dtype):
  r = bench_train_step.time_train_step(dtype, steps=1, rows=4, prompt=4, new=4, model=SMALL_DICT)
  assert r["T"] == 8 and r["step_s"] > 0 and r["maxrss_mb"] > 0 and np.isfinite(r["last_loss"])


def test_train_step_shapes_follow_tiny_config():
  assert bench_train_step.tiny_shapes() == dict(rows=128, prompt=16, new=48)


def test_shared_prefix_bench_runs_and_sharing_equals_independent_prefills():
  from critjax.sampling.sampler import Sampler, SamplingConfig
  from experiments import bench_shared_prefix
  r = bench_shared_prefix.measure(SMALL, 2, 3, 6, 4, repeats=1)
  assert r["prefill_ratio"] > 0 and r["generate_ratio"] > 0
  params, _ = decoder.init_params(SMALL, jax.random.key(0))
  s = Sampler(SMALL, SamplingConfig(max_new_tokens=4), capacity=10)
  prompts = np.array([[3, 4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14]], np.int32)
  shared = s.start(params, prompts, np.array([6, 4]), num_samples=3)
  indep = s.start(params, np.repeat(prompts, 3, axis=0), np.array([6, 6, 6, 4, 4, 4]))
  np.testing.assert_allclose(np.asarray(shared.last_logits), np.asarray(indep.last_logits), atol=1e-5)
  for a, b in zip(jax.tree.leaves(shared.cache), jax.tree.leaves(indep.cache)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
