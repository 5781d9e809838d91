"""The jitted update: micro-batch accumulation equals the full batch through the real model, and a
non-finite step leaves the parameters untouched and is counted."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.models import decoder as dec
from critjax.models.config import ModelConfig
from critjax.rl.losses import LossConfig
from critjax.train.state import make_optimizer, new_state
from critjax.train.update import RoleSpec, accumulate_grads, update_step

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)


def batch(n=8, t=10, seed=0):
  rng = np.random.default_rng(seed)
  lengths = rng.integers(3, t, n)
  mask = (np.arange(t)[None] < lengths[:, None]).astype(np.float32)
  mask[:, :2] = 0
  return {"tokens": jnp.asarray(rng.integers(0, 64, (n, t)), jnp.int32), "mask": jnp.asarray(mask),
          "adv": jnp.asarray(np.repeat(rng.normal(size=(n, 1)), t, 1), jnp.float32),
          "old_logp": jnp.asarray(-4.0 + 0.2 * rng.normal(size=(n, t)), jnp.float32),
          "ref_logp": jnp.asarray(-4.0 + 0.2 * rng.normal(size=(n, t)), jnp.float32)}


@pytest.mark.parametrize("aggregation", ["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"])
def test_micro_batches_give_the_full_batch_gradient(aggregation):
  params, _ = dec.init_params(CFG, jax.random.key(0))
  loss = LossConfig(aggregation=aggregation, norm_len=10, kl_coef=0.1)
  b = batch()
  full = jax.jit(lambda p: accumulate_grads(p, b, RoleSpec(CFG, None, loss=loss, micro_batches=1)))(params)
  acc = jax.jit(lambda p: accumulate_grads(p, b, RoleSpec(CFG, None, loss=loss, micro_batches=4)))(params)
  np.testing.assert_allclose(acc[1], full[1], rtol=1e-5)
  jax.tree.map(lambda a, f: np.testing.assert_allclose(a, f, rtol=1e-4, atol=1e-7), acc[0], full[0])


def test_non_finite_step_is_skipped_and_counted():
  params, _ = dec.init_params(CFG, jax.random.key(0))
  opt = make_optimizer(1e-2)
  state = new_state({"policy": params}, {"policy": opt}, {}, seed=0)
  step = jax.jit(functools.partial(update_step, specs={"policy": RoleSpec(CFG, opt, loss=LossConfig())}))
  b = batch()
  b["adv"] = b["adv"].at[0, 3].set(jnp.nan)
  new, m = step(state, {"policy": b})
  assert float(m["skipped"]) == 1.0
  jax.tree.map(lambda a, c: np.testing.assert_array_equal(a, c), new.roles["policy"].params, params)
  b["adv"] = jnp.nan_to_num(b["adv"])
  new, m = step(state, {"policy": b})
  assert float(m["skipped"]) == 0.0
