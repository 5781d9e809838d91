"""Sharded train steps equal the single-device step; one jitted step updates a policy and a critic.

Runs on 8 CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=8, set in conftest.py)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax import sharding as sh
from critjax.models import decoder as dec
from critjax.models.config import ModelConfig
from critjax.rl.losses import LossConfig
from critjax.train.state import make_optimizer, new_state, state_shardings
from critjax.train.update import RoleSpec, update_step

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)
LOSS = LossConfig(kl_coef=0.05, clip_low=0.2, clip_high=0.28)


def make_batch(seed, n=8, t=12):
  rng = np.random.default_rng(seed)
  mask = (rng.random((n, t)) < 0.7).astype(np.float32)
  mask[:, 0] = 0
  return {"tokens": rng.integers(0, 64, (n, t)).astype(np.int32), "mask": mask,
          "adv": rng.normal(size=(n, t)).astype(np.float32),
          "old_logp": (-4.2 + 0.1 * rng.normal(size=(n, t))).astype(np.float32),
          "ref_logp": (-4.2 + 0.1 * rng.normal(size=(n, t))).astype(np.float32)}


def run_step(mesh, roles=("policy",)):
  params, axes = dec.init_params(CFG, jax.random.key(0))
  opt = make_optimizer(1e-2)
  specs = {r: RoleSpec(model=CFG, optimizer=opt, loss=LOSS, micro_batches=2) for r in roles}
  role_params = {r: jax.tree.map(lambda x, i=i: x * (1 + 0.1 * i), params) for i, r in enumerate(roles)}
  state = new_state(role_params, {r: opt for r in roles}, {}, seed=0)
  shardings = state_shardings(state, {r: axes for r in roles}, mesh)
  state = jax.device_put(state, shardings)
  batches = {r: sh.shard_batch(make_batch(i), mesh) for i, r in enumerate(roles)}
  step = jax.jit(functools.partial(update_step, specs=specs), out_shardings=(shardings, None))
  new, metrics = step(state, batches)
  return new, metrics, shardings


@pytest.fixture(scope="module")
def single():
  mesh = sh.make_mesh(sh.MeshConfig(data=1), devices=jax.devices()[:1])
  return run_step(mesh)


@pytest.mark.parametrize("shape", [(8, 1, 1), (2, 2, 2), (1, 2, 4)])
def test_sharded_step_equals_single_device(single, shape):
  assert jax.device_count() == 8
  mesh = sh.make_mesh(sh.MeshConfig(*shape))
  new, metrics, shardings = run_step(mesh)
  ref_state, ref_metrics, _ = single
  np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5, atol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-6),
               new.roles["policy"].params, ref_state.roles["policy"].params)
  # the parameters really are split: the q projection is sharded over fsdp x tensor
  q = new.roles["policy"].params["layer_0"]["attn"]["q_proj"]
  assert q.sharding.spec == shardings.roles["policy"].params["layer_0"]["attn"]["q_proj"].spec
  if shape != (8, 1, 1):
    assert len({s.data.shape for s in q.addressable_shards} | {q.shape}) == 2


def test_policy_and_critic_update_in_one_step():
  mesh = sh.make_mesh(sh.MeshConfig(2, 2, 2))
  new, metrics, _ = run_step(mesh, roles=("policy", "critic"))
  assert {"loss", "critic/loss", "kl", "critic/kl"} <= set(metrics)
  # each role equals its own single-role update
  params, _ = dec.init_params(CFG, jax.random.key(0))
  for i, role in enumerate(("policy", "critic")):
    before = jax.tree.map(lambda x: x * (1 + 0.1 * i), params)
    changed = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), new.roles[role].params, before)
    assert max(jax.tree.leaves(changed)) > 0


def test_logical_spec_replicates_dims_the_mesh_does_not_divide():
  mesh = sh.make_mesh(sh.MeshConfig(1, 2, 4))
  # 2 kv heads on a 4-way tensor axis: replicated; 4 heads: split
  assert sh.logical_spec(("embed", "kv_heads", "head_dim"), (32, 2, 8), mesh) == jax.sharding.PartitionSpec("fsdp", None, None)
  assert sh.logical_spec(("embed", "heads", "head_dim"), (32, 4, 8), mesh) == jax.sharding.PartitionSpec("fsdp", "tensor", None)


def test_mesh_that_does_not_fit_names_the_axes():
  with pytest.raises(ValueError, match="fsdp=3"):
    sh.make_mesh(sh.MeshConfig(data=-1, fsdp=3))
