"""Per-token estimators of KL(pi_theta || pi_ref) at sampled tokens (Schulman, "Approximating KL divergence", 2020).

Dimension key: B sequences, T tokens. Inputs are log-probabilities of the sampled tokens, (B, T) -> (B, T) float32.
With d = log pi_ref - log pi_theta (ALGORITHMS.md Sec. 0):
  k1 = -d               unbiased, high variance, can be negative
  k2 = d^2 / 2          biased, low variance
  k3 = exp(d) - d - 1   unbiased, >= 0; GRPO's estimator (DeepSeekMath eq. 4), verl "low_var_kl"

Used as a LOSS term on on-policy samples, what matters is the gradient, not the value:
  grad k1 = grad log pi                    expectation 0: no pull toward the reference, only noise
                                           (an unlikelihood push on the model's own samples);
  grad k2 = (log pi - log pi_ref) grad log pi   the unbiased gradient of KL(pi || pi_ref);
  grad k3 = (1 - pi_ref / pi) grad log pi       the gradient of KL(pi_ref || pi) in expectation.
So a "KL penalty to a fixed reference" in the loss uses k2 (or k3, as GRPO); k1 belongs in the
reward (PPO-RLHF / Critique-RL placement), where it is multiplied into the advantage.
"""
from __future__ import annotations

from typing import Callable

import jax.numpy as jnp

from critjax.registry import Registry

KLFn = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]
KL_ESTIMATORS: Registry[KLFn] = Registry("kl estimator")

# verl `kl_penalty` low_var_kl: the log-ratio is clamped to +-20 before exp, the estimate to +-10, so a single
# token whose policy drifted far from the reference cannot dominate the loss (gradient is 0 past the clamp).
K3_LOG_RATIO_CLAMP = 20.0
K3_CLAMP = 10.0


def _d(logp_bt, ref_logp_bt):
  return ref_logp_bt.astype(jnp.float32) - logp_bt.astype(jnp.float32)


@KL_ESTIMATORS.register("k1")
def k1(logp_bt, ref_logp_bt):
  return -_d(logp_bt, ref_logp_bt)


@KL_ESTIMATORS.register("k2")
def k2(logp_bt, ref_logp_bt):
  return 0.5 * jnp.square(_d(logp_bt, ref_logp_bt))


@KL_ESTIMATORS.register("k3")
def k3(logp_bt, ref_logp_bt):
  d = jnp.clip(_d(logp_bt, ref_logp_bt), -K3_LOG_RATIO_CLAMP, K3_LOG_RATIO_CLAMP)
  return jnp.clip(jnp.exp(d) - d - 1.0, -K3_CLAMP, K3_CLAMP)


KL_PLACEMENTS = ("loss", "reward")


def kl_in_reward_advantages(adv_bt, old_logp_bt, ref_logp_bt, mask_bt, beta, estimator: str = "k1"):
  """Advantages with the KL folded into the per-token reward (PPO-RLHF; OpenRLHF, as Critique-RL).

  OpenRLHF (`compute_reward` + `get_cumulative_returns`, gamma = 1) gives token t the reward
  r_t = -beta_t * KL_t, plus the (baselined) task reward on the last token, and uses the return
  from t as the advantage:  A_t = A - sum_{s >= t, m_s = 1} beta_s KL_s,  KL_s estimated at the
  behaviour policy's sampled tokens (k1 = log pi_old - log pi_ref by default). The KL term is a
  constant of the update (no gradient flows through it). `beta`: a scalar or per token (B, T).
  Masked tokens get 0.
  """
  mask = mask_bt.astype(jnp.float32)
  penalty = jnp.where(mask > 0, beta * KL_ESTIMATORS.get(estimator)(old_logp_bt, ref_logp_bt), 0.0)
  to_go = jnp.flip(jnp.cumsum(jnp.flip(penalty, axis=1), axis=1), axis=1)     # sum_{s >= t} beta_s KL_s
  return jnp.where(mask > 0, adv_bt - to_go, 0.0)
