"""SCoRe per-turn rewards and per-token KL coefficients (Kumar et al., arXiv 2409.12917).

Host-side NumPy: rewards are computed once per rollout batch from the verifier's verdicts, before
the jitted update, so nothing here needs tracing.

Dimension key: N episodes (problems x samples), K attempts (turns) per episode, T tokens.

Reading of the paper used here (equation numbers of arXiv 2409.12917; checked against the spec in
specs/ALGORITHMS.md §2, not against the PDF in this session):
  * eq. (3), Stage I:  max E[ r_hat(y2, y*) - beta2 * KL(pi_theta(.|x1) || pi_ref(.|x1)) ].
    Only the last attempt is rewarded; turn-1 tokens carry a strong KL (beta2). The paper does not
    say whether turn-2 tokens keep the global beta1 KL; we keep it (the spec's recommended default).
  * eq. (4), Stage II: max E[ sum_i ( r_hat(y_i, y*) - beta1 * KL(pi_theta(.|x_i) || pi_ref(.|x_i)) ) ],
    with turn 2's reward shaped by the bonus b_hat(y2 | y1, y*) = alpha * (r_hat(y2) - r_hat(y1))
    (defined in the text of §5.2, alpha > 1), i.e. r_2 = r_hat(y2) + b_hat.
    alpha = 10 gives i->c 11, c->c 1, c->i -10, i->i 0.
  * Credit assignment is per turn: turn-k tokens get r_k only (no return summed across turns),
    because the paper does not spell out cross-turn propagation and summing r_2 into turn 1 would
    penalise a correct first attempt whenever the second one breaks it.

K > 2 (our choice, not in the paper, which trains two attempts): turn k > 1 is shaped against the
turn just before it, r_k = r_hat(y_k) + alpha * (r_hat(y_k) - r_hat(y_{k-1})), the natural reading
of "reward progress from the previous attempt"; Stage I rewards only the last turn and holds the
first `anchored_turns` turns (default 1, the paper's turn 1) near the reference with beta2.
"""
from __future__ import annotations

import numpy as np

from critjax.registry import Registry

TURN_REWARDS: Registry = Registry("SCoRe turn reward")

# SCoRe Table 5 (MATH and MBPP both use alpha = 10; beta1 = 0.01; beta2 = 0.1 MATH / 0.25 code).
PAPER_ALPHA = 10.0
PAPER_BETA1 = 0.01



def validate_score_hparams(*, alpha: float = PAPER_ALPHA, beta1: float = PAPER_BETA1,
                           beta2: float = 0.1, num_attempts: int = 2) -> None:
  """Raises ValueError naming the field; call from a config's __post_init__ before any compute."""
  if not np.isfinite(alpha) or alpha < 0:
    raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
  if not np.isfinite(beta1) or beta1 < 0:
    raise ValueError(f"beta1 must be a finite number >= 0, got {beta1!r}")
  if not np.isfinite(beta2) or beta2 < 0:
    raise ValueError(f"beta2 must be a finite number >= 0, got {beta2!r}")
  if int(num_attempts) != num_attempts or num_attempts < 1:
    raise ValueError(f"num_attempts (K) must be an integer >= 1, got {num_attempts!r}")


def _as_rewards_nk(correct_nk) -> np.ndarray:
  r_nk = np.asarray(correct_nk, dtype=np.float64)
  if r_nk.ndim != 2:
    raise ValueError(f"correct_nk must have shape (N, K), got {r_nk.shape}")
  if r_nk.shape[1] < 1:
    raise ValueError(f"num_attempts (K) must be >= 1, got correct_nk with shape {r_nk.shape}")
  return r_nk


@TURN_REWARDS.register("score_stage2")
def stage2_turn_rewards(correct_nk, *, alpha: float = PAPER_ALPHA, shaping: bool = True) -> np.ndarray:
  """SCoRe Stage II per-turn rewards, eq. (4) with the bonus b_hat: (N, K) verdicts -> (N, K) float32.

  correct_nk: r_hat(y_k, y*) per attempt, bool or numbers (a unit-test pass rate works too).
  r_1 = r_hat(y_1);  r_k = r_hat(y_k) + alpha * (r_hat(y_k) - r_hat(y_{k-1})) for k > 1.
  shaping=False drops the bonus (r_k = r_hat(y_k)): the paper's "w/o reward shaping" ablation.
  """
  validate_score_hparams(alpha=alpha)
  r_nk = _as_rewards_nk(correct_nk)
  out_nk = r_nk.copy()
  if shaping:
    out_nk[:, 1:] += alpha * (r_nk[:, 1:] - r_nk[:, :-1])
  return out_nk.astype(np.float32)


@TURN_REWARDS.register("score_stage1")
def stage1_turn_rewards(correct_nk, *, alpha: float = PAPER_ALPHA, shaping: bool = True) -> np.ndarray:
  """SCoRe Stage I per-turn rewards, eq. (3): only the last attempt is rewarded (turn weight 0 elsewhere).

  (N, K) verdicts -> (N, K) float32 with r_K = r_hat(y_K) and zeros before it. `alpha` and `shaping`
  are accepted (and validated) so both stages share one call signature; Stage I never shapes.
  """
  validate_score_hparams(alpha=alpha)
  del shaping
  r_nk = _as_rewards_nk(correct_nk)
  out_nk = np.zeros_like(r_nk)
  out_nk[:, -1] = r_nk[:, -1]
  return out_nk.astype(np.float32)


def turn_kl_coefficients(num_turns: int, *, stage: int, beta1: float = PAPER_BETA1, beta2: float = 0.1,
                         anchored_turns: int = 1) -> np.ndarray:
  """SCoRe's KL weight per turn, (K,) float32 (episodes.policy_batch puts it on each turn's tokens).

  stage=1 (eq. (3)): beta2 on the first `anchored_turns` turns (the paper's turn 1 is
    anchored_turns=1), beta1 on later turns.
  stage=2 (eq. (4)): beta1 on every turn.
  Context tokens (prompt, instructions, padding) get no KL: they are not the policy's actions.
  """
  validate_score_hparams(beta1=beta1, beta2=beta2)
  if stage not in (1, 2):
    raise ValueError(f"stage must be 1 or 2, got {stage!r}")
  if anchored_turns < 1:
    raise ValueError(f"anchored_turns must be >= 1, got {anchored_turns!r}")
  turns = np.arange(num_turns)
  return np.where((turns < anchored_turns) & (stage == 1), beta2, beta1).astype(np.float32)
