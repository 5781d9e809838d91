"""Offline preference pairs for the DPO-style recipes (loss 'dpo'): checked once when a stage's data
is built, then read a fixed number per step.

A pair record is {'id', 'prompt', 'chosen', 'rejected'} as text (+ whatever the recipe logs), or
{'id', 'prompt_ids', 'chosen_ids', 'rejected_ids'} as token ids when the prompt is an episode's
tokens (a critique's context: the question, the actor's attempt, the critique instruction), whose
text would not re-encode to the same ids; id responses carry their own EOS. Built data is
checked before it is written, so a bad stage stops at its start, never inside an update:
  - a pair whose chosen and rejected are identical carries no preference: dropped and counted;
  - a pair longer than the context (prompt + response + EOS over the batch length) is refused,
    naming the record, its id and its length;
  - a stage left with no pair is refused, naming the stage and the recipe's reason.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from critjax.rl import episodes


def finalize(stage: str, records: list[dict], tokenizer, max_len: int, why_empty: str) -> tuple[list[dict], int]:
  """(the records without identical pairs, how many were dropped); raises on an over-long or
  missing pair (module docstring). `why_empty`: the sentence an empty stage's error ends with."""
  same = lambda r: (r["chosen_ids"] == r["rejected_ids"]) if "prompt_ids" in r else (r["chosen"] == r["rejected"])
  kept = [r for r in records if not same(r)]
  dropped = len(records) - len(kept)
  if dropped:
    logging.info("%s: %d pair(s) with identical chosen and rejected dropped", stage, dropped)
  if not kept:
    raise ValueError(f"{stage}: no preference pair to train on ({len(records)} built, {dropped} identical "
                     f"dropped): {why_empty}")
  for i, r in enumerate(kept):
    for side, n in _lengths(tokenizer, r).items():
      if n > max_len:
        raise ValueError(f"{stage}: pair {i} (id {r.get('id')!r}) has a {side} sequence of {n} tokens (prompt + "
                         f"response + EOS) > the {max_len}-token context (rollout.max_prompt_len + "
                         f"max_new_tokens); raise them or shorten the responses")
  return kept, dropped


def _lengths(tokenizer, r: dict) -> dict[str, int]:
  if "prompt_ids" in r:
    return {side: len(r["prompt_ids"]) + len(r[f"{side}_ids"]) for side in ("chosen", "rejected")}
  p_ids = tokenizer.encode(r["prompt"])
  return {side: len(p_ids) + len(episodes.completion_ids(tokenizer, r["prompt"], p_ids, r[side]))
          for side in ("chosen", "rejected")}


def step_records(records: Sequence[dict], phase_step: int, n: int) -> list[dict]:
  """The n pairs of a phase's step `phase_step`: records in file order from step 0, cycling, so a
  resumed run reads what an uninterrupted one would."""
  return [records[(phase_step * n + j) % len(records)] for j in range(n)]


def batch(tokenizer, records: Sequence[dict], max_len: int, pad_id: int) -> dict:
  """The pairs as loss 'dpo' rows: 2i chosen, 2i+1 rejected (episodes.pair_batch's layout), from
  text or from id records."""
  if "prompt_ids" not in records[0]:
    return episodes.pair_batch(tokenizer, [r["prompt"] for r in records], [r["chosen"] for r in records],
                               [r["rejected"] for r in records], max_len, pad_id=pad_id)
  tokens = np.full((2 * len(records), max_len), pad_id, np.int32)
  mask = np.zeros((2 * len(records), max_len), np.float32)
  for i, r in enumerate(records):
    for j, side in enumerate(("chosen", "rejected")):
      p, y = list(r["prompt_ids"]), list(r[f"{side}_ids"])
      tokens[2 * i + j, :len(p) + len(y)] = p + y
      mask[2 * i + j, len(p):len(p) + len(y)] = 1.0
  return {"tokens": tokens, "mask": mask}
