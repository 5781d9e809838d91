"""The self-correction baselines of SCoRe's tables, on the same rollout parts and budget.

  star      STaR-style filtered SFT (Zelikman et al. 2022, as SCoRe's D+_StaR): roll out two attempts
            with the current model, keep episodes whose last attempt is correct, fine-tune on that
            attempt given the context. Online (re-sampled every step) rather than one offline pass:
            the toy budget is steps, and the online form is the stronger baseline.
  pair_sft  Pair-SFT (Welleck et al. 2023, as SCoRe's D_SFT): sample single attempts, pair a wrong
            attempt with a correct one for the same problem, fine-tune on
            [prompt][wrong][instruction][correct] with the loss on the correct attempt only.
Single-turn RL is the 'grpo' recipe; the prompted baselines (base, Self-Refine) need no training
and are evaluation modes (critjax.eval.correction_protocols).
"""
from __future__ import annotations

import numpy as np

from critjax.rl import episodes
from critjax.rl.recipes.base import RECIPES, Collected
from critjax.rl.recipes.score import MultiTurn


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
class STaR(MultiTurn):
  loss_kind = "nll"

  def needs_reference(self) -> bool:
    return False

  def collect(self, params, problems, rng) -> Collected:
    g = self.cfg.rollout.group_size
    ro, correct, _ = self.attempts(self.sampler, params, problems, rng, g)
    keep = correct[:, -1] > 0
    last = self.turns - 1
    batch = episodes.policy_batch(ro, np.zeros((len(keep), self.turns), np.float32), row_valid_n=keep,
                                  trained_turns=[last])
    metrics = {"accuracy": float(correct[:, -1].mean()), "accuracy_t1": float(correct[:, 0].mean()),
               "kept_frac": float(keep.mean()), "generated_tokens": int(episodes.turn_lengths(ro, self.turns).sum())}
    return Collected(batch={"tokens": batch["tokens"], "mask": batch["mask"]}, metrics=metrics)


@RECIPES.register("pair_sft")
class PairSFT(MultiTurn):
  loss_kind = "nll"

  def needs_reference(self) -> bool:
    return False

  def collect(self, params, problems, rng) -> Collected:
    g = self.cfg.rollout.group_size
    ro = self.start(params, problems, g)
    ro = self.sampler.decode(params, ro, rng, segment_id=0)
    texts = episodes.turn_texts(self.tokenizer, ro, 0)
    rep = [p for p in problems for _ in range(g)]
    correct = self.task.score(rep, texts).reshape(-1, g) > 0
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
    return Collected(batch=batch, metrics=metrics)
