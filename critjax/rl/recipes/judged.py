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

The judge is frozen here (roles.judge.trained=False: typically a GRM run's checkpoint, trained with
recipe_args.n_responses=1). Training it in the same run needs its own reward on the policy's samples
(SPCT's rule against the verifier's label) and is not built yet; a trained judge role is refused.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import numpy as np

from critjax.data.templates import GRMTemplate, get_template
from critjax.rl import protocols
from critjax.rl.grm_scores import SCORE_MAX, parse_scores
from critjax.rl.recipes.base import RECIPES
from critjax.rl.recipes.grpo import GRPO
from critjax.rl.recipes.multi_turn import parse_args
from critjax.rl.scalar_rm import score_texts

JUDGE_TURN = (protocols.Turn("judge"),)


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
    tpl = get_template(self.args.judge_template)
    if not isinstance(tpl, GRMTemplate):
      raise ValueError(f"config.recipe_args.judge_template={self.args.judge_template!r} is not a GRM template "
                       "(grm_arith, grm_chat)")
    if self.role_cfgs["judge"].trained:
      raise ValueError("config.roles.judge.trained=True: a judge trained in the same run is not built yet; "
                       "set trained=False (a frozen GRM checkpoint)")
    self.judge_template = tpl
    self.last_judge: dict = {}

  def capacity(self) -> int:
    """Room for the policy's episode and for the judge's: its prompt (within rollout.max_prompt_len,
    which must hold a completion) plus its own max_new_tokens."""
    r, judge = self.cfg.rollout, self.role_cfgs["judge"]
    return max(super().capacity(), r.max_prompt_len + (judge.max_new_tokens or r.max_new_tokens))

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
