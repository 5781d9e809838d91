"""Batch filters and length shaping from DAPO (arXiv 2503.14476, Sec. 3.2 and 3.4; ALGORITHMS.md 1.3).

Dimension key: B prompts (groups), G responses per prompt.

Host-side NumPy: these decide which groups to keep or resample and shape rewards, both of which happen
between rollout and the jitted train step. Inputs may be NumPy or JAX arrays (converted with np.asarray).
"""
from __future__ import annotations

import numpy as np


def dynamic_sampling_mask(rewards_bg, correct_bg=None, valid_bg=None) -> np.ndarray:
  """DAPO dynamic sampling (Sec. 3.2): keep groups with 0 < #correct < G. Returns (B,) bool.

  Groups where every response is right (or every one wrong) have zero group advantage and only
  shrink the effective batch. With `correct_bg=None` the criterion is "rewards not all equal" over
  valid responses (verl's std > 0 filter), which also works for shaped or non-binary rewards.
  """
  rewards = np.asarray(rewards_bg, np.float64)
  if rewards.ndim != 2:
    raise ValueError(f"rewards must be (B, G), got shape {rewards.shape}")
  valid = np.ones(rewards.shape, bool) if valid_bg is None else np.asarray(valid_bg, bool)
  if correct_bg is not None:
    correct = np.asarray(correct_bg, bool) & valid
    n_correct, n = correct.sum(axis=1), valid.sum(axis=1)
    return (n_correct > 0) & (n_correct < n)
  hi = np.where(valid, rewards, -np.inf).max(axis=1)
  lo = np.where(valid, rewards, np.inf).min(axis=1)
  return hi > lo


def overlong_filter_mask(truncated_bg) -> np.ndarray:
  """DAPO overlong filtering (Sec. 3.4): loss weight mask (B, G) bool, False for truncated responses.

  Multiply into the token loss mask; a truncated sample's reward says nothing about its reasoning.
  """
  return ~np.asarray(truncated_bg, bool)


def soft_overlong_penalty(lengths, max_len: int, cache_len: int) -> np.ndarray:
  """DAPO soft overlong punishment R_len (Sec. 3.4), added to the task reward. Same shape as `lengths`.

  R_len = 0 if |y| <= L_max - L_cache; ((L_max - L_cache) - |y|) / L_cache if L_max - L_cache < |y| <= L_max;
  -1 if |y| > L_max. Rising linearly from 0 to -1 across the cache window (verl scales it by
  overlong_penalty_factor, 1.0 in the DAPO recipe).
  """
  if not 0 < cache_len <= max_len:
    raise ValueError(f"cache_len must be in (0, max_len={max_len}], got {cache_len}")
  y = np.asarray(lengths, np.float64)
  expected = max_len - cache_len
  pen = np.where(y <= expected, 0.0, (expected - y) / cache_len)
  return np.where(y > max_len, -1.0, pen).astype(np.float32)
