"""Advantage estimators against hand-computed numbers and a float64 NumPy reference."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.rl import advantages as A


def np_reference(kind, rewards, valid):
  """Loop-per-group float64 reference, written from ALGORITHMS.md Sec. 0."""
  out = np.zeros(rewards.shape)
  for b in range(rewards.shape[0]):
    idx = np.flatnonzero(valid[b])
    r = rewards[b, idx].astype(np.float64)
    n = len(idx)
    if kind == "reinforce":
      out[b, idx] = r
      continue
    if n < 2:
      continue
    if kind == "grpo":
      out[b, idx] = (r - r.mean()) / (r.std(ddof=1) + 1e-6)
    elif kind == "dr_grpo":
      out[b, idx] = r - r.mean()
    elif kind == "rloo":
      out[b, idx] = [r[i] - (r.sum() - r[i]) / (n - 1) for i in range(n)]
  return out


def test_registry_names():
  assert A.ADVANTAGES.names() == ["dr_grpo", "grpo", "reinforce", "rloo"]


def test_hand_computed_binary_group():
  r = jnp.array([[1.0, 0.0, 0.0, 1.0]])
  # mean 0.5, unbiased std sqrt(1/3) = 0.57735 -> 0.5 / 0.57735 = 0.866025
  np.testing.assert_allclose(A.grpo(r), [[0.866025, -0.866025, -0.866025, 0.866025]], atol=1e-5)
  np.testing.assert_allclose(A.dr_grpo(r), [[0.5, -0.5, -0.5, 0.5]], atol=1e-7)
  # leave-one-out: 1 - 1/3, 0 - 2/3
  np.testing.assert_allclose(A.rloo(r), [[2 / 3, -2 / 3, -2 / 3, 2 / 3]], atol=1e-6)
  np.testing.assert_allclose(A.reinforce(r), r)


def test_hand_computed_with_invalid_slot():
  r = jnp.array([[1.0, 0.0, 0.0, 5.0]])
  v = jnp.array([[True, True, True, False]])
  # valid rewards (1, 0, 0): mean 1/3, unbiased std sqrt((4/9 + 2/9) / 2) = 0.57735
  np.testing.assert_allclose(A.grpo(r, v), [[1.154700, -0.577350, -0.577350, 0.0]], atol=1e-5)
  np.testing.assert_allclose(A.rloo(r, v), [[1.0, -0.5, -0.5, 0.0]], atol=1e-6)
  np.testing.assert_allclose(A.reinforce(r, v), [[1.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize("kind", ["grpo", "dr_grpo", "rloo", "reinforce"])
def test_against_numpy(kind):
  rng = np.random.default_rng(0)
  rewards = rng.normal(size=(6, 5)).astype(np.float32)
  rewards[1] = 1.0                                   # constant group
  valid = rng.random((6, 5)) > 0.25
  valid[2] = [True, False, False, False, False]      # group of one
  valid[3] = False                                   # empty group
  fn = jax.jit(A.ADVANTAGES.get(kind))
  got = fn(jnp.asarray(rewards), jnp.asarray(valid))
  np.testing.assert_allclose(got, np_reference(kind, rewards, valid), rtol=1e-5, atol=1e-5)
  if kind != "reinforce":
    assert np.all(np.asarray(got)[2] == 0.0)
  full = fn(jnp.asarray(rewards), None)
  np.testing.assert_allclose(full, np_reference(kind, rewards, np.ones_like(valid)), rtol=1e-5, atol=1e-5)


def test_per_turn_group_advantages():
  r = jnp.array([[[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])   # (B=1, G=4, K=2)
  got = A.per_turn_group_advantages("dr_grpo", r)
  np.testing.assert_allclose(got[0], [[0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])


def test_shape_errors():
  with pytest.raises(ValueError, match="rewards must be"):
    A.grpo(jnp.zeros(3))
