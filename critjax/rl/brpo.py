"""Pairwise generative judging on the host: BRPO's bootstrapped rewards and the pairwise GenRM's own
reward and position bias (Writing-Zero, arXiv 2506.00103, §7.1-7.2 of ALGORITHMS.md).

Dimension key: B queries, G rollouts per query, P judged pairs.

A pairwise judgment is one GRM trajectory over two responses shown in an order, ending in the
scores block of critjax.rl.grm_scores (`Scores: [[s1, s2]]`, integers 1-10; the paper's judge writes
floats in [0, 10], ours keeps SPCT's integer scale so one parser serves both judges). Response 1
wins when s1 > s2; a tie or an invalid judgment is a win for neither.

BRPO (§7.2). Per query, one rollout is drawn uniformly as the temporary reference o_ref; every
other rollout o_i is judged against it in both orders, (o_i, o_ref) and (o_ref, o_i):
  r_i = +1 if o_i wins under both orders, else -1;   A_i = r_i (no normalisation);
  the query is dropped when |sum_{i != ref} r_i| / G > 0.6 (the reference is an outlier).
What the paper leaves open, and our choice:
  - the reference rollout itself: r = 0, A = 0 and it is masked out of the loss. It was not judged
    against anything, so any reward for it would be invented; the loss's token normaliser then
    counts only the G - 1 judged rollouts.
  - inconsistent votes (o_i wins in one order and loses or ties in the other): -1. This is the
    literal "beats o_ref under all voting conditions, else -1", and it means a judge's position
    bias can only take reward away, never hand out a +1.
  - the filter divides by G (the paper's formula) though only G - 1 rollouts carry a reward.

The pairwise GenRM's own reward (§7.1; the paper's weights and margin term are UNVERIFIED, so
only its two named parts): +1 when the judgment is valid and scores the preferred response strictly
higher, 0 when valid but not, -1 when invalid (missing, duplicated, wrongly counted or out-of-range
scores): preference accuracy plus a format term.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from critjax.rl.grm_scores import GRMScores

DROP_THRESHOLD = 0.6          # Writing-Zero's dynamic filter on |sum r| / G


def first_wins(parsed: Sequence[GRMScores]) -> np.ndarray:
  """(P,) bool: the judgment is valid and scores Response 1 strictly above Response 2."""
  out = np.zeros(len(parsed), bool)
  for i, p in enumerate(parsed):
    if p.valid:
      if len(p.scores) != 2:
        raise ValueError(f"pairwise judgment {i} holds {len(p.scores)} scores; a pairwise judge scores 2")
      out[i] = p.scores[0] > p.scores[1]
  return out


def second_wins(parsed: Sequence[GRMScores]) -> np.ndarray:
  """(P,) bool: valid and Response 2 scored strictly above Response 1."""
  return np.array([p.valid and p.scores[1] > p.scores[0] for p in parsed], bool)


def pick_references(b: int, g: int, rng: np.random.Generator) -> np.ndarray:
  """(B,) int: each query's temporary reference, uniform over its G rollouts."""
  if g < 2:
    raise ValueError(f"BRPO needs G >= 2 rollouts per query to judge one against a reference; got G={g}")
  return rng.integers(0, g, size=b)


def judged_pairs(ref_b: np.ndarray, g: int) -> list[tuple[int, int, int]]:
  """The judgments BRPO asks for, in order: (query, rollout i, order) with order 0 showing
  (o_i, o_ref) and order 1 showing (o_ref, o_i), for every i != ref; 2 (G - 1) per query."""
  return [(q, i, o) for q, r in enumerate(np.asarray(ref_b).tolist()) for i in range(g) if i != r for o in (0, 1)]


def wins_of_judgments(pairs, parsed: Sequence[GRMScores], b: int, g: int) -> tuple[np.ndarray, np.ndarray]:
  """(win_fwd_bg, win_rev_bg) from the judgments of judged_pairs' `pairs`, in order: for order 0
  (o_i shown first) whether Response 1 won, for order 1 (o_i shown second) whether Response 2 won."""
  if len(pairs) != len(parsed):
    raise ValueError(f"{len(pairs)} judged pairs but {len(parsed)} judgments")
  fwd, rev = np.zeros((b, g), bool), np.zeros((b, g), bool)
  won_first, won_second = first_wins(parsed), second_wins(parsed)
  for j, (q, i, o) in enumerate(pairs):
    if o == 0:
      fwd[q, i] = won_first[j]
    else:
      rev[q, i] = won_second[j]
  return fwd, rev


@dataclasses.dataclass(frozen=True)
class BRPOResult:
  reward_bg: np.ndarray       # (B, G) float32: +-1, 0 at the reference
  adv_bg: np.ndarray          # (B, G) float32: = reward, 0 at the reference and in dropped queries
  valid_bg: np.ndarray        # (B, G) bool: rows that enter the loss
  keep_b: np.ndarray          # (B,) bool: queries the filter keeps
  inconsistent: float         # share of judged rollouts that win in exactly one order


def brpo_rewards(win_fwd_bg, win_rev_bg, ref_b, threshold: float = DROP_THRESHOLD) -> BRPOResult:
  """BRPO's rewards and advantages (module docstring). win_fwd_bg[q, i]: o_i beat o_ref shown
  first; win_rev_bg[q, i]: o_i beat o_ref shown second (entries at the reference are ignored)."""
  fwd, rev, ref = np.asarray(win_fwd_bg, bool), np.asarray(win_rev_bg, bool), np.asarray(ref_b)
  if fwd.ndim != 2 or fwd.shape != rev.shape or ref.shape != fwd.shape[:1]:
    raise ValueError(f"brpo_rewards needs win_fwd_bg, win_rev_bg (B, G) and ref_b (B,); got {fwd.shape}, "
                     f"{rev.shape}, {ref.shape}")
  b, g = fwd.shape
  if np.any(ref < 0) or np.any(ref >= g):
    raise ValueError(f"ref_b must index the G={g} rollouts; got {ref.tolist()}")
  is_ref = np.arange(g)[None, :] == ref[:, None]
  reward = np.where(is_ref, 0.0, np.where(fwd & rev, 1.0, -1.0)).astype(np.float32)
  keep = np.abs(reward.sum(1)) / g <= threshold
  valid = ~is_ref & keep[:, None]
  adv = np.where(valid, reward, 0.0).astype(np.float32)
  judged = ~is_ref
  inconsistent = float((fwd ^ rev)[judged].mean()) if judged.any() else 0.0
  return BRPOResult(reward, adv, valid, keep, inconsistent)


def pairwise_judge_reward(parsed: Sequence[GRMScores], preferred: Sequence[int]) -> np.ndarray:
  """(P,) float32 reward of the pairwise GenRM's own RL: +1 valid and the preferred (0 or 1, its
  shown position) scored strictly higher, 0 valid otherwise, -1 invalid."""
  if len(parsed) != len(preferred):
    raise ValueError(f"{len(parsed)} judgments but {len(preferred)} preferred positions")
  out = np.empty(len(parsed), np.float32)
  for i, (p, w) in enumerate(zip(parsed, preferred)):
    if w not in (0, 1):
      raise ValueError(f"preferred[{i}]={w}: the preferred response's shown position is 0 or 1")
    if not p.valid:
      out[i] = -1.0
    else:
      s = p.scores
      out[i] = 1.0 if s[w] > s[1 - w] else 0.0
  return out


def position_bias(parsed_fwd: Sequence[GRMScores], parsed_rev: Sequence[GRMScores]) -> dict:
  """Order effects of a pairwise judge over P pairs each judged in both orders (the same pair's
  responses shown (A, B) in parsed_fwd[p] and (B, A) in parsed_rev[p]):
    first_preferred  share of valid judgments that prefer Response 1 (0.5 for a judge without bias)
    inconsistent     share of pairs with both judgments valid whose winner changes with the order
                     (a tie in one order and a win in the other counts as a change)
  """
  if len(parsed_fwd) != len(parsed_rev):
    raise ValueError(f"{len(parsed_fwd)} forward judgments but {len(parsed_rev)} reversed ones")
  both = list(parsed_fwd) + list(parsed_rev)
  valid = np.array([p.valid for p in both])
  first = first_wins(both)
  pair_valid = valid[:len(parsed_fwd)] & valid[len(parsed_fwd):]
  a_fwd, b_fwd = first_wins(parsed_fwd), second_wins(parsed_fwd)
  a_rev, b_rev = second_wins(parsed_rev), first_wins(parsed_rev)      # A shown second in the reversed order
  same = (a_fwd == a_rev) & (b_fwd == b_rev)
  return {"first_preferred": float(first[valid].mean()) if valid.any() else float("nan"),
          "inconsistent": float((~same)[pair_valid].mean()) if pair_valid.any() else float("nan"),
          "pairs": len(parsed_fwd), "valid": float(valid.mean()) if len(both) else float("nan")}
