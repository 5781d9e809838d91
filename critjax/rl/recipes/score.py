"""SCoRe: multi-turn self-correction RL (Kumar et al., arXiv 2409.12917) and its two-stage schedule.

Episode: [prompt][y1][instruction][y2]...[y_K]; each attempt continues from the KV cache of the
previous one (`Sampler.append` + `decode`), never re-prefilling.

  Stage I  (eq. 3): reward only the last attempt; strong KL beta2 on attempt-1 tokens keeps turn 1
           near the base model, beta1 on the rest (critjax.rl.score_rewards).
  Stage II (eq. 4): every attempt rewarded; attempt k > 1 shaped by alpha * (r_k - r_{k-1}); beta1 KL.
  Estimator: REINFORCE with the KL penalty to a fixed reference (the paper's), i.e.
  `rl.advantage = 'reinforce'`; a group baseline ('rloo', 'grpo') is an explicit option, per turn.

recipe_args (all optional): template, attempts (K, default 2), alpha (10), beta1 (0.01), beta2 (0.1),
stage1_steps (default: a third of train.steps), shaping (True). `stage1_steps = 0` is the
"w/o Stage I" ablation, `shaping = False` the "w/o reward shaping" one.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax.numpy as jnp
import numpy as np

from critjax.rl import episodes
from critjax.rl.advantages import per_turn_group_advantages
from critjax.rl.recipes.base import RECIPES, Collected, Phase
from critjax.rl.recipes.multi_turn import MultiTurn
from critjax.rl.score_rewards import TURN_REWARDS, turn_kl_coefficients, validate_score_hparams


@dataclasses.dataclass(frozen=True)
class ScoreArgs:
  template: Optional[str] = None
  attempts: int = 2
  alpha: float = 10.0
  beta1: float = 0.01
  beta2: float = 0.1
  stage1_steps: Optional[int] = None
  shaping: bool = True

  def __post_init__(self):
    try:
      validate_score_hparams(alpha=self.alpha, beta1=self.beta1, beta2=self.beta2, num_attempts=self.attempts)
    except ValueError as e:
      raise ValueError(f"config.recipe_args.{e}") from None
    if self.stage1_steps is not None and self.stage1_steps < 0:
      raise ValueError(f"config.recipe_args.stage1_steps must be >= 0, got {self.stage1_steps}")


@RECIPES.register("score")
class SCoRe(MultiTurn):
  args_cls = ScoreArgs

  def phases(self) -> list[Phase]:
    total = self.cfg.train.steps
    n1 = total // 3 if self.args.stage1_steps is None else self.args.stage1_steps
    if n1 > total:
      raise ValueError(f"config.recipe_args.stage1_steps={n1} exceeds train.steps={total}")
    phases = [Phase("stage1", n1, {"stage": 1}), Phase("stage2", total - n1, {"stage": 2})]
    return [p for p in phases if p.steps > 0]

  def references(self) -> list[str]:
    return ["policy"]       # KL to the fixed reference in both stages

  def collect(self, params, problems, rng, refill=None) -> Collected:
    g, a = self.cfg.rollout.group_size, self.args
    ro, correct, _ = self.attempts(params, problems, rng, g)
    stage = self.phase.args.get("stage", 2)
    rewards = TURN_REWARDS.get(f"score_stage{stage}")(correct, alpha=a.alpha, shaping=a.shaping)   # (N, K)
    n, k = rewards.shape
    # each turn baselined within its group: (B, G, K) -> (N, K)
    adv = np.asarray(per_turn_group_advantages(self.cfg.rl.advantage, jnp.asarray(rewards.reshape(-1, g, k))))
    adv = adv.reshape(n, k)
    betas = turn_kl_coefficients(k, stage=stage, beta1=a.beta1, beta2=a.beta2)
    batch = episodes.policy_batch(ro, adv, kl_coef_turn=betas)
    lengths = episodes.turn_lengths(ro, k)
    metrics = {"reward_mean": float(rewards.sum(1).mean()), "accuracy": float(correct[:, -1].mean()),
               "accuracy_t1": float(correct[:, 0].mean()), "response_length": float(lengths.sum(1).mean()),
               "generated_tokens": int(lengths.sum()), "stage": stage}
    return Collected(batches={"policy": batch}, metrics=metrics, group_rows=g)
