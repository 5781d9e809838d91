"""Policy-gradient losses for the online group engine (ALGORITHMS.md sections 0, 1, 2, 13), plus SFT NLL
and the BCE of DeepSeek-GRM's scalar meta RM (section 6).

Dimension key: B sequences (responses, or episodes in multi-turn), T tokens.

Every loss returns `(loss_sum, denom, metrics)`: the quantity to MINIMISE is loss_sum / denom, and
metrics are `name -> (sum, denom)` pairs. Summing sums and denominators over the micro-batches of a
batch before dividing reproduces the full-batch loss and gradient exactly, for every aggregation.
Tokens with mask 0 contribute nothing; their inputs are zeroed first so a -inf log-prob at a pad
position cannot put NaN into the gradient.

Departures from the papers, all as in verl: the log-ratio is clamped to +-20 before exp; the k3
estimate is clamped (see kl.py); a group-of-one advantage is 0 (see advantages.py).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from critjax.registry import Registry
from critjax.rl.kl import KL_ESTIMATORS, KL_PLACEMENTS, kl_in_reward_advantages

LOG_RATIO_CLAMP = 20.0  # verl `compute_policy_loss`: clamp log(pi/pi_old) before exp for stability

RatioFn = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]
AggFn = Callable[[jnp.ndarray, jnp.ndarray, Optional[int]], tuple]
RATIOS: Registry[RatioFn] = Registry("importance ratio")
AGGREGATIONS: Registry[AggFn] = Registry("loss aggregation")


# --- importance ratios: (log_ratio_bt, mask_bt) -> ratio_bt ---------------------------------------

@RATIOS.register("token")
def token_ratio(log_ratio_bt, mask_bt):
  """PPO / GRPO per-token ratio rho_{i,t} = pi_theta / pi_old."""
  del mask_bt
  return jnp.exp(log_ratio_bt)


@RATIOS.register("sequence")
def sequence_ratio(log_ratio_bt, mask_bt):
  """GSPO-token ratio (arXiv 2507.18071): s_{i,t} = sg[s_i] * pi_theta(o_t) / sg[pi_theta(o_t)].

  s_i = exp((1/|o_i|) sum_t log rho_{i,t}) is GSPO's length-normalised sequence ratio. Its value at
  every token is s_i (so clipping acts per sequence); its gradient is s_i * grad log pi_theta(o_t),
  which under seq_mean_token_mean and A_{i,t} = A_i is exactly GSPO's gradient, and still allows
  per-token (per-turn) advantages.
  """
  n_b = mask_bt.sum(axis=1, keepdims=True)
  log_s = (log_ratio_bt * mask_bt).sum(axis=1, keepdims=True) / jnp.maximum(n_b, 1.0)   # (B, 1)
  return jnp.exp(jax.lax.stop_gradient(log_s) + log_ratio_bt - jax.lax.stop_gradient(log_ratio_bt))


# --- aggregations: (x_bt, mask_bt, norm_len) -> (sum, denom) ----------------------------------------

@AGGREGATIONS.register("token_mean")
def token_mean(x_bt, mask_bt, norm_len):
  """DAPO token-level loss (arXiv 2503.14476, Sec. 3.3): sum_{i,t} l_{i,t} / sum_i |o_i|."""
  del norm_len
  return (x_bt * mask_bt).sum(), mask_bt.sum()


@AGGREGATIONS.register("seq_mean_token_mean")
def seq_mean_token_mean(x_bt, mask_bt, norm_len):
  """GRPO (DeepSeekMath eq. 3): (1/G) sum_i (1/|o_i|) sum_t l_{i,t}; sequences without tokens are not counted."""
  del norm_len
  n_b = mask_bt.sum(axis=1)
  per_seq = (x_bt * mask_bt).sum(axis=1) / jnp.maximum(n_b, 1.0)
  return per_seq.sum(), (n_b > 0).sum().astype(jnp.float32)


@AGGREGATIONS.register("seq_mean_token_sum_norm")
def seq_mean_token_sum_norm(x_bt, mask_bt, norm_len):
  """Dr. GRPO (arXiv 2503.20783, Sec. 3.2; Oat `constant_normalizer`): (1/N) sum_i sum_t l_{i,t} / L_max.

  N counts sequences with at least one token, so all-pad rows added to fill a micro-batch do not dilute it.
  """
  n_b = mask_bt.sum(axis=1)
  return (x_bt * mask_bt).sum() / norm_len, (n_b > 0).sum().astype(jnp.float32)


# --- config ---------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LossConfig:
  ratio: str = "token"                   # 'token' (PPO/GRPO) | 'sequence' (GSPO-token)
  clip_low: float = 0.2                  # ratio clipped to [1 - clip_low, 1 + clip_high]
  clip_high: float = 0.2                 # DAPO clip-higher: 0.28; GSPO: 3e-4 / 4e-4
  dual_clip_c: Optional[float] = None    # verl dual clip: for A < 0 the loss is capped at -A * c (verl 3, DAPO 10)
  kl_estimator: str = "k3"               # see critjax.rl.kl
  kl_coef: float = 0.0                   # beta; 0 = no KL term (ref log-probs may then be None)
  aggregation: str = "seq_mean_token_mean"   # | 'token_mean' (DAPO) | 'seq_mean_token_sum_norm' (Dr. GRPO)
  norm_len: Optional[int] = None         # constant normaliser L_max for seq_mean_token_sum_norm
  entropy_coef: float = 0.0              # entropy bonus: loss -= entropy_coef * H_t
  kl_placement: str = "loss"             # 'loss' (a loss term) | 'reward' (per-token reward, see kl.py)
  dpo_beta: float = 0.1                  # loss 'dpo': beta of DPO's implicit reward (TRL's default)
  rpo_alpha: float = 0.0                 # loss 'dpo': weight of the chosen NLL (RPO; ReVISE 0.1); 0 = plain DPO

  def __post_init__(self):
    if self.kl_placement not in KL_PLACEMENTS:
      raise ValueError(f"loss.kl_placement={self.kl_placement!r}; expected one of {KL_PLACEMENTS}")
    if self.ratio not in RATIOS:
      raise ValueError(f"loss.ratio={self.ratio!r}; expected one of {RATIOS.names()}")
    if not 0.0 <= self.clip_low < 1.0:
      raise ValueError(f"loss.clip_low must be in [0,1), got {self.clip_low}")
    if not self.clip_high >= 0.0:
      raise ValueError(f"loss.clip_high must be >= 0, got {self.clip_high}")
    if self.dual_clip_c is not None and not self.dual_clip_c > 1.0:
      raise ValueError(f"loss.dual_clip_c must be > 1 or None, got {self.dual_clip_c}")
    if self.kl_estimator not in KL_ESTIMATORS:
      raise ValueError(f"loss.kl_estimator={self.kl_estimator!r}; expected one of {KL_ESTIMATORS.names()}")
    if not self.kl_coef >= 0.0:
      raise ValueError(f"loss.kl_coef must be >= 0, got {self.kl_coef}")
    if self.aggregation not in AGGREGATIONS:
      raise ValueError(f"loss.aggregation={self.aggregation!r}; expected one of {AGGREGATIONS.names()}")
    if self.aggregation == "seq_mean_token_sum_norm" and self.norm_len is None:
      raise ValueError("loss.norm_len must be set (the max response length) for seq_mean_token_sum_norm")
    if self.norm_len is not None and not (isinstance(self.norm_len, int) and self.norm_len > 0):
      raise ValueError(f"loss.norm_len must be a positive int, got {self.norm_len!r}")
    if not self.entropy_coef >= 0.0:
      raise ValueError(f"loss.entropy_coef must be >= 0, got {self.entropy_coef}")
    if not (self.dpo_beta > 0.0 and self.rpo_alpha >= 0.0):
      raise ValueError(f"loss.dpo_beta must be > 0 and loss.rpo_alpha >= 0, got {self.dpo_beta} / {self.rpo_alpha}")

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "LossConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
      raise ValueError(f"unknown loss config field(s) {unknown}; known fields: {sorted(known)}")
    return cls(**d)


# --- helpers --------------------------------------------------------------------------------------

def mean_of(total, denom):
  """loss_sum / denom (or a metric pair) with an empty batch giving 0 rather than NaN."""
  return total / jnp.maximum(denom, 1.0)


def _token_metric(x_bt, mask_bt):
  return jax.lax.stop_gradient((x_bt * mask_bt).sum()), mask_bt.sum()


def _clipped_surrogate(ratio_bt, adv_bt, cfg: LossConfig):
  """PPO-clip loss -min(rho A, clip(rho) A) per token, with verl's dual clip for A < 0.

  Returns (loss_bt, clipped_bt, dual_clipped_bt); the two masks are float indicators for metrics.
  """
  unclipped = -adv_bt * ratio_bt
  clipped = -adv_bt * jnp.clip(ratio_bt, 1.0 - cfg.clip_low, 1.0 + cfg.clip_high)
  loss = jnp.maximum(unclipped, clipped)
  clip_ind = (clipped > unclipped).astype(jnp.float32)
  if cfg.dual_clip_c is None:
    return loss, clip_ind, jnp.zeros_like(loss)
  cap = -adv_bt * cfg.dual_clip_c
  dual_ind = ((adv_bt < 0) & (loss > cap)).astype(jnp.float32)
  return jnp.where(adv_bt < 0, jnp.minimum(loss, cap), loss), clip_ind, dual_ind


def _check(mask_bt, **arrays):
  if mask_bt.ndim != 2:
    raise ValueError(f"mask must be (B, T), got shape {mask_bt.shape}")
  for name, x in arrays.items():
    if x is not None and jnp.shape(x) != mask_bt.shape:
      raise ValueError(f"{name} shape {jnp.shape(x)} != mask shape {mask_bt.shape}")


# --- losses ---------------------------------------------------------------------------------------

def policy_loss(logp_bt, old_logp_bt, adv_bt, mask_bt, cfg: LossConfig, *,
                ref_logp_bt=None, kl_coef_bt=None, entropy_bt=None):
  """Clipped policy-gradient loss of the GRPO family; returns (loss_sum, denom, metrics).

  Per token: l = -min(r A, clip(r, 1-clip_low, 1+clip_high) A) + beta_t * KL_t - entropy_coef * H_t,
  aggregated by `cfg.aggregation`. Covers GRPO (DeepSeekMath eq. 3: token ratio, k3 KL as a loss
  term, seq_mean_token_mean), DAPO (clip-higher, token_mean, no KL), Dr. GRPO (constant normaliser),
  GSPO (ratio='sequence') and SCoRe (REINFORCE advantages; on-policy so r = 1 and clipping is inactive;
  `kl_coef_bt` = beta2 on turn-1 tokens and beta1 elsewhere in stage I). `kl_coef_bt` (B, T)
  overrides cfg.kl_coef. `entropy_bt` (B, T) is the policy entropy per position (differentiable).
  """
  _check(mask_bt, logp=logp_bt, old_logp=old_logp_bt, adv=adv_bt, ref_logp=ref_logp_bt,
         kl_coef=kl_coef_bt, entropy=entropy_bt)
  mask = mask_bt.astype(jnp.float32)
  on = mask > 0
  clean = lambda x: None if x is None else jnp.where(on, jnp.asarray(x, jnp.float32), 0.0)
  logp, old, adv, ref, beta_bt, ent = map(
      clean, (logp_bt, old_logp_bt, adv_bt, ref_logp_bt, kl_coef_bt, entropy_bt))

  log_ratio = jnp.clip(logp - old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
  ratio = RATIOS.get(cfg.ratio)(log_ratio, mask)
  pg, clip_ind, dual_ind = _clipped_surrogate(ratio, adv, cfg)

  beta = cfg.kl_coef if beta_bt is None else beta_bt
  use_kl = beta_bt is not None or cfg.kl_coef > 0
  if use_kl and ref is None:
    raise ValueError("policy_loss needs ref_logp_bt when loss.kl_coef > 0 or kl_coef_bt is given")
  if use_kl and cfg.kl_placement == "reward":
    # KL in the reward: the advantage carries it, the loss has no KL term (kl is still reported).
    adv = kl_in_reward_advantages(adv, old, ref, mask, beta, cfg.kl_estimator)
    pg, clip_ind, dual_ind = _clipped_surrogate(ratio, adv, cfg)
    use_kl = False
  kl = jnp.zeros_like(pg) if ref is None else KL_ESTIMATORS.get(cfg.kl_estimator)(logp, ref)
  if ent is None and cfg.entropy_coef > 0:
    raise ValueError("policy_loss needs entropy_bt when loss.entropy_coef > 0")
  ent = jnp.zeros_like(pg) if ent is None else ent

  per_token = pg + (beta * kl if use_kl else 0.0) - cfg.entropy_coef * ent
  loss_sum, denom = AGGREGATIONS.get(cfg.aggregation)(per_token, mask, cfg.norm_len)
  metrics = {name: _token_metric(x, mask) for name, x in (
      ("pg_loss", pg), ("kl", kl), ("entropy", ent), ("clip_frac", clip_ind),
      ("dual_clip_frac", dual_ind), ("ratio_mean", ratio))}
  return loss_sum, denom, metrics


LOSSES: Registry[Callable] = Registry("loss")


@LOSSES.register("policy")
def _policy_role_loss(logp_bt, entropy_bt, mb: dict, cfg: LossConfig):
  """A policy-gradient batch (tokens, mask, adv, old_logp, optional ref_logp / kl_coef)."""
  return policy_loss(logp_bt, mb["old_logp"], mb["adv"], mb["mask"], cfg, ref_logp_bt=mb.get("ref_logp"),
                     kl_coef_bt=mb.get("kl_coef"), entropy_bt=entropy_bt)


@LOSSES.register("nll")
def _nll_role_loss(logp_bt, entropy_bt, mb: dict, cfg: LossConfig):
  """A supervised batch (tokens, mask): token-mean NLL, with the entropy reported."""
  del cfg
  total, denom, metrics = nll_loss(logp_bt, mb["mask"])
  metrics["entropy"] = _token_metric(entropy_bt, mb["mask"].astype(jnp.float32))
  return total, denom, metrics


def nll_loss(logp_bt, mask_bt):
  """Token-mean negative log-likelihood for SFT / warm-up: returns (sum, denom, {'nll': (sum, denom)})."""
  _check(mask_bt, logp=logp_bt)
  mask = mask_bt.astype(jnp.float32)
  nll = -jnp.where(mask > 0, logp_bt.astype(jnp.float32), 0.0)
  total, denom = token_mean(nll, mask, None)
  return total, denom, {"nll": (jax.lax.stop_gradient(total), denom)}


# --- Critique-GRPO --------------------------------------------------------------------------------

# Critique-GRPO (arXiv 2506.03106) policy shaping f(p) = p / (p + gamma) on refinement tokens; the
# released Qwen3-8B script's `off_policy_reshape="p_div_p_0.1"`.
POLICY_SHAPING_GAMMA = 0.1


def critique_grpo_loss(logp_bt, old_logp_bt, adv_bt, mask_bt, shaped_bt, cfg: LossConfig, *, entropy_bt=None,
                       gamma: float = POLICY_SHAPING_GAMMA):
  """Critique-GRPO's mixed objective (Zhang et al., arXiv 2506.03106, Sec. 3; ALGORITHMS.md §3), to
  minimise; returns (loss_sum, denom, metrics).

  Per token, with p_t = pi_theta(y_t | q, y_<t) and the group advantage A:
    initial-sample tokens (shaped 0):  l = -A * rho_t,  rho_t = pi_theta / pi_old, NOT clipped
    refinement tokens    (shaped 1):  l = -A * f(p_t), f(p) = p / (p + gamma)   (no pi_old)
  minus entropy_coef * H_t, aggregated by cfg.aggregation. The refinement's gradient is
  -A * gamma / (p + gamma)^2 * p * grad log p: low-probability tokens of a correct refinement are
  pushed up ~1/gamma times harder than under an unshaped p * A.

  The configs use seq_mean_token_sum_norm with norm_len = max_new_tokens: (1/N) sum_i sum_t l / L_max.
  The released code (`loss_remove_token_mean`) takes each micro-batch's token sum / L_max, weighted by
  its rows / the mini-batch's rows: ours times the micro-batch's row count when every micro-batch has
  the same rows (a constant, which Adam ignores but gradient clipping does not; verl's dynamic batch
  sizes make it vary). Departures: the entropy term goes through the same aggregation (the code
  token-means it per micro-batch), so one (sum, denom) pair keeps micro-batch accumulation exact;
  clipping fields of cfg are ignored (the paper removes clipping); there is no KL term (kl 0 in the
  paper), and a config asking for one is refused. The log-ratio is clamped as in `policy_loss`.
  """
  _check(mask_bt, logp=logp_bt, old_logp=old_logp_bt, adv=adv_bt, shaped=shaped_bt, entropy=entropy_bt)
  if cfg.kl_coef > 0:
    raise ValueError("the critique_grpo loss has no KL term (Critique-GRPO uses none); set rl.loss.kl_coef=0")
  if entropy_bt is None and cfg.entropy_coef > 0:
    raise ValueError("critique_grpo_loss needs entropy_bt when loss.entropy_coef > 0")
  mask = mask_bt.astype(jnp.float32)
  on = mask > 0
  clean = lambda x: None if x is None else jnp.where(on, jnp.asarray(x, jnp.float32), 0.0)
  logp, old, adv, ent = map(clean, (logp_bt, old_logp_bt, adv_bt, entropy_bt))
  shaped = jnp.where(on, jnp.asarray(shaped_bt, jnp.float32), 0.0) > 0
  initial = (on & ~shaped).astype(jnp.float32)

  ratio = jnp.exp(jnp.clip(logp - old, -LOG_RATIO_CLAMP, LOG_RATIO_CLAMP))
  prob = jnp.exp(logp)
  pg = -adv * jnp.where(shaped, prob / (prob + gamma), ratio)
  ent = jnp.zeros_like(pg) if ent is None else ent
  loss_sum, denom = AGGREGATIONS.get(cfg.aggregation)(pg - cfg.entropy_coef * ent, mask, cfg.norm_len)
  refine = shaped.astype(jnp.float32)
  metrics = {"pg_loss": _token_metric(pg, mask), "entropy": _token_metric(ent, mask),
             "ratio_mean": _token_metric(ratio, initial), "refine_prob": _token_metric(prob, refine),
             "refine_token_frac": _token_metric(refine, mask)}
  return loss_sum, denom, metrics


@LOSSES.register("critique_grpo")
def _critique_grpo_role_loss(logp_bt, entropy_bt, mb: dict, cfg: LossConfig):
  """A Critique-GRPO mixed-group batch: a policy batch plus `shaped` (1 on refinement tokens)."""
  return critique_grpo_loss(logp_bt, mb["old_logp"], mb["adv"], mb["mask"], mb["shaped"], cfg, entropy_bt=entropy_bt)


# --- DeepSeek-GRM meta RM -------------------------------------------------------------------------

# Losses that read the scalar head: `update.role_loss` runs the forward pass with return_scalar=True
# and hands them mb['scalar'] (B, T).
SCALAR_LOSSES = frozenset({"meta_rm_bce", "reward_bt"})


def check_binary_labels(label_b, row_valid_b=None) -> None:
  """Raises naming `label` unless every counted row's label is 0 or 1. Values are only visible
  outside jit: the recipe building a meta RM batch calls this on the host; the loss, when eager."""
  label = np.asarray(label_b)
  valid = np.ones(label.shape, bool) if row_valid_b is None else np.asarray(row_valid_b) > 0
  bad = valid & (label != 0) & (label != 1)
  if bad.any():
    raise ValueError(f"meta_rm_bce: label must be 0 or 1 on every counted row; got {label[bad][:8].tolist()} "
                     f"at rows {np.flatnonzero(bad)[:8].tolist()}")


def meta_rm_bce_loss(scalar_bt, score_pos_b, label_b, row_valid_b=None):
  """Binary cross-entropy of DeepSeek-GRM's meta RM (Liu et al., arXiv 2504.02495, Sec. "meta RM";
  ALGORITHMS.md §6), to minimise; returns (loss_sum, denom, metrics).

  Per row i, with x_i = scalar_bt[i, score_pos_i] (the head's logit at the trajectory's last token)
  and y_i in {0, 1} whether the GRM trajectory's judgement was correct:
    l_i = -y_i log sigmoid(x_i) - (1 - y_i) log(1 - sigmoid(x_i)) = softplus(x_i) - x_i y_i
  (jax.nn.softplus is stable and has the exact gradient sigmoid(x) - y at x = 0, where the textbook
  max(x, 0) - x y + log(1 + exp(-|x|)) gets a wrong subgradient), averaged over rows with
  row_valid_b > 0 (all rows when None). score_pos is clipped to [0, T-1], as jit cannot raise on
  values. Metrics: bce, accuracy (the sign of x agrees with y; x = 0 counts as predicting 0) and
  prob (mean sigmoid(x)).
  """
  b, t = scalar_bt.shape
  for name, x in (("score_pos", score_pos_b), ("label", label_b), ("row_valid", row_valid_b)):
    if x is not None and jnp.shape(x) != (b,):
      raise ValueError(f"meta_rm_bce: {name} must be (B,) = ({b},), got shape {jnp.shape(x)}")
  valid = jnp.ones((b,), jnp.float32) if row_valid_b is None else (jnp.asarray(row_valid_b) > 0).astype(jnp.float32)
  pos = jnp.clip(jnp.asarray(score_pos_b, jnp.int32), 0, t - 1)
  x = jnp.take_along_axis(scalar_bt.astype(jnp.float32), pos[:, None], axis=1)[:, 0]        # (B,)
  x = jnp.where(valid > 0, x, 0.0)          # a pad row's non-finite value cannot reach the gradient
  y = jnp.where(valid > 0, jnp.asarray(label_b, jnp.float32), 0.0)
  bce = jax.nn.softplus(x) - x * y
  loss_sum, denom = (valid * bce).sum(), valid.sum()
  sg = jax.lax.stop_gradient
  hit = ((x > 0) == (y > 0.5)).astype(jnp.float32)
  metrics = {"bce": (sg(loss_sum), denom), "accuracy": ((valid * hit).sum(), denom),
             "prob": (sg((valid * jax.nn.sigmoid(x)).sum()), denom)}
  return loss_sum, denom, metrics


@LOSSES.register("meta_rm_bce")
def _meta_rm_role_loss(logp_bt, entropy_bt, mb: dict, cfg: LossConfig):
  """A meta RM batch: tokens (B, T), score_pos (B,) (the last real token, length - 1), label (B,) in
  {0, 1}, optional row_valid (B,); `update.role_loss` adds scalar (B, T). Token log-probs are unused."""
  del logp_bt, entropy_bt, cfg
  for key in ("scalar", "score_pos", "label"):
    if key not in mb:
      hint = " (set model.scalar_head=True; update.role_loss adds it)" if key == "scalar" else ""
      raise ValueError(f"loss 'meta_rm_bce' needs mb[{key!r}]{hint}; got keys {sorted(mb)}")
  if not any(isinstance(mb.get(k), jax.core.Tracer) for k in ("label", "row_valid")):
    check_binary_labels(mb["label"], mb.get("row_valid"))
  return meta_rm_bce_loss(mb["scalar"], mb["score_pos"], mb["label"], mb.get("row_valid"))


def reward_bt_loss(scalar_bt, score_pos_b, row_valid_b=None):
  """Bradley-Terry loss of a scalar reward model on preference pairs (Ouyang et al., arXiv 2203.02155,
  Eq. 1; the scalar RM of Writing-Zero's GRPO baseline, ALGORITHMS.md §7), to minimise; returns
  (loss_sum, denom, metrics).

  Rows come in pairs: row 2i is the chosen response and row 2i+1 the rejected one of pair i. With
  r = scalar_bt[row, score_pos] (the head at the response's last token),
    l_i = -log sigmoid(r_chosen - r_rejected) = softplus(r_rejected - r_chosen),
  averaged over pairs whose two rows are valid (row_valid_b > 0; all when None). Metrics:
  bt (the loss), accuracy (r_chosen > r_rejected) and margin (mean r_chosen - r_rejected)."""
  b, t = scalar_bt.shape
  if b % 2:
    raise ValueError(f"reward_bt: rows come in (chosen, rejected) pairs; got an odd batch of {b} rows")
  for name, x in (("score_pos", score_pos_b), ("row_valid", row_valid_b)):
    if x is not None and jnp.shape(x) != (b,):
      raise ValueError(f"reward_bt: {name} must be (B,) = ({b},), got shape {jnp.shape(x)}")
  valid = jnp.ones((b,), jnp.float32) if row_valid_b is None else (jnp.asarray(row_valid_b) > 0).astype(jnp.float32)
  pos = jnp.clip(jnp.asarray(score_pos_b, jnp.int32), 0, t - 1)
  r = jnp.take_along_axis(scalar_bt.astype(jnp.float32), pos[:, None], axis=1)[:, 0]
  r = jnp.where(valid > 0, r, 0.0).reshape(b // 2, 2)
  pair = valid.reshape(b // 2, 2).min(1)
  diff = r[:, 0] - r[:, 1]
  loss_sum, denom = (pair * jax.nn.softplus(-diff)).sum(), pair.sum()
  sg = jax.lax.stop_gradient
  metrics = {"bt": (sg(loss_sum), denom), "accuracy": ((pair * (diff > 0)).sum(), denom),
             "margin": (sg((pair * diff).sum()), denom)}
  return loss_sum, denom, metrics


@LOSSES.register("reward_bt")
def _reward_bt_role_loss(logp_bt, entropy_bt, mb: dict, cfg: LossConfig):
  """A pair batch: tokens (B, T) with rows (chosen, rejected) alternating, score_pos (B,), optional
  row_valid (B,); `update.role_loss` adds scalar (B, T). Micro-batches must hold whole pairs (an even
  micro-batch size, as the rows are split in order)."""
  del logp_bt, entropy_bt, cfg
  for key in ("scalar", "score_pos"):
    if key not in mb:
      hint = " (set model.scalar_head=True; update.role_loss adds it)" if key == "scalar" else ""
      raise ValueError(f"loss 'reward_bt' needs mb[{key!r}]{hint}; got keys {sorted(mb)}")
  return reward_bt_loss(mb["scalar"], mb["score_pos"], mb.get("row_valid"))


# --- preference losses ----------------------------------------------------------------------------

def dpo_loss(logp_bt, ref_logp_bt, mask_bt, beta: float, alpha: float = 0.0, row_valid_b=None):
  """DPO (Rafailov et al., arXiv 2305.18290, Eq. 7) with RPO's NLL on the chosen response (Pang et
  al., arXiv 2404.19733, Eq. 3; TRL's rpo_alpha; ReVISE's loss, ALGORITHMS.md §9), to minimise;
  returns (loss_sum, denom, metrics).

  Rows come in pairs: row 2i is the chosen response y_w and row 2i+1 the rejected y_l of pair i;
  mask_bt marks each response's tokens. With sequence log-probs log pi(y) = sum_t mask * logp and
  the frozen reference's log pi_ref(y) (ref_logp_bt, computed once by the loop),
    h_i = beta [(log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))]
    l_i = -log sigmoid(h_i) + alpha * (-log pi(y_w) / |y_w|)
  averaged over pairs whose two rows are valid. The NLL is length-normalised per pair (RPO's
  form), so every term has the pair as its unit and micro-batches of whole pairs accumulate
  exactly; TRL instead takes the token mean over the batch's chosen tokens, the same when every
  chosen response has one length. Metrics: dpo (the first term), nll_chosen, reward_chosen /
  reward_rejected (beta (log pi - log pi_ref)), margin, accuracy (margin > 0), logp_chosen /
  logp_rejected (sequence log-probs)."""
  b, t = logp_bt.shape
  if b % 2:
    raise ValueError(f"dpo: rows come in (chosen, rejected) pairs; got an odd batch of {b} rows")
  _check(mask_bt, logp=logp_bt, ref_logp=ref_logp_bt)
  if row_valid_b is not None and jnp.shape(row_valid_b) != (b,):
    raise ValueError(f"dpo: row_valid must be (B,) = ({b},), got shape {jnp.shape(row_valid_b)}")
  m = mask_bt.astype(jnp.float32)
  seq = jnp.where(m > 0, logp_bt.astype(jnp.float32), 0.0).sum(1).reshape(-1, 2)
  ref = jnp.where(m > 0, ref_logp_bt.astype(jnp.float32), 0.0).sum(1).reshape(-1, 2)
  n_w = m.sum(1).reshape(-1, 2)[:, 0]
  valid = jnp.ones((b,), jnp.float32) if row_valid_b is None else (jnp.asarray(row_valid_b) > 0).astype(jnp.float32)
  pair = valid.reshape(-1, 2).min(1)
  reward = beta * (seq - ref)                                     # (P, 2) implicit rewards
  margin = reward[:, 0] - reward[:, 1]
  l_dpo = jax.nn.softplus(-margin)
  nll = -seq[:, 0] / jnp.maximum(n_w, 1.0)
  loss_sum, denom = (pair * (l_dpo + alpha * nll)).sum(), pair.sum()
  sg = jax.lax.stop_gradient
  mean = lambda x: (sg((pair * x).sum()), denom)
  metrics = {"dpo": mean(l_dpo), "nll_chosen": mean(nll), "reward_chosen": mean(reward[:, 0]),
             "reward_rejected": mean(reward[:, 1]), "margin": mean(margin),
             "accuracy": ((pair * (margin > 0)).sum(), denom), "logp_chosen": mean(seq[:, 0]),
             "logp_rejected": mean(seq[:, 1])}
  return loss_sum, denom, metrics


@LOSSES.register("dpo")
def _dpo_role_loss(logp_bt, entropy_bt, mb: dict, cfg: LossConfig):
  """A pair batch: tokens (B, T) with rows (chosen, rejected) alternating, mask (B, T) on the
  responses, ref_logp (B, T) from the frozen reference, optional row_valid (B,). Micro-batches must
  hold whole pairs (an even micro-batch size)."""
  del entropy_bt
  for key in ("mask", "ref_logp"):
    if key not in mb:
      raise ValueError(f"loss 'dpo' needs mb[{key!r}] (the reference's log-probs come from the loop); got keys "
                       f"{sorted(mb)}")
  return dpo_loss(logp_bt, mb["ref_logp"], mb["mask"], cfg.dpo_beta, cfg.rpo_alpha, mb.get("row_valid"))
