"""SPC's offline critic loss (Chen et al., arXiv 2504.19162; ALGORITHMS.md Sec. 8), registered as
LOSSES['spc_critic'].

Dimension key: B sequences (critiques), T tokens.

Released code (chen-judge/SPC src/trainers.py, OfflineWeightedPolicyTrainer.compute_loss), per
critique i with A_i its game reward (+-1):
  lp_i     = masked mean token log-prob of the critique under pi_theta; lp_ref_i under the frozen SFT critic
  w_i      = exp(lp_i - lp_ref_i)                       length-normalised sequence ratio
  pg_i     = -min(A_i w_i, A_i clip(w_i, 1 - eps, 1 + eps)),  eps = 0.2 (clip_range)
  L        = mean_{game i} pg_i + c_sft * mean_{SFT j} (-lp_j),  c_sft = 0.15 (lm_sft_coeff)
The KL to the reference is only logged there (lm_kl_coeff is passed but unused); so here.

A sum of two means is not a ratio of two sums unless both counts are fixed, so the batch carries them:
per row `seq_weight` (1/n_game for a game row, c_sft/n_sft for an SFT row, 0 for a row out of the
loss) and `seq_share` (1/n_rows). The loss returns (sum_i seq_weight_i l_i, sum_i seq_share_i):
summed over micro-batches and divided once this is exactly L of the whole batch, whatever the
micro-batching. The recipe normalises over the step's batch, so with rl.num_minibatches > 1 a
mini-batch's loss is an unbiased estimate of L rather than L of the mini-batch (exact at 1, the config).

Batch keys: tokens, mask (B, T) on the critique; ref_logp (B, T) (the loop adds it for the roles in
`recipe.references()`); seq_adv, seq_sft (1 = an SFT row), seq_weight, seq_share (B,).

Departures: the log-ratio is clamped to +-20 before exp (as every loss here, losses.LOG_RATIO_CLAMP);
eps is rl.loss.clip_low / clip_high (0.2 / 0.2 in configs/spc.py). In the released script a
micro-batch is one sample (MICRO_TRAIN_BATCH_SIZE=1), so its per-micro-batch means are that sample's
loss and the optimizer step averages them with equal weight: recipe_args.loss_norm='per_sample'
reproduces that mixing (every row weighs 1/n_rows); 'means' (the default) is the formula above.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from critjax.rl.losses import LOG_RATIO_CLAMP, LOSSES, LossConfig


def _check(mask_bt, logp_bt, ref_bt, **rows):
  if mask_bt.ndim != 2 or logp_bt.shape != mask_bt.shape or ref_bt.shape != mask_bt.shape:
    raise ValueError(f"spc_critic: mask {mask_bt.shape}, logp {logp_bt.shape} and ref_logp {ref_bt.shape} "
                     f"must be one (B, T) shape")
  for name, x in rows.items():
    if x.shape != mask_bt.shape[:1]:
      raise ValueError(f"spc_critic: {name} must be (B,) = {mask_bt.shape[:1]}, got {x.shape}")


def spc_critic_loss(logp_bt, ref_logp_bt, mask_bt, adv_b, sft_b, weight_b, share_b, cfg: LossConfig):
  """-> (loss_sum, denom, metrics as (sum, denom) pairs); see the module docstring."""
  _check(mask_bt, logp_bt, ref_logp_bt, seq_adv=adv_b, seq_sft=sft_b, seq_weight=weight_b, seq_share=share_b)
  mask = mask_bt.astype(jnp.float32)
  on = mask > 0
  logp = jnp.where(on, logp_bt.astype(jnp.float32), 0.0)
  ref = jnp.where(on, jnp.asarray(ref_logp_bt, jnp.float32), 0.0)
  n_b = mask.sum(axis=1)
  lp = logp.sum(axis=1) / jnp.maximum(n_b, 1.0)                         # (B,)
  lp_ref = ref.sum(axis=1) / jnp.maximum(n_b, 1.0)
  has = (n_b > 0).astype(jnp.float32)
  sft = sft_b.astype(jnp.float32) * has
  game = (1.0 - sft_b.astype(jnp.float32)) * has
  adv = adv_b.astype(jnp.float32)

  w = jnp.exp(jnp.clip(lp - lp_ref, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
  unclipped, clipped = -adv * w, -adv * jnp.clip(w, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
  pg = jnp.maximum(unclipped, clipped)                                  # -min(A w, A clip(w))
  per_row = game * pg + sft * (-lp)
  loss_sum = (weight_b.astype(jnp.float32) * per_row).sum()
  denom = share_b.astype(jnp.float32).sum()

  sg = jax.lax.stop_gradient
  k1 = (logp - ref) * game[:, None] * mask
  metrics = {"pg_loss": (sg((game * pg).sum()), game.sum()),
             "sft_nll": (sg((sft * -lp).sum()), sft.sum()),
             "ratio_mean": (sg((game * w).sum()), game.sum()),
             "clip_frac": ((game * (clipped > unclipped)).sum(), game.sum()),
             "kl": (sg(k1.sum()), (game[:, None] * mask).sum())}
  return loss_sum, denom, metrics


@LOSSES.register("spc_critic")
def _spc_critic_role_loss(logp_bt, entropy_bt, mb: dict, cfg: LossConfig):
  """A critic batch of game and SFT rows (keys in the module docstring)."""
  if "ref_logp" not in mb:
    raise ValueError("loss 'spc_critic' needs ref_logp (the frozen SFT critic's log-probs): the recipe must "
                     "list the critic in references()")
  total, denom, metrics = spc_critic_loss(logp_bt, mb["ref_logp"], mb["mask"], mb["seq_adv"], mb["seq_sft"],
                                          mb["seq_weight"], mb["seq_share"], cfg)
  mask = mb["mask"].astype(jnp.float32)
  metrics["entropy"] = (jax.lax.stop_gradient((entropy_bt * mask).sum()), mask.sum())
  return total, denom, metrics
