"""From rollouts to training batches: prompt encoding, completions text, and per-token arrays.

Dimension key: B prompts, G samples per prompt, N = B * G rows, S sampler capacity, L trimmed length.

The sampler's `Rollout` already is the episode: tokens in order, who wrote each (`segment`: -1
context, k the k-th generated turn) and behaviour log-probs. A recipe adds per-turn rewards and
advantages; `policy_batch` turns that into the (N, L) arrays the update consumes.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from critjax.sampling.sampler import Rollout

LENGTH_BUCKET = 16  # batches are trimmed to a multiple of this, so few distinct shapes get compiled


def encode_prompts(encode, texts: Sequence[str], max_len: int, ids: Optional[Sequence[str]] = None, *,
                   pad_id: int = 0):
  """Right-padded (B, max_len) int32 prompt ids and (B,) lengths; raises naming an over-long prompt.

  `encode`: text -> ids (a tokenizer's encode, or a recipe's chat-template rendering)."""
  rows = [encode(t) for t in texts]
  for i, r in enumerate(rows):
    if len(r) > max_len or not r:
      name = ids[i] if ids is not None else i
      raise ValueError(f"prompt of problem {name} has {len(r)} tokens; rollout.max_prompt_len is {max_len}")
  out = np.full((len(rows), max_len), pad_id, np.int32)
  for i, r in enumerate(rows):
    out[i, :len(r)] = r
  return out, np.array([len(r) for r in rows], np.int32)


def turn_texts(tokenizer, ro: Rollout, turn: int) -> list[str]:
  """Decoded text of generated turn `turn` for every row (EOS and padding dropped)."""
  tokens, segment = np.asarray(ro.tokens), np.asarray(ro.segment)
  out = []
  for i in range(tokens.shape[0]):
    ids = tokens[i][segment[i] == turn]
    out.append(tokenizer.decode([int(t) for t in ids if t != tokenizer.eos_id], skip_special_tokens=True))
  return out


def turn_lengths(ro: Rollout, n_turns: int) -> np.ndarray:
  """(N, K) number of generated tokens per turn."""
  segment = np.asarray(ro.segment)
  return np.stack([(segment == k).sum(axis=1) for k in range(n_turns)], axis=1)


def bucket(longest: int, cap: int) -> int:
  """Round a length up to a multiple of LENGTH_BUCKET, at most `cap`."""
  return min(cap, -(-max(longest, 1) // LENGTH_BUCKET) * LENGTH_BUCKET)


def trimmed_length(ro: Rollout) -> int:
  return bucket(int(np.max(np.asarray(ro.length))), ro.tokens.shape[1])


def policy_batch(ro: Rollout, adv_turn_nk: np.ndarray, *, row_valid_n: Optional[np.ndarray] = None,
                 kl_coef_turn: Optional[Sequence[float]] = None, trained_turns: Optional[Sequence[int]] = None):
  """Per-token arrays for the policy-gradient update, trimmed to L.

  adv_turn_nk: (N, K) advantage of each generated turn; every token of turn k gets adv[:, k].
  kl_coef_turn: optional per-turn beta (SCoRe stage I: large on turn 1), giving `kl_coef` (N, L).
  trained_turns: turns whose tokens enter the loss (default all K).
  """
  length = trimmed_length(ro)
  tokens = np.asarray(ro.tokens)[:, :length]
  segment = np.asarray(ro.segment)[:, :length]
  n, k = adv_turn_nk.shape
  turns = range(k) if trained_turns is None else trained_turns
  mask = np.isin(segment, list(turns))
  if row_valid_n is not None:
    mask &= row_valid_n[:, None]
  seg = np.clip(segment, 0, k - 1)
  adv = np.where(mask, np.take_along_axis(adv_turn_nk.astype(np.float32), seg, axis=1), 0.0)
  batch = {"tokens": tokens.astype(np.int32), "mask": mask.astype(np.float32), "adv": adv.astype(np.float32),
           "old_logp": np.asarray(ro.logp)[:, :length].astype(np.float32)}
  if kl_coef_turn is not None:
    betas = np.asarray(kl_coef_turn, np.float32)
    batch["kl_coef"] = np.where(segment >= 0, betas[seg], 0.0).astype(np.float32)
  return batch


def completion_ids(tokenizer, prompt: str, prompt_ids: Sequence[int], completion: str) -> list[int]:
  """A completion's ids + EOS, encoded together with its prompt (as the model reads it), unless the
  tokenization across the boundary changes the prompt's ids; then encoded on its own."""
  full = tokenizer.encode(prompt + completion)
  ids = full[len(prompt_ids):] if full[:len(prompt_ids)] == list(prompt_ids) else tokenizer.encode(completion)
  return ids + [tokenizer.eos_id]


def sft_batch(tokenizer, prompts: Sequence[str], completions: Sequence[str], max_len: int, *, pad_id: int = 0):
  """Supervised batch: tokens of prompt + completion + EOS, loss on the completion and EOS only."""
  n = len(prompts)
  tokens = np.full((n, max_len), pad_id, np.int32)
  mask = np.zeros((n, max_len), np.float32)
  for i, (p, c) in enumerate(zip(prompts, completions)):
    p_ids = tokenizer.encode(p)
    full = p_ids + completion_ids(tokenizer, p, p_ids, c)
    if len(full) > max_len:
      raise ValueError(f"supervised example {i} has {len(full)} tokens > {max_len}")
    tokens[i, :len(full)] = full
    mask[i, len(p_ids):len(full)] = 1.0
  return {"tokens": tokens, "mask": mask}


def pair_batch(tokenizer, prompts: Sequence[str], chosen: Sequence[str], rejected: Sequence[str], max_len: int, *,
               pad_id: int = 0) -> dict:
  """Preference pairs for loss 'dpo' / 'reward_bt': rows 2i (prompt i + chosen i) and 2i+1 (prompt i +
  rejected i), tokens (2P, T) and mask (2P, T) on each response and its EOS (sft_batch's layout)."""
  if not len(prompts) == len(chosen) == len(rejected):
    raise ValueError(f"pair_batch: {len(prompts)} prompts, {len(chosen)} chosen, {len(rejected)} rejected")
  rows_p = [p for p in prompts for _ in range(2)]
  rows_c = [x for pair in zip(chosen, rejected) for x in pair]
  return sft_batch(tokenizer, rows_p, rows_c, max_len, pad_id=pad_id)


