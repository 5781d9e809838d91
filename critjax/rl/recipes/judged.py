"""GRPO with a generative judge inside the RL loop: the policy's reward is a GRM role's voted score.

Peer frameworks call a judge served elsewhere; here the judge is a role of the run (`judge`), on
the same mesh and in the same process, and the recipe batches the whole step's completions into
its judging episodes: after the policy's B x G rollouts, one judging episode of B x G prompts
(each a pointwise GRM prompt holding one completion, critjax.data.templates.GRMTemplate) with
`judge_samples` = k samples each, every sample of a prompt sharing its prefill.

Reward of a completion (SPCT's voting, arXiv 2504.02495 §3.3, ALGORITHMS.md §6, for n = 1): the
judge's scores S_j in 1..10 over the k samples, summed over the valid ones and normalised,
    r = (sum_{valid j} S_j) / (k_valid * 10),   r = 0 when no sample is valid,
so r is the voted mean score on [0.1, 1] (an unjudgeable completion earns nothing, as a wrong one
does under the verifier). The task's own verifier still scores every completion for the logs
(`verified_accuracy`) and the greedy evaluation, so reward hacking of the judge shows up as a gap
between the two.

The judge is frozen (roles.judge.trained=False: typically a GRM run's checkpoint, trained with
recipe_args.n_responses=1) or trained in the same run (trained=True): then its k samples per
completion are a GRPO group of their own, in the same jitted update as the policy's. Its reward
(our reading, UNVERIFIED: SPCT's n = 1 rule compares the score with a label score, and the loop has
only the verifier's right / wrong): +1 when the judgment is valid and puts the completion on the
verifier's side of the scale's middle (score >= JUDGE_RIGHT_FROM = 6 for a right completion, <= 5
for a wrong one), -1 otherwise or when invalid. Logged as judge_correct.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from critjax.data.templates import check_grm_template, get_template
from critjax.rl import episodes, protocols
from critjax.rl.advantages import ADVANTAGES
from critjax.rl.grm_scores import SCORE_MAX, parse_scores
from critjax.rl.recipes.base import RECIPES
from critjax.rl.recipes.grpo import GRPO
from critjax.rl.recipes.multi_turn import parse_args
from critjax.rl.scalar_rm import score_texts

JUDGE_TURN = (protocols.Turn("judge"),)
JUDGE_RIGHT_FROM = 6          # a trained judge's reward: scores >= 6 call a completion right


def judge_rewards(scores_nk, valid_nk, right_n) -> np.ndarray:
  """(N, k) float32 reward of a trained pointwise judge's samples (module docstring): +1 valid and on
  the verifier's side of the scale's middle, -1 otherwise."""
  s, v = np.asarray(scores_nk), np.asarray(valid_nk, bool)
  says_right = s >= JUDGE_RIGHT_FROM
  agree = says_right == np.asarray(right_n, bool)[:, None]
  return np.where(v & agree, 1.0, -1.0).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class JudgedArgs:
  template: Optional[str] = None       # the policy's (default: the task's)
  judge_template: str = "grm_arith"    # a GRMTemplate
  judge_samples: int = 4               # k

  def __post_init__(self):
    if self.judge_samples < 1:
      raise ValueError(f"config.recipe_args.judge_samples={self.judge_samples} must be >= 1")


def voted_reward(scores_nk, valid_nk) -> np.ndarray:
  """(N,) float32: per completion the valid samples' summed scores / (their count x SCORE_MAX); 0
  without a valid sample. scores_nk (N, k) int (anything where invalid), valid_nk (N, k) bool."""
  s, v = np.asarray(scores_nk, np.float64), np.asarray(valid_nk, bool)
  n_valid = v.sum(1)
  total = np.where(v, s, 0.0).sum(1)
  return np.where(n_valid > 0, total / np.maximum(n_valid, 1) / SCORE_MAX, 0.0).astype(np.float32)


@RECIPES.register("grpo_judged")
class JudgedGRPO(GRPO):
  roles = {"policy": "trained", "judge": "any"}

  def check_args(self, args: dict):
    self.args = parse_args(JudgedArgs, dict(args))
    tpl = check_grm_template(get_template(self.args.judge_template), "judge_template", self.args.judge_template)
    self.train_judge = self.role_cfgs["judge"].trained
    if self.train_judge and self.args.judge_samples < 2:
      raise ValueError(f"config.recipe_args.judge_samples={self.args.judge_samples}: a judge trained in the run "
                       "learns from a group of its k samples per completion; set judge_samples >= 2")
    if self.train_judge and self.cfg.rl.dynamic_sampling:
      raise ValueError("config.rl.dynamic_sampling=True with a trained judge: one judging episode per step is "
                       "built; set dynamic_sampling=False")
    self.judge_template = tpl
    self.last_judge: dict = {}
    self.judge_batch = None

  def capacity(self) -> int:
    """Room for the policy's episode and for the judge's: its prompt (within rollout.max_prompt_len,
    which must hold a completion) plus its own max_new_tokens."""
    r, judge = self.cfg.rollout, self.role_cfgs["judge"]
    return max(super().capacity(), r.max_prompt_len + (judge.max_new_tokens or r.max_new_tokens))

  def trained_roles(self) -> list[str]:
    return ["policy", "judge"] if self.train_judge else ["policy"]

  def rows_per_step(self) -> dict[str, int]:
    r = self.cfg.rollout
    rows = {"policy": r.prompts_per_step * r.group_size}
    if self.train_judge:
      rows["judge"] = rows["policy"] * self.args.judge_samples
    return rows

  def collect(self, params, problems, rng, refill=None):
    out = super().collect(params, problems, rng, refill)
    if self.train_judge:
      out.batches["judge"] = self.judge_batch
    return out

  def score_completions(self, params, problems, texts, rng) -> np.ndarray:
    k = self.args.judge_samples
    prompts = [self.judge_template.prompt(p.problem, [t]) for p, t in zip(problems, texts)]
    ep = protocols.run(self.engine, JUDGE_TURN, problems, prompts, params, jax.random.fold_in(rng, 0x7D6E),
                       num_samples=k)
    parsed = [parse_scores(t, 1) for t in ep.texts(0)]
    valid = np.array([p.valid for p in parsed]).reshape(len(texts), k)
    scores = np.array([p.scores[0] if p.valid else 0 for p in parsed]).reshape(len(texts), k)
    reward = voted_reward(scores, valid)
    verified = self.task.score(problems, texts)
    right = verified >= 1.0
    self.last_judge = {"judge_invalid": float(1.0 - valid.mean()), "verified_accuracy": float(right.mean()),
                       "judge_reward_right": float(reward[right].mean()) if right.any() else float("nan"),
                       "judge_reward_wrong": float(reward[~right].mean()) if (~right).any() else float("nan")}
    if self.train_judge:
      r_judge = judge_rewards(scores, valid, right)                       # (N, k): a group per completion
      adv = np.asarray(ADVANTAGES.get(self.cfg.rl.advantage)(jnp.asarray(r_judge), jnp.ones(r_judge.shape, bool)))
      self.judge_batch = episodes.policy_batch(ep.rollout, adv.reshape(-1, 1))
      self.last_judge["judge_correct"] = float((r_judge > 0).mean())
    return reward

  def generation_metrics(self, gens) -> dict:
    return dict(self.last_judge)


@dataclasses.dataclass(frozen=True)
class ScalarRMArgs:
  template: Optional[str] = None       # the policy's (default: the task's)


@RECIPES.register("grpo_rm")
class ScalarRMGRPO(GRPO):
  """GRPO whose reward is a frozen scalar reward model's score (role `rm`: a decoder with a scalar
  head, e.g. a recipes/reward_model.py run's policy): r = the head at the EOS after the policy's
  prompt + completion, raw (GRPO's group normalisation makes its scale irrelevant). Writing-Zero's
  scalar-RM baseline (arXiv 2506.00103, ALGORITHMS.md §7). The verifier is logged beside it: the
  step metric `accuracy` is the verifier's (the RM score is `reward_mean`), and `rm_score_right` /
  `rm_score_wrong` show what the RM pays for right and wrong answers."""
  roles = {"policy": "trained", "rm": "any"}

  def check_args(self, args: dict):
    self.args = parse_args(ScalarRMArgs, dict(args))
    rm = self.role_cfgs["rm"]
    if not rm.model.scalar_head:
      raise ValueError("config.roles.rm.model.scalar_head must be True: the reward is the RM's scalar head")
    if rm.trained:
      raise ValueError("config.roles.rm.trained=True: the scalar RM is frozen in recipe 'grpo_rm'")
    self.last_rm: dict = {}

  def score_completions(self, params, problems, texts, rng) -> np.ndarray:
    r = score_texts(params["rm"], self.role_cfgs["rm"].model, self.tokenizer, self.prompt_texts(problems), texts,
                    self.capacity(), self.pad_id).astype(np.float32)
    right = self.task.score(problems, texts) >= 1.0
    self.last_rm = {"accuracy": float(right.mean()),
                    "rm_score_right": float(r[right].mean()) if right.any() else float("nan"),
                    "rm_score_wrong": float(r[~right].mean()) if (~right).any() else float("nan")}
    return r

  def generation_metrics(self, gens) -> dict:
    return dict(self.last_rm)

  def evaluate(self, params, problems) -> dict:
    return self.evaluate_with_length(params, problems)
