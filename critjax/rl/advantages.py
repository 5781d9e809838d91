"""Group-relative advantage estimators (ALGORITHMS.md sections 0, 1, 2 and 13).

Dimension key: B prompts (groups), G responses per prompt, N = B*G responses, T tokens, K turns.

Every estimator in `ADVANTAGES` is `fn(rewards_bg, valid_bg) -> adv_bg`, float32, jit-friendly:
  * `valid_bg` (bool, or None for all valid) marks real responses; invalid slots (padding, responses
    dropped by a filter) get advantage 0 and do not enter their group's statistics.
  * A group with a single valid response has no baseline to compare against and gets advantage 0
    for every baselined estimator. Departure: verl's GRPO uses mean 0, std 1 there (advantage = R);
    we prefer no signal to an unnormalised one.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax.numpy as jnp

from critjax.registry import Registry

AdvantageFn = Callable[[jnp.ndarray, Optional[jnp.ndarray]], jnp.ndarray]
ADVANTAGES: Registry[AdvantageFn] = Registry("advantage")

GRPO_EPS = 1e-6  # verl `compute_grpo_outcome_advantage` epsilon
# Estimators baselined within the group: with one response per group every advantage is 0.
GROUP_BASELINED = ("grpo", "dr_grpo", "rloo")


def _prepare(rewards_bg, valid_bg):
  """float32 rewards with invalid slots zeroed, float mask, valid count per group (B, 1)."""
  if rewards_bg.ndim != 2:
    raise ValueError(f"rewards must be (B, G), got shape {rewards_bg.shape}")
  if valid_bg is None:
    valid_bg = jnp.ones(rewards_bg.shape, bool)
  if valid_bg.shape != rewards_bg.shape:
    raise ValueError(f"valid shape {valid_bg.shape} != rewards shape {rewards_bg.shape}")
  m = valid_bg.astype(jnp.float32)
  r = jnp.where(valid_bg, rewards_bg.astype(jnp.float32), 0.0)
  n = m.sum(axis=1, keepdims=True)
  return r, m, n


def _group_mean(r, m, n):
  return r.sum(axis=1, keepdims=True) / jnp.maximum(n, 1.0)   # (B, 1)


@ADVANTAGES.register("grpo")
def grpo(rewards_bg, valid_bg=None):
  """GRPO outcome advantage (DeepSeekMath, arXiv 2402.03300, Sec. 4.1.2): A_i = (R_i - mean R) / (std R + eps).

  std is the unbiased (ddof=1) sample std over the group's valid responses, as `torch.std` in verl
  and TRL; eps = 1e-6 (verl). A group whose rewards are all equal gets 0 (numerator is 0).
  """
  r, m, n = _prepare(rewards_bg, valid_bg)
  mean = _group_mean(r, m, n)
  var = (((r - mean) * m) ** 2).sum(axis=1, keepdims=True) / jnp.maximum(n - 1.0, 1.0)
  adv = (r - mean) / (jnp.sqrt(var) + GRPO_EPS)
  return jnp.where((n > 1) & (m > 0), adv, 0.0)


@ADVANTAGES.register("dr_grpo")
def dr_grpo(rewards_bg, valid_bg=None):
  """Dr. GRPO (arXiv 2503.20783, Sec. 3.2): A_i = R_i - mean_j R_j (no std division)."""
  r, m, n = _prepare(rewards_bg, valid_bg)
  return jnp.where((n > 1) & (m > 0), r - _group_mean(r, m, n), 0.0)


@ADVANTAGES.register("rloo")
def rloo(rewards_bg, valid_bg=None):
  """RLOO (Ahmadian et al., arXiv 2402.14740): A_i = R_i - (1/(n-1)) sum_{j != i} R_j = n/(n-1) (R_i - mean)."""
  r, m, n = _prepare(rewards_bg, valid_bg)
  loo = (r.sum(axis=1, keepdims=True) - r) / jnp.maximum(n - 1.0, 1.0)
  return jnp.where((n > 1) & (m > 0), r - loo, 0.0)


@ADVANTAGES.register("reinforce")
def reinforce(rewards_bg, valid_bg=None):
  """Plain REINFORCE, no baseline: A_i = R_i (SCoRe, arXiv 2409.12917, Sec. 5; the KL term is in the loss)."""
  r, m, _ = _prepare(rewards_bg, valid_bg)
  return r * m


def per_turn_group_advantages(name: str, rewards_bgk, valid_bg=None):
  """Applies estimator `name` to each turn's rewards separately: (B, G, K) -> (B, G, K).

  SCoRe stage II gives turn k its own reward (r_1, shaped r_2); each turn is baselined within its group.
  """
  fn = ADVANTAGES.get(name)
  return jnp.stack([fn(rewards_bgk[..., k], valid_bg) for k in range(rewards_bgk.shape[-1])], axis=-1)
