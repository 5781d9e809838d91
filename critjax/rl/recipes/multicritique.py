"""MultiCritique's RL stage (Lan et al., arXiv 2410.15287; ALGORITHMS.md §12): preference
optimisation of a critic on pairs of its own critiques, ranked by whether the revision each one
leads to is right.

The paper's SFT stage (critiques of several strong agents, aggregated by a meta-critique) needs
agents this repository does not have; on the toy the critic's warm-up on the task's oracle
critiques stands in for it, as for Critique-RL (recipes/critique_rl.py, whose roles, episode,
warm-up and evaluation this recipe reuses). The RL stage:

  phase 'rl' (recipe_args.dpo_steps DPO steps on the critic). At its start (BuildData 'mcrit') the
  episode of critique_rl's Stage II runs on `pool` fresh problems: the actor's attempt, K =
  rollout.group_size critiques of it (the critic at its temperature), the actor's greedy revision
  after each. Per attempt, chosen = a critique whose revision is right, rejected = one whose
  revision is wrong, paired in sample order, at most `max_pairs` per attempt; an attempt whose
  revisions are all right or all wrong gives none. The paper's "validated by whether they lead to
  better multi-agent revisions" is read as a right revision by the actor of this run (its
  preference algorithm is UNVERIFIED in the spec: DPO, rl.loss.dpo_beta / rpo_alpha, reference =
  the critic at the stage's start). Pairs are token-id records: the critique's context is the
  episode's own tokens (question, attempt, critique instruction).

Evaluation as critique_rl: greedy attempt, critique, revision; discriminability, helpfulness,
accuracy after critique.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Optional

import jax
import numpy as np

from critjax.rl import pairs
from critjax.rl.phases import BuildData, Phase, ResetReference
from critjax.rl.recipes.base import RECIPES, Collected
from critjax.rl.recipes.critique_rl import CRITIQUE, CritiqueRL
from critjax.rl.recipes.multi_turn import parse_args
from critjax.rl.verdicts import VERDICTS

MCRIT_SEED = 6_301_007        # the stage's problems: a stream apart from the warm-up's and the held-out ones
DATA = "mcrit"


@dataclasses.dataclass(frozen=True)
class MultiCritiqueArgs:
  template: Optional[str] = None
  verdict: str = "step_level"
  warmup_slips: str = "slip"        # the warm-up's flawed attempts (recipes/critique_rl.py)
  pool: int = 128                   # problems whose critiques are sampled
  max_pairs: int = 2                # per attempt
  dpo_steps: int = 40
  pairs_per_step: int = 16

  def __post_init__(self):
    if self.verdict not in VERDICTS:
      raise ValueError(f"config.recipe_args.verdict={self.verdict!r}; expected one of {VERDICTS.names()}")
    if self.warmup_slips not in ("slip", "slip+misread"):
      raise ValueError(f"config.recipe_args.warmup_slips must be 'slip' or 'slip+misread', got {self.warmup_slips!r}")
    if min(self.pool, self.max_pairs, self.dpo_steps, self.pairs_per_step) < 1:
      raise ValueError("config.recipe_args.pool, max_pairs, dpo_steps and pairs_per_step must be >= 1; got "
                       f"{self.pool} / {self.max_pairs} / {self.dpo_steps} / {self.pairs_per_step}")


def rank_pairs(revised_right, max_pairs: int) -> list[tuple[int, int]]:
  """(chosen, rejected) indices among one attempt's K critiques: those whose revision is right
  against those whose revision is wrong, zipped in sample order (module docstring)."""
  ok = np.asarray(revised_right, bool)
  return list(zip(np.nonzero(ok)[0].tolist(), np.nonzero(~ok)[0].tolist()))[:max_pairs]


@RECIPES.register("multicritique")
class MultiCritique(CritiqueRL):
  loss_kind = "dpo"

  def check_args(self, args: dict):
    self.args = parse_args(MultiCritiqueArgs, dict(args))
    self.parse = VERDICTS.get(self.args.verdict)
    if self.cfg.train.steps:
      raise ValueError(f"config.train.steps={self.cfg.train.steps}: recipe 'multicritique' trains "
                       "recipe_args.dpo_steps steps; set train.steps=0")
    if self.cfg.rollout.group_size < 2:
      raise ValueError(f"config.rollout.group_size={self.cfg.rollout.group_size}: K >= 2 critiques per attempt "
                       "are needed to rank them")

  def phases(self) -> list[Phase]:
    return [Phase("rl", self.args.dpo_steps, args={"data": DATA},
                  on_start=(ResetReference(self.critic), BuildData(self.critic, DATA)))]

  def references(self) -> list[str]:
    return [self.critic]              # DPO's reference, whatever rl.loss.kl_coef says

  def rows_per_step(self) -> dict[str, int]:
    return {self.critic: 2 * self.args.pairs_per_step}

  def build_data(self, name, params, rng) -> list[dict]:
    if name != DATA:
      return super().build_data(name, params, rng)
    a, k = self.args, self.cfg.rollout.group_size
    problems = self.task.problems(self.cfg.seed + MCRIT_SEED, 0, a.pool)
    chunk = max(1, self.cfg.rollout.prompts_per_step)
    out, helped, attempts = [], 0, 0
    for i in range(0, len(problems), chunk):
      part = problems[i:i + chunk]
      ep = self.episode(self.protocol(k, refine=True), params, part, jax.random.fold_in(rng, i))
      refined = self.task.score(ep.problems, ep.texts(2)) > 0
      tokens, segment = np.asarray(ep.rollout.tokens), np.asarray(ep.rollout.segment)
      for j, p in enumerate(part):
        attempts += 1
        rows = range(j * k, (j + 1) * k)
        helped += int(refined[list(rows)].any())
        for c, r in rank_pairs(refined[j * k:(j + 1) * k], a.max_pairs):
          ids = {}
          for side, row in (("chosen", j * k + c), ("rejected", j * k + r)):
            at = np.nonzero(segment[row] == CRITIQUE)[0]
            ids[side] = tokens[row, at].tolist()
            ids["prompt"] = tokens[row, :at[0]].tolist()   # the same for every critique of the attempt
          out.append({"id": p.id, "prompt_ids": ids["prompt"], "chosen_ids": ids["chosen"],
                      "rejected_ids": ids["rejected"]})
    logging.info("multicritique %s: %d pairs from %d attempts x %d critiques (%d attempts with a right revision)",
                 name, len(out), attempts, k, helped)
    out, _ = pairs.finalize(f"multicritique {name}", out, self.tokenizer, self.capacity(),
                            f"in {attempts} attempts x {k} critiques no attempt had both a right and a wrong "
                            "revision")
    return out

  def collect(self, params, problems, rng, refill=None) -> Collected:
    rows = self.data[self.phase.args["data"]]
    part = pairs.step_records(rows, self.phase_step, self.args.pairs_per_step)
    return Collected(batches={self.critic: pairs.batch(self.tokenizer, part, self.capacity(), self.pad_id)},
                     metrics={"pairs": len(rows)}, group_rows=2)
