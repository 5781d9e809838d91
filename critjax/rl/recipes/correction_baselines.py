"""The self-correction baselines of SCoRe's tables, on the same rollout parts and budget.

  star      STaR-style filtered SFT (Zelikman et al. 2022, as SCoRe's D+_StaR): roll out two attempts,
            keep episodes whose last attempt is correct, fine-tune on that attempt given the context.
  pair_sft  Pair-SFT (Welleck et al. 2023, as SCoRe's D_SFT): sample single attempts, pair a wrong
            attempt with a correct one for the same problem, fine-tune on
            [prompt][wrong][instruction][correct] with the loss on the correct attempt only.
recipe_args.data picks where the episodes come from: 'online' (default; the current model, re-sampled
every step) or 'base' (the frozen starting model, as in the paper, whose SFT data is generated once
by the base model). Fresh base samples every step are one pass over an offline dataset of the same
size (steps x prompts x samples), so both forms see the same number of episodes.
Single-turn RL is the 'grpo' recipe; the prompted baselines (base, Self-Refine) need no training
and are evaluation modes (critjax.eval.correction_protocols).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from critjax.rl import episodes
from critjax.rl.phases import Phase, Snapshot
from critjax.rl.recipes.base import RECIPES, Collected
from critjax.rl.recipes.multi_turn import MultiTurn
from critjax.rl.score_rewards import validate_score_hparams

DATA_SOURCES = ("online", "base")


@dataclasses.dataclass(frozen=True)
class BaselineArgs:
  template: Optional[str] = None
  attempts: int = 2
  data: str = "online"

  def __post_init__(self):
    try:
      validate_score_hparams(num_attempts=self.attempts)      # the same K check as SCoRe's
    except ValueError as e:
      raise ValueError(f"config.recipe_args.{e}") from None
    if self.data not in DATA_SOURCES:
      raise ValueError(f"config.recipe_args.data must be one of {DATA_SOURCES}, got {self.data!r}")


class FilteredSFT(MultiTurn):
  """Shared by the SFT baselines: NLL loss, no KL, episodes from the policy or from `base`, a frozen
  snapshot of the policy taken when RL starts (the warm-up model)."""
  args_cls = BaselineArgs
  loss_kind = "nll"

  def references(self) -> list[str]:
    return []

  def phases(self) -> list[Phase]:
    hooks = (Snapshot("policy", "base"),) if self.args.data == "base" else ()
    return [Phase("rl", self.cfg.train.steps, on_start=hooks)]

  @property
  def source(self) -> str:
    """The role whose samples become SFT data."""
    return "base" if self.args.data == "base" else "policy"


def _nll_rows(rows: list[tuple[list[int], int]], n_rows: int, length: int, pad_id: int) -> dict:
  """(token ids, index where the loss starts) rows -> fixed-shape nll batch (N, L), unused rows masked."""
  tokens = np.full((n_rows, length), pad_id, np.int32)
  mask = np.zeros((n_rows, length), np.float32)
  for i, (ids, loss_from) in enumerate(rows[:n_rows]):
    ids = ids[:length]
    tokens[i, :len(ids)] = ids
    mask[i, loss_from:len(ids)] = 1.0
  return {"tokens": tokens, "mask": mask}


@RECIPES.register("star")
class STaR(FilteredSFT):
  def collect(self, params, problems, rng, refill=None) -> Collected:
    g = self.cfg.rollout.group_size
    ro, correct, _ = self.attempts(params, problems, rng, g, role=self.source)
    keep = correct[:, -1] > 0
    last = self.turns - 1
    batch = episodes.policy_batch(ro, np.zeros((len(keep), self.turns), np.float32), row_valid_n=keep,
                                  trained_turns=[last])
    metrics = {"accuracy": float(correct[:, -1].mean()), "accuracy_t1": float(correct[:, 0].mean()),
               "kept_frac": float(keep.mean()), "generated_tokens": int(episodes.turn_lengths(ro, self.turns).sum())}
    return Collected(batches={"policy": {"tokens": batch["tokens"], "mask": batch["mask"]}}, metrics=metrics,
                     group_rows=g)


@RECIPES.register("pair_sft")
class PairSFT(FilteredSFT):
  def collect(self, params, problems, rng, refill=None) -> Collected:
    g = self.cfg.rollout.group_size
    ro, first, _ = self.attempts(params, problems, rng, g, turns=1, role=self.source)
    rep = [p for p in problems for _ in range(g)]
    correct = first[:, 0].reshape(-1, g) > 0
    tokens, segment, length = np.asarray(ro.tokens), np.asarray(ro.segment), np.asarray(ro.length)
    instr = self.instruction_ids()
    rows = []
    for b in range(len(problems)):
      wrong = [b * g + i for i in range(g) if not correct[b, i]]
      right = [b * g + i for i in range(g) if correct[b, i]]
      for j, w in enumerate(wrong[:len(right)]):
        c = right[j]
        prefix = list(tokens[w, :length[w]]) + instr           # prompt + wrong attempt (+EOS) + instruction
        rows.append((prefix + list(tokens[c][segment[c] == 0]), len(prefix)))
    cap = self.capacity()
    batch = _nll_rows(rows, len(rep), episodes.bucket(max((len(r[0]) for r in rows), default=1), cap),
                      self.pad_id)
    metrics = {"accuracy": float(correct.mean()), "pairs": len(rows),
               "generated_tokens": int(episodes.turn_lengths(ro, 1).sum())}
    return Collected(batches={"policy": batch}, metrics=metrics)
