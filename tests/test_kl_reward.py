"""KL-in-reward advantages (kl_placement='reward') against a float64 NumPy loop and a hand computation.

Formula (OpenRLHF compute_reward + get_cumulative_returns with gamma = 1, as used by Critique-RL):
  A_t = A - beta * sum_{s >= t, mask_s = 1} KL_s,   KL_s = old_logp_s - ref_logp_s (k1),
and A_t = 0 where mask_t = 0. The KL is a constant of the update: it must add no gradient.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.rl.kl import kl_in_reward_advantages
from critjax.rl.losses import LossConfig, policy_loss

# Ragged (3, 7) mask: a prefix row, a row with holes, an all-zero row.
MASK = np.array([
    [1, 1, 1, 1, 1, 0, 0],
    [1, 0, 1, 1, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 0],
], np.float32)


def np_kl_reward_adv(adv, old, ref, mask, beta):
  """Independent float64 reference: an explicit double loop over sequences and tokens."""
  adv, old, ref = (np.asarray(x, np.float64) for x in (adv, old, ref))
  n_b, n_t = adv.shape
  out = np.zeros((n_b, n_t), np.float64)
  for i in range(n_b):
    for t in range(n_t):
      if not mask[i][t]:
        continue
      to_go = 0.0
      for s in range(t, n_t):
        if mask[i][s]:
          to_go += old[i, s] - ref[i, s]
      out[i, t] = adv[i, t] - beta * to_go
  return out


def random_inputs(seed=0):
  rng = np.random.default_rng(seed)
  shape = MASK.shape
  adv = rng.normal(size=shape).astype(np.float32)
  old = -rng.uniform(0.1, 3.0, size=shape).astype(np.float32)
  ref = -rng.uniform(0.1, 3.0, size=shape).astype(np.float32)
  logp = (old + rng.uniform(-0.4, 0.4, size=shape)).astype(np.float32)   # ratios in ~[0.67, 1.5]
  return logp, old, adv, ref


# --- (a) float64 loop reference -----------------------------------------------------------------

@pytest.mark.parametrize("beta", [0.0, 0.05, 0.3])
def test_matches_numpy_loop(beta):
  _, old, adv, ref = random_inputs()
  got = kl_in_reward_advantages(jnp.asarray(adv), jnp.asarray(old), jnp.asarray(ref), jnp.asarray(MASK), beta)
  want = np_kl_reward_adv(adv, old, ref, MASK, beta)
  np.testing.assert_allclose(np.asarray(got, np.float64), want, atol=1e-5)
  assert np.all(np.asarray(got)[MASK == 0] == 0.0)
  assert np.all(np.asarray(got)[2] == 0.0)          # all-zero row


def test_masked_garbage_is_ignored():
  # Values at masked positions (even -inf) must not leak into the to-go sums.
  _, old, adv, ref = random_inputs(1)
  old_bad, ref_bad = old.copy(), ref.copy()
  old_bad[MASK == 0] = -np.inf
  ref_bad[MASK == 0] = 7.0
  got = kl_in_reward_advantages(jnp.asarray(adv), jnp.asarray(old_bad), jnp.asarray(ref_bad),
                                jnp.asarray(MASK), 0.2)
  want = np_kl_reward_adv(adv, old, ref, MASK, 0.2)
  np.testing.assert_allclose(np.asarray(got, np.float64), want, atol=1e-5)


# --- (b) hand computation -----------------------------------------------------------------------

def test_hand_1x3():
  # A = 2 on every token, beta = 0.5, mask = [1, 0, 1]
  # old = [-1, -2, -0.5], ref = [-1.5, -1, -0.25]
  # KL (k1 = old - ref) = [0.5, (masked: -1, ignored), -0.25]
  # to-go over unmasked s >= t:  t=0: 0.5 + (-0.25) = 0.25;  t=1: masked;  t=2: -0.25
  # A_t = 2 - 0.5 * to-go:       t=0: 2 - 0.125 = 1.875;     t=1: 0;       t=2: 2 + 0.125 = 2.125
  adv = jnp.full((1, 3), 2.0)
  old = jnp.array([[-1.0, -2.0, -0.5]])
  ref = jnp.array([[-1.5, -1.0, -0.25]])
  mask = jnp.array([[1.0, 0.0, 1.0]])
  got = kl_in_reward_advantages(adv, old, ref, mask, 0.5, estimator="k1")
  np.testing.assert_allclose(np.asarray(got), [[1.875, 0.0, 2.125]], atol=1e-6)

  # Same inputs, full mask: KL = [0.5, -1, -0.25]; to-go = [-0.75, -1.25, -0.25];
  # A_t = 2 - 0.5 * to-go = [2.375, 2.625, 2.125]
  got = kl_in_reward_advantages(adv, old, ref, jnp.ones((1, 3)), 0.5, estimator="k1")
  np.testing.assert_allclose(np.asarray(got), [[2.375, 2.625, 2.125]], atol=1e-6)


# --- (c) inside policy_loss ---------------------------------------------------------------------

def np_surrogate_grad(logp, old, adv, mask, agg, lo=0.2, hi=0.2):
  """float64 d(loss_sum/denom)/d logp of -min(r A, clip(r) A): -A r on the unclipped branch, else 0."""
  n_b, n_t = logp.shape
  g = np.zeros((n_b, n_t), np.float64)
  rows = [i for i in range(n_b) if any(mask[i])]
  n_tok = sum(int(sum(mask[i])) for i in rows)
  for i in rows:
    n_i = int(sum(mask[i]))
    for t in range(n_t):
      if not mask[i][t]:
        continue
      r = np.exp(np.float64(logp[i, t]) - np.float64(old[i, t]))
      a = adv[i, t]
      unclipped = -a * r
      clipped = -a * min(max(r, 1 - lo), 1 + hi)
      d = -a * r if unclipped >= clipped else 0.0
      g[i, t] = d / n_i / len(rows) if agg == "seq_mean_token_mean" else d / n_tok
  return g


@pytest.mark.parametrize("agg", ["seq_mean_token_mean", "token_mean"])
def test_policy_loss_reward_placement_equals_surrogate_with_reference_adv(agg):
  beta = 0.3
  logp, old, adv, ref = random_inputs(2)
  mask = jnp.asarray(MASK)
  adv_ref = np_kl_reward_adv(adv, old, ref, MASK, beta)

  cfg_reward = LossConfig(kl_placement="reward", kl_coef=beta, kl_estimator="k1", aggregation=agg)
  cfg_plain = LossConfig(kl_placement="loss", kl_coef=0.0, kl_estimator="k1", aggregation=agg)

  def f_reward(lp):
    s, d, _ = policy_loss(lp, jnp.asarray(old), jnp.asarray(adv), mask, cfg_reward, ref_logp_bt=jnp.asarray(ref))
    return s / d

  def f_plain(lp):
    s, d, _ = policy_loss(lp, jnp.asarray(old), jnp.asarray(adv_ref, jnp.float32), mask, cfg_plain)
    return s / d

  lp = jnp.asarray(logp)
  s_r, d_r, _ = policy_loss(lp, jnp.asarray(old), jnp.asarray(adv), mask, cfg_reward, ref_logp_bt=jnp.asarray(ref))
  s_p, d_p, _ = policy_loss(lp, jnp.asarray(old), jnp.asarray(adv_ref, jnp.float32), mask, cfg_plain)
  np.testing.assert_allclose(float(s_r), float(s_p), atol=1e-5)
  np.testing.assert_allclose(float(d_r), float(d_p), atol=0)

  # Independent float64 value of the surrogate with the reference advantage.
  n_b, n_t = MASK.shape
  per_seq, tok = [], []
  for i in range(n_b):
    ls = []
    for t in range(n_t):
      if MASK[i, t]:
        r = np.exp(np.float64(logp[i, t]) - np.float64(old[i, t]))
        a = adv_ref[i, t]
        ls.append(max(-a * r, -a * min(max(r, 0.8), 1.2)))
    if ls:
      per_seq.append(sum(ls) / len(ls))
      tok += ls
  want = sum(per_seq) / len(per_seq) if agg == "seq_mean_token_mean" else sum(tok) / len(tok)
  np.testing.assert_allclose(float(s_r / d_r), want, atol=1e-5)

  # Gradients w.r.t. logp: reward placement == pure surrogate (the KL adds no gradient) == float64 reference.
  g_r = np.asarray(jax.grad(f_reward)(lp), np.float64)
  g_p = np.asarray(jax.grad(f_plain)(lp), np.float64)
  np.testing.assert_allclose(g_r, g_p, atol=1e-6)
  np.testing.assert_allclose(g_r, np_surrogate_grad(logp, old, adv_ref, MASK, agg), atol=1e-5)
  assert np.all(g_r[MASK == 0] == 0.0)


def test_policy_loss_reward_placement_kl_gives_no_gradient_through_ref_or_old():
  # The to-go KL depends only on old and ref; logp enters only via the ratio. With logp == old (ratio 1,
  # no clipping) the gradient of token t is -A_t / (n_i * n_seq) with A_t the KL-shaped advantage.
  beta = 0.3
  _, old, adv, ref = random_inputs(3)
  mask = jnp.asarray(MASK)
  cfg = LossConfig(kl_placement="reward", kl_coef=beta, kl_estimator="k1")

  def f(lp):
    s, d, _ = policy_loss(lp, jnp.asarray(old), jnp.asarray(adv), mask, cfg, ref_logp_bt=jnp.asarray(ref))
    return s / d

  g = np.asarray(jax.grad(f)(jnp.asarray(old)), np.float64)
  adv_ref = np_kl_reward_adv(adv, old, ref, MASK, beta)
  want = np.zeros_like(adv_ref)
  n_seq = 2                                                  # rows 0 and 1 have tokens
  for i in range(MASK.shape[0]):
    n_i = MASK[i].sum()
    for t in range(MASK.shape[1]):
      if MASK[i, t]:
        want[i, t] = -adv_ref[i, t] / n_i / n_seq
  np.testing.assert_allclose(g, want, atol=1e-6)


# --- (d) config validation ----------------------------------------------------------------------

def test_unknown_kl_placement_raises():
  with pytest.raises(ValueError, match="kl_placement"):
    LossConfig(kl_placement="elsewhere")


def test_per_token_beta_weights_each_tokens_own_kl():
  """A per-token beta (SCoRe-style turn betas) multiplies each token's own KL inside the return:
  A = 0, KL = [1, 1], beta = [0.1, 0.5]  ->  A_0 = -(0.1*1 + 0.5*1) = -0.6, A_1 = -0.5."""
  import jax.numpy as jnp
  from critjax.rl.kl import kl_in_reward_advantages
  old = jnp.array([[1.0, 1.0]])
  ref = jnp.zeros((1, 2))
  got = kl_in_reward_advantages(jnp.zeros((1, 2)), old, ref, jnp.ones((1, 2)), jnp.array([[0.1, 0.5]]))
  np.testing.assert_allclose(np.asarray(got), [[-0.6, -0.5]], atol=1e-6)
