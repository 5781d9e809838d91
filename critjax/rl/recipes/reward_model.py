"""A scalar reward model trained on preference pairs with the Bradley-Terry loss (critjax.rl.losses
'reward_bt'): the scalar-RM baseline of Writing-Zero's comparison (arXiv 2506.00103, ALGORITHMS.md
§7), on BRPO's length-hacking toy (critjax/data/pair_toy.py).

The trained role `policy` is the RM: a decoder with a scalar head (model.scalar_head), typically
the SFT policy's checkpoint (roles.policy.init='checkpoint'; the head starts fresh, zero), read at
the EOS after prompt + response. One supervised phase 'rm' of recipe_args.rm_steps steps: each
step rm_batch_pairs pairs (chosen, rejected) of PairToy.rm_pair on a problem stream apart from the
policy's, the rows alternating chosen / rejected; no RL (train.steps = 0).

Evaluation, on held-out problems, the share of pairs the RM orders as labelled:
  pair_accuracy          confounded pairs like its training data (right and longer over wrong)
  unconfounded_accuracy  right and shorter over wrong and longer (below 0.5: it learned length)
  length_preference      two right answers, the longer one preferred (0.5: length-blind)
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Optional

import numpy as np

from critjax.data.pair_toy import PairToy
from critjax.rl.phases import Phase
from critjax.rl.recipes.base import RECIPES
from critjax.rl.recipes.grpo import GRPO
from critjax.rl.recipes.multi_turn import parse_args
from critjax.rl.recipes.pairwise_grm import toy_task
from critjax.rl.scalar_rm import scalar_batch, score_texts

RM_SEED = 5_003_321          # the RM's pair problems: a stream apart from the policy's


@dataclasses.dataclass(frozen=True)
class RMArgs:
  template: Optional[str] = None    # the policy's prompt template (default: the task's)
  rm_steps: int = 100
  rm_batch_pairs: int = 16

  def __post_init__(self):
    if self.rm_steps < 1 or self.rm_batch_pairs < 1:
      raise ValueError(f"config.recipe_args.rm_steps={self.rm_steps} and rm_batch_pairs={self.rm_batch_pairs} "
                       "must be >= 1")


@RECIPES.register("reward_model")
class RewardModel(GRPO):

  def check_args(self, args: dict):
    self.args = parse_args(RMArgs, dict(args))
    if not self.role_cfgs["policy"].model.scalar_head:
      raise ValueError("config.roles.policy.model.scalar_head must be True: recipe 'reward_model' trains a scalar head")
    if self.cfg.train.steps:
      raise ValueError(f"config.train.steps={self.cfg.train.steps}: recipe 'reward_model' has no RL phase; its "
                       "training is recipe_args.rm_steps")
    self.toy = PairToy(toy_task(self.cfg))

  def phases(self) -> list[Phase]:
    return [Phase("rm", self.args.rm_steps, kind="sft")]

  def references(self) -> list[str]:
    return []

  def rows_per_step(self) -> dict[str, int]:
    return {}

  def supervised_loss_kinds(self, phase: Phase) -> dict[str, str]:
    return {"policy": "reward_bt"} if phase.name == "rm" else {}

  def pairs(self, problems, kind: str = "rm") -> tuple[list[str], list[str]]:
    """(prompts, texts), 2 rows per problem: chosen then rejected, drawn per problem id."""
    make = {"rm": self.toy.rm_pair, "unconfounded": self.toy.unconfounded_pair, "length": self._length_pair}[kind]
    prompts, texts = [], []
    for p in problems:
      a, b = map(int, p.problem.split("+"))
      pair = make(a, b, np.random.default_rng([self.cfg.seed, zlib.crc32(p.id.encode()), zlib.crc32(kind.encode())]))
      prompts += [self.template.first_prompt(p.problem)] * 2
      texts += list(pair)
    return prompts, texts

  def _length_pair(self, a, b, rng):
    f = self.toy.task.filler_max
    n_short = int(rng.integers(0, f))
    return self.toy.response(a, b, True, int(rng.integers(n_short + 1, f + 1)), rng), self.toy.response(a, b, True, n_short, rng)

  def phase_batches(self, phase, k):
    if phase.name != "rm":
      return super().phase_batches(phase, k)
    n = self.args.rm_batch_pairs
    prompts, texts = self.pairs(self.task.problems(self.cfg.seed + RM_SEED, k * n, n))
    return {"policy": scalar_batch(self.tokenizer, prompts, texts, self.capacity(), self.pad_id)}

  def evaluate(self, params, problems) -> dict:
    out = {}
    for kind, key in (("rm", "pair_accuracy"), ("unconfounded", "unconfounded_accuracy"), ("length", "length_preference")):
      prompts, texts = self.pairs(problems, kind)
      r = score_texts(params["policy"], self.model_cfg, self.tokenizer, prompts, texts, self.capacity(), self.pad_id)
      out[key] = float((r[0::2] > r[1::2]).mean())
    return out
