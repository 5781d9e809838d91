"""BRPO, Bootstrapped Relative Policy Optimization (Writing-Zero, arXiv 2506.00103 §7.2;
ALGORITHMS.md §7): GRPO's loop with a pairwise generative judge in place of a scalar reward.

Roles: `policy` (trained) and `judge` (frozen here: a pairwise GenRM, e.g. a recipes/pairwise_grm.py
run's policy, on the same mesh and in the same process). Per step, after the policy's B x G
rollouts, one judging episode holds every comparison the step needs: per query one rollout drawn
uniformly as the temporary reference, and every other rollout judged against it in both orders,
B * 2 (G - 1) judge prompts sampled once each at the judge's temperature. Rewards, advantages,
the reference's treatment, inconsistent votes and the |sum r| / G > drop_threshold filter are
critjax.rl.brpo.brpo_rewards's (its docstring states our reading where the paper is silent):
A_i = r_i = +1 iff o_i beats the reference under both orders, else -1; the reference row and the
dropped queries are masked. The loss is the policy loss of config.rl.loss (GRPO's clipped token
surrogate with A_i broadcast to tokens); config.rl.advantage is not used.

The task's verifier still scores every rollout, for the logs only: `accuracy` and, for the judge,
`judge_agreement` (over judged pairs whose two rollouts the verifier tells apart, the share where
the rollout wins iff it is the right one). Evaluation: greedy accuracy and response length.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import numpy as np

from critjax.data.tasks import Problem
from critjax.data.templates import check_grm_template, get_template
from critjax.rl import protocols
from critjax.rl.brpo import DROP_THRESHOLD, brpo_rewards, judged_pairs, pick_references, wins_of_judgments
from critjax.rl.grm_scores import parse_scores
from critjax.rl.recipes.base import RECIPES
from critjax.rl.recipes.grpo import GRPO
from critjax.rl.recipes.multi_turn import parse_args
from critjax.rl.recipes.pairwise_grm import judge_prompt

JUDGE_TURN = (protocols.Turn("judge"),)
_REF_SALT, _JUDGE_SALT = 0xB290, 0xB291


@dataclasses.dataclass(frozen=True)
class BRPOArgs:
  template: Optional[str] = None          # the policy's (default: the task's)
  judge_template: str = "grm_pair_arith"  # a GRMTemplate over two responses
  drop_threshold: float = DROP_THRESHOLD

  def __post_init__(self):
    if not 0.0 <= self.drop_threshold <= 1.0:
      raise ValueError(f"config.recipe_args.drop_threshold={self.drop_threshold} must be in [0, 1]")


@RECIPES.register("brpo")
class BRPO(GRPO):
  roles = {"policy": "trained", "judge": "any"}

  def check_args(self, args: dict):
    self.args = parse_args(BRPOArgs, dict(args))
    tpl = check_grm_template(get_template(self.args.judge_template), "judge_template", self.args.judge_template)
    if self.role_cfgs["judge"].trained:
      raise ValueError("config.roles.judge.trained=True: a judge trained in the same BRPO run is not built; set "
                       "trained=False (a frozen pairwise GenRM checkpoint)")
    if self.cfg.rollout.group_size < 2:
      raise ValueError(f"config.rollout.group_size={self.cfg.rollout.group_size}: BRPO judges rollouts against a "
                       "reference from the same group, so it needs G >= 2")
    if self.cfg.rl.dynamic_sampling:
      raise ValueError("config.rl.dynamic_sampling=True: BRPO has its own query filter (recipe_args.drop_threshold)")
    self.judge_template = tpl
    self.last_brpo: dict = {}
    # A judge prompt holds two completions: refuse a max_prompt_len that cannot, before any compute
    # (a prompt over it would fail its step mid-run).
    r = self.cfg.rollout
    n = "9" * self.cfg.task.max_digits                  # the toy's longest query (a real task's are its own)
    probe = Problem(id="probe", problem=f"{n}+{n}", answer=str(2 * int(n)))
    overhead = len(self.tokenizer.encode(judge_prompt(tpl, probe, ["", ""])))
    if r.max_prompt_len < overhead + 2 * r.max_new_tokens:
      raise ValueError(f"config.rollout.max_prompt_len={r.max_prompt_len} cannot hold a judge prompt: {overhead} "
                       f"tokens of template + 2 x rollout.max_new_tokens={r.max_new_tokens}; set it >= "
                       f"{overhead + 2 * r.max_new_tokens}")

  def capacity(self) -> int:
    """Room for the judge's episode too: its prompt (two completions; within rollout.max_prompt_len)
    plus its own max_new_tokens."""
    r, judge = self.cfg.rollout, self.role_cfgs["judge"]
    return max(super().capacity(), r.max_prompt_len + (judge.max_new_tokens or r.max_new_tokens))

  def group_advantages(self, params, problems, texts, rewards_bg, valid_bg, rng):
    b, g = rewards_bg.shape
    seed = int(jax.random.randint(jax.random.fold_in(rng, _REF_SALT), (), 0, 2**31 - 1))
    ref = pick_references(b, g, np.random.default_rng(seed))
    pairs = judged_pairs(ref, g)
    shown = [[texts[q * g + i], texts[q * g + ref[q]]][::1 if o == 0 else -1] for q, i, o in pairs]
    qs = [problems[q] for q, _, _ in pairs]
    prompts = [judge_prompt(self.judge_template, p, s) for p, s in zip(qs, shown)]
    ep = protocols.run(self.engine, JUDGE_TURN, qs, prompts, params, jax.random.fold_in(rng, _JUDGE_SALT))
    parsed = [parse_scores(t, 2) for t in ep.texts(0)]
    fwd, rev = wins_of_judgments(pairs, parsed, b, g)
    res = brpo_rewards(fwd, rev, ref, self.args.drop_threshold)
    valid = valid_bg & res.valid_bg
    right = (np.asarray(rewards_bg) >= 1.0)
    is_ref = np.arange(g)[None, :] == ref[:, None]
    ref_right = right[np.arange(b), ref][:, None]
    decided = ~is_ref & (right != ref_right)        # the verifier tells the rollout and the reference apart
    won = res.reward_bg > 0
    self.last_brpo = {"brpo_kept_queries": float(res.keep_b.mean()), "brpo_inconsistent": res.inconsistent,
                      "brpo_win_rate": float(won[~is_ref].mean()),
                      "judge_invalid": float(np.mean([not p.valid for p in parsed])),
                      "judge_agreement": float((won == right)[decided].mean()) if decided.any() else float("nan")}
    return np.where(valid, res.adv_bg, 0.0).astype(np.float32), valid

  def generation_metrics(self, gens) -> dict:
    return dict(self.last_brpo)

  def evaluate(self, params, problems) -> dict:
    return self.evaluate_with_length(params, problems)
