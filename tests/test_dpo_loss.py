"""DPO / RPO (critjax.rl.losses 'dpo'): the loss and its metrics against float64 NumPy by hand and
against TRL's sigmoid-loss formula, its gradient, and micro-batch accumulation of whole pairs equal
to the full batch through the real model."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.models import decoder as dec
from critjax.models.config import ModelConfig
from critjax.rl.losses import LossConfig, dpo_loss
from critjax.train.update import RoleSpec, accumulate_grads

CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)


def pairs(n=6, t=7, seed=0):
  rng = np.random.default_rng(seed)
  logp = -rng.uniform(0.1, 3.0, (n, t))
  ref = -rng.uniform(0.1, 3.0, (n, t))
  lengths = rng.integers(2, t + 1, n)
  mask = (np.arange(t)[None] < lengths[:, None]).astype(np.float64)
  mask[:, 0] = 0                                           # a prompt token: never in the loss
  return logp, ref, mask


@pytest.mark.parametrize("alpha", [0.0, 0.1])
def test_dpo_matches_float64_by_hand(alpha):
  logp, ref, mask = pairs()
  beta = 0.1
  s, r = (logp * mask).sum(1), (ref * mask).sum(1)
  want = []
  for i in range(3):
    w, l = 2 * i, 2 * i + 1
    h = beta * ((s[w] - r[w]) - (s[l] - r[l]))
    want.append(np.log1p(np.exp(-h)) + alpha * (-s[w] / mask[w].sum()))
  total, denom, m = dpo_loss(jnp.asarray(logp, jnp.float32), jnp.asarray(ref, jnp.float32), jnp.asarray(mask), beta, alpha)
  assert float(denom) == 3 and float(total) / 3 == pytest.approx(np.mean(want), rel=1e-5)
  rc, rr = beta * (s[0::2] - r[0::2]), beta * (s[1::2] - r[1::2])
  assert float(m["reward_chosen"][0]) / 3 == pytest.approx(rc.mean(), rel=1e-5)
  assert float(m["margin"][0]) / 3 == pytest.approx((rc - rr).mean(), rel=1e-5)
  assert float(m["accuracy"][0]) == float(((rc - rr) > 0).sum())
  assert float(m["logp_rejected"][0]) / 3 == pytest.approx(s[1::2].mean(), rel=1e-5)


def test_dpo_equals_trls_sigmoid_loss_formula():
  """TRL DPOTrainer.dpo_loss, loss_type='sigmoid', label_smoothing 0: logits = (pi_w - pi_l) -
  (ref_w - ref_l); losses = -logsigmoid(beta * logits); chosen_rewards = beta * (pi_w - ref_w)."""
  logp, ref, mask = pairs(n=8, seed=3)
  beta = 0.3
  pi_w, pi_l = (logp * mask).sum(1)[0::2], (logp * mask).sum(1)[1::2]
  ref_w, ref_l = (ref * mask).sum(1)[0::2], (ref * mask).sum(1)[1::2]
  logits = (pi_w - pi_l) - (ref_w - ref_l)
  trl = -np.log(1.0 / (1.0 + np.exp(-beta * logits)))
  total, denom, m = dpo_loss(jnp.asarray(logp, jnp.float32), jnp.asarray(ref, jnp.float32), jnp.asarray(mask), beta)
  assert float(total) / float(denom) == pytest.approx(trl.mean(), rel=1e-5)
  assert float(m["reward_chosen"][0]) / 4 == pytest.approx((beta * (pi_w - ref_w)).mean(), rel=1e-5)


def test_dpo_gradient_by_hand_and_masked_pairs():
  logp, ref, mask = pairs(n=4, seed=1)
  valid = np.array([1, 1, 0, 1], np.float32)                # pair 1 has an invalid row: left out
  beta, alpha = 0.5, 0.2
  g = np.asarray(jax.grad(lambda x: dpo_loss(x, jnp.asarray(ref, jnp.float32), jnp.asarray(mask), beta, alpha,
                                             valid)[0])(jnp.asarray(logp, jnp.float32)))
  s, r = (logp * mask).sum(1), (ref * mask).sum(1)
  h = beta * ((s[0] - r[0]) - (s[1] - r[1]))
  sig = 1 / (1 + np.exp(h))                                 # d softplus(-h) / dh = -sigmoid(-h)
  expect = np.zeros_like(logp)
  expect[0] = mask[0] * (-beta * sig - alpha / mask[0].sum())
  expect[1] = mask[1] * (beta * sig)
  np.testing.assert_allclose(g, expect, atol=1e-6)
  with pytest.raises(ValueError, match="odd batch"):
    dpo_loss(jnp.zeros((3, 2)), jnp.zeros((3, 2)), jnp.ones((3, 2)), 0.1)


def test_micro_batches_of_whole_pairs_give_the_full_batch_gradient():
  params, _ = dec.init_params(CFG, jax.random.key(0))
  rng = np.random.default_rng(0)
  _, ref, mask = pairs(n=8, t=10, seed=5)
  b = {"tokens": jnp.asarray(rng.integers(0, 64, (8, 10)), jnp.int32), "mask": jnp.asarray(mask, jnp.float32),
       "ref_logp": jnp.asarray(ref, jnp.float32)}
  loss = LossConfig(dpo_beta=0.1, rpo_alpha=0.1)
  full = jax.jit(lambda p: accumulate_grads(p, b, RoleSpec(CFG, None, kind="dpo", loss=loss, micro_batches=1)))(params)
  acc = jax.jit(lambda p: accumulate_grads(p, b, RoleSpec(CFG, None, kind="dpo", loss=loss, micro_batch_size=2)))(params)
  np.testing.assert_allclose(acc[1], full[1], rtol=1e-5)
  jax.tree.map(lambda a, f: np.testing.assert_allclose(a, f, rtol=1e-4, atol=1e-7), acc[0], full[0])
  for k in ("margin", "accuracy", "reward_chosen"):
    assert k in full[2]
  with pytest.raises(ValueError, match="dpo_beta"):
    LossConfig(dpo_beta=0.0)
