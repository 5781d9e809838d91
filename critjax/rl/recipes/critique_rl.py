"""Critique-RL (Xi et al., arXiv 2510.24320; ALGORITHMS.md §4): a critic trained beside an actor.

Roles: `actor` (frozen during RL) answers; `critic` (trained) writes a step-level critique of the
actor's attempt ending in a verdict; the actor refines its attempt after the critique, greedily
(the paper refines at T = 0). Self-critique is a configuration: `roles.critic.share = "actor"`, and
then the critique continues the actor's own KV cache instead of a transfer.

Episode (critjax.rl.protocols), per prompt: the actor's attempt, forked into K rows, a critique on
each (critic, T = 0.7 in the paper), and in Stage II a greedy refinement on each:
  [prompt][attempt] [critique_instruction][critique] [refine_instruction][refinement]
Rewards (critjax.rl.critique_rewards): Stage I the verdict's discriminability (+-1); Stage II
r_help + 0.2 for a right verdict, -1 otherwise. Advantage RLOO over the K critiques of one attempt;
KL k1 in the per-token reward against the SFT critic (Stage I) and the Stage-I critic (Stage II:
a ResetReference hook when it starts). PPO-clip 0.2, 2 epochs per rollout batch (configs/critique_rl.py).

recipe_args: template (critique_toy | critique_math), stage1_fraction (of train.steps in Stage I,
default 1/3; 0 = Stage II's reward from the start, the paper's "indirect reward only" case; 1 =
Stage I only), r_help (refine | correct | delta), verdict (a parser in critjax.rl.verdicts).

Warm-up (toy): the actor learns the task and to refine after a critique; the critic learns the
critique format from the task's oracle critiques (Task.oracle_critique: every column re-worked and
judged, then the final answer) of attempts that are half right solutions and half task-made slips.
The oracle stands in for the paper's SFT data (critiques written by a stronger model): it gives the
critic the format and a start at judging, on errors that are not the actor's own, so RL has real
errors left to learn from.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Optional

import jax.numpy as jnp
import numpy as np

from critjax.eval.critique_metrics import critique_metrics
from critjax.rl import episodes
from critjax.rl.advantages import ADVANTAGES
from critjax.rl.critique_rewards import HELP_REWARDS, discrimination_reward, helpfulness_reward, verdict_right
from critjax.rl.phases import Phase, ResetReference
from critjax.rl.protocols import Turn
from critjax.rl.recipes.base import RECIPES, Collected, Recipe
from critjax.rl.recipes.multi_turn import parse_args
from critjax.rl.verdicts import VERDICTS

ATTEMPT, CRITIQUE, REFINE = 0, 1, 2   # turn indices of the episode
WARMUP_FLAWED = 0.5                   # share of warm-up attempts that are task-made slips


@dataclasses.dataclass(frozen=True)
class CritiqueRLArgs:
  template: Optional[str] = None
  stage1_fraction: float = 1 / 3
  r_help: str = "refine"
  verdict: str = "step_level"
  # Which task-made errors the warm-up's flawed attempts carry: "slip" (Task.flawed_solution: a
  # dropped carry or a sum off by one) or "slip+misread" (half of them a misread operand digit,
  # ArithmeticTask.misread_solution, the error the tiny actor makes most).
  warmup_slips: str = "slip"

  def __post_init__(self):
    if self.warmup_slips not in ("slip", "slip+misread"):
      raise ValueError(f"config.recipe_args.warmup_slips must be 'slip' or 'slip+misread', got {self.warmup_slips!r}")
    if not 0.0 <= self.stage1_fraction <= 1.0:
      raise ValueError(f"config.recipe_args.stage1_fraction must be in [0, 1], got {self.stage1_fraction}")
    if self.r_help not in HELP_REWARDS:
      raise ValueError(f"config.recipe_args.r_help={self.r_help!r}; expected one of {HELP_REWARDS.names()}")
    if self.verdict not in VERDICTS:
      raise ValueError(f"config.recipe_args.verdict={self.verdict!r}; expected one of {VERDICTS.names()}")


@RECIPES.register("critique_rl")
class CritiqueRL(Recipe):
  roles = {"actor": "any", "critic": "trained"}
  turns = 3

  def check_args(self, args: dict):
    self.args = parse_args(CritiqueRLArgs, dict(args))
    self.parse = VERDICTS.get(self.args.verdict)

  @property
  def critic(self) -> str:
    """The critic's parameter owner: 'critic', or 'actor' for self-critique."""
    return self.role_cfgs["critic"].share or "critic"

  def trained_roles(self) -> list[str]:
    return [self.critic]

  def references(self) -> list[str]:
    return [self.critic] if self.cfg.rl.loss.kl_coef > 0 else []

  # --- protocol ----------------------------------------------------------------------------------
  def critique_ids(self) -> list[int]:
    return self.context_ids(self.template.critique_prompt())

  def refine_ids(self) -> list[int]:
    return self.context_ids(self.template.refine_prompt())

  def capacity(self) -> int:
    r, roles = self.cfg.rollout, self.cfg.role_configs()
    new = lambda name: roles[name].max_new_tokens or r.max_new_tokens
    # context lengths are not known before the tokenizer exists: budget them from the template text
    ctx = lambda text: len(self.tokenizer.encode(text)) + 8
    return (r.max_prompt_len + new("actor") + ctx(self.template.critique_prompt()) + new("critic")
            + ctx(self.template.refine_prompt()) + new("actor"))

  def protocol(self, k: int, refine: bool) -> tuple:
    turns = (Turn("actor"), Turn("critic", self.critique_ids(), fork=k))
    return turns + ((Turn("actor", self.refine_ids(), greedy=True),) if refine else ())

  def phases(self) -> list[Phase]:
    total = self.cfg.train.steps
    n1 = int(round(total * self.args.stage1_fraction))
    # Stage II's KL reference is the Stage-I critic (Critique-RL Fig. 2); Stage I's is the SFT
    # critic, which the loop makes the reference when RL starts.
    stage2_hooks = (ResetReference(self.critic),) if (n1 and self.cfg.rl.loss.kl_coef > 0) else ()
    phases = [Phase("stage1", n1, {"stage": 1}), Phase("stage2", total - n1, {"stage": 2}, on_start=stage2_hooks)]
    return [p for p in phases if p.steps > 0]

  def _judge(self, ep, refine: bool) -> dict:
    """Oracle labels and parsed verdicts of an episode's rows."""
    attempts = ep.texts(ATTEMPT)
    verdicts = [self.parse(t) for t in ep.texts(CRITIQUE)]
    out = {"attempt": self.task.score(ep.problems, attempts) > 0,
           "final": np.array([v.final for v in verdicts], dtype=object),
           "pred_step": np.array([v.first_wrong_step for v in verdicts]),
           "true_step": [self.task.first_wrong_step(p, a) for p, a in zip(ep.problems, attempts)]}
    if refine:
      out["refined"] = self.task.score(ep.problems, ep.texts(REFINE)) > 0
    return out

  # --- RL ----------------------------------------------------------------------------------------
  def collect(self, params, problems, rng, refill=None) -> Collected:
    k = self.cfg.rollout.group_size
    stage = self.phase.args.get("stage", 2)
    ep = self.episode(self.protocol(k, refine=stage == 2), params, problems, rng)
    j = self._judge(ep, refine=stage == 2)
    if stage == 1:
      rewards = discrimination_reward(j["attempt"], j["final"])
    else:
      rewards = helpfulness_reward(j["attempt"], j["final"], j["refined"], self.args.r_help)
    adv = np.asarray(ADVANTAGES.get(self.cfg.rl.advantage)(jnp.asarray(rewards.reshape(-1, k)))).reshape(-1)
    n_turns = len(ep.turn_roles)
    adv_turns = np.zeros((ep.rows, n_turns), np.float32)
    adv_turns[:, CRITIQUE] = adv
    batch = episodes.policy_batch(ep.rollout, adv_turns, trained_turns=[CRITIQUE])
    lengths = ep.lengths()
    metrics = {"reward_mean": float(rewards.mean()), "stage": stage,
               "accuracy": float(j["attempt"].mean()),
               "verdict_acc": float(verdict_right(j["attempt"], j["final"]).mean()),
               "verdict_missing": float(np.mean([v is None for v in j["final"]])),
               "critique_length": float(lengths[:, CRITIQUE].mean()),
               "generated_tokens": int(lengths[::k, ATTEMPT].sum() + lengths[:, 1:].sum())}
    if stage == 2:
      wrong = ~j["attempt"]
      metrics.update(acc_after=float(j["refined"].mean()),
                     helpfulness=float(j["refined"][wrong].mean()) if wrong.any() else float("nan"))
    return Collected(batches={self.critic: batch}, metrics=metrics, group_rows=k)

  def evaluate(self, params, problems) -> dict:
    """Greedy attempt, critique and refinement on every problem: discriminability, helpfulness and
    accuracy after critique (critjax.eval.critique_metrics)."""
    ep = self.episode(self.protocol(1, refine=True), params, problems, self.eval_rng, greedy=True)
    j = self._judge(ep, refine=True)
    steps = None if any(s is None for s in j["true_step"]) else np.array(j["true_step"])
    out = critique_metrics(j["attempt"], j["final"], j["refined"], steps, None if steps is None else j["pred_step"])
    out["n"] = len(problems)
    return out

  # --- supervised warm-up ------------------------------------------------------------------------
  def warmup_batches(self, problems) -> dict:
    """Actor: the worked solution, and refinement episodes [prompt][attempt][critique prompt][oracle
    critique][refine prompt][solution] (loss on the solution, and on a right attempt); critic:
    [prompt][attempt][critique prompt] -> the oracle critique. Attempts: a right solution or, with
    probability WARMUP_FLAWED, a task-made slip. Roles whose parameters are shared or frozen get none."""
    rng = np.random.default_rng([self.cfg.seed, zlib.crc32(problems[0].id.encode())])
    crit_ids, ref_ids, cap = self.critique_ids(), self.refine_ids(), self.capacity()
    actor_rows, critic_rows = [], []
    for p in problems:
      text = self.template.first_prompt(p.problem)
      prompt = self.tokenizer.encode(text)
      attempt = p.solution
      if rng.random() < WARMUP_FLAWED:
        attempt = self._flawed(p, rng)
      critique = self.task.oracle_critique(p, attempt)
      if critique is None:
        raise ValueError(f"critique_rl warm-up needs Task.oracle_critique; task {self.cfg.task.name!r} has none")
      att = episodes.completion_ids(self.tokenizer, text, prompt, attempt)
      crit = self.tokenizer.encode(critique) + [self.tokenizer.eos_id]
      sol = episodes.completion_ids(self.tokenizer, text, prompt, p.solution)
      head = list(prompt) + att + crit_ids
      critic_rows.append((head + crit, [(len(head), len(head) + len(crit))]))
      refine_at = len(head) + len(crit) + len(ref_ids)
      spans = [(refine_at, refine_at + len(sol))]
      if attempt == p.solution:
        spans.append((len(prompt), len(prompt) + len(att)))
      actor_rows.append((head + crit + ref_ids + sol, spans))
    out = {"critic": _rows_batch(critic_rows, cap, self.pad_id)}
    if self.role_cfgs["critic"].share is None and self.role_cfgs["actor"].trained:
      out["actor"] = _rows_batch(actor_rows, cap, self.pad_id)
    elif self.role_cfgs["critic"].share is not None:      # self-critique: one model learns both parts
      out = {"actor": _rows_batch(actor_rows + critic_rows, cap, self.pad_id, n=len(problems))}
    if not self.role_cfgs["critic"].trained:
      out.pop("critic", None)
    return out


  def _flawed(self, p, rng) -> str:
    if self.args.warmup_slips == "slip+misread" and rng.random() < 0.5:
      gen = getattr(self.task, "gen", None)
      if gen is None:
        raise ValueError("recipe_args.warmup_slips='slip+misread' needs the arithmetic task")
      return gen.misread_solution(*map(int, p.problem.split("+")), rng)
    return self.task.flawed_solution(p, rng) or p.solution


def _rows_batch(rows: list, cap: int, pad_id: int, n: Optional[int] = None) -> dict:
  """(ids, loss spans) rows -> an nll batch trimmed to a bucketed length; `n` rows drawn evenly when given."""
  if n is not None:
    rows = rows[::max(1, len(rows) // n)][:n]
  length = episodes.bucket(max(len(ids) for ids, _ in rows), cap)
  tokens = np.full((len(rows), length), pad_id, np.int32)
  mask = np.zeros((len(rows), length), np.float32)
  for i, (ids, spans) in enumerate(rows):
    if len(ids) > cap:
      raise ValueError(f"a warm-up episode of {len(ids)} tokens exceeds the episode capacity {cap} "
                       "(rollout.max_prompt_len + 2 x the actor's max_new_tokens + the critic's + instructions): "
                       "raise rollout.max_new_tokens or roles.critic.max_new_tokens")
    tokens[i, :len(ids)] = ids
    for a, b in spans:
      mask[i, a:b] = 1.0
  return {"tokens": tokens, "mask": mask}
