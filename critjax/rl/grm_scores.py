"""Pointwise generative reward model (GRM) scores on the host: parse, judge, reward, vote, scaling curve.

DeepSeek-GRM / SPCT (Liu et al., "Inference-Time Scaling for Generalist Reward Modeling", arXiv
2504.02495; ALGORITHMS.md §6). A GRM reads a query and n >= 1 responses and writes principles, a
critique, then one integer score S_i in {1..10} per response.

Dimension key: N problems, K sampled GRM trajectories per problem, n responses per problem.

Output format (ours; the paper's exact template is UNVERIFIED, the spec gives only "final scores for
every response, e.g. a boxed list"): exactly one scores block

    Scores: [[7, 3]]

anywhere in the text (case-insensitive `Scores`, whitespace free), integers in the order the responses
were shown. One line works for the terse toy (critjax/data/grm_toy.py) and for a real model (the
`grm_chat` template asks for it); the double bracket keeps lists the critique may quote (`[1, 2]`)
from reading as scores. Text after the block is ignored.

Parsing (`parse_scores`) is total: model text never raises. A block counts only if its content is a
comma-separated list of numbers (`Scores: [[s_1, s_2]]` echoed from the prompt is not a block). Then,
in this order:
  missing       no block
  duplicated    more than one block, even identical ones: a GRM that hedges with two score lines
                must not collect the reward of either
  wrong_count   the block does not hold exactly n entries
  out_of_range  an entry is not an integer literal from 1 to 10 (0, 11, -3 and 7.5 all are)

Correctness (SPCT's RFT acceptance rule and its RL reward, §6): for n >= 2 the best response j*'s
score is strictly highest, S_{j*} > S_i for every i != j*; for n == 1 the score equals the label,
S_1 = r_1. An invalid trajectory is never correct. Reward: +1 correct, -1 otherwise (no format reward;
the paper keeps format with a larger KL coefficient instead).

Voting (inference-time scaling, §6): S*_i = sum_j S_{i,j} over the valid samples j; meta-RM guided
voting sums only the k_meta samples a meta RM scores highest (default k // 2, at least 1).

Tie rule (ours; the paper's is UNVERIFIED): a tie for the top voted total counts as wrong for
best-response accuracy. It is the strict rule the GRM is trained on, applied to S*; breaking ties at
random would credit a GRM that scores every response alike with 1/n accuracy, and breaking them by
position would credit whichever response happens to be shown first.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Optional, Sequence, Union

import numpy as np

SCORE_MIN, SCORE_MAX = 1, 10          # SPCT's pointwise score range
INVALID_REASONS = ("missing", "duplicated", "wrong_count", "out_of_range")
SCALING_KS = (1, 2, 4, 8, 16, 32)     # the paper's voting budgets (k = 1 .. 32)
TIE_RULE = "a tie for the top voted total counts as wrong"

_NUM = r"[+-]?\d+(?:\.\d+)?"
_BLOCK_RE = re.compile(r"scores\s*:\s*\[\[\s*(" + _NUM + r"(?:\s*,\s*" + _NUM + r")*)?\s*\]\]", re.I)
_INT_RE = re.compile(r"\+?\d+")


@dataclasses.dataclass(frozen=True)
class GRMScores:
  """A parsed GRM trajectory: `scores` (one per response, in shown order) or None with `invalid`,
  one of INVALID_REASONS."""
  scores: Optional[tuple[int, ...]]
  invalid: Optional[str] = None

  @property
  def valid(self) -> bool:
    return self.scores is not None


def format_scores(scores: Sequence[int]) -> str:
  """The scores block parse_scores reads: [7, 3] -> 'Scores: [[7, 3]]'."""
  return "Scores: [[" + ", ".join(str(int(s)) for s in scores) + "]]"


def parse_scores(text: str, n: int) -> GRMScores:
  """The n scores of one GRM trajectory, or the reason there are none (see the module docstring)."""
  if n < 1:
    raise ValueError(f"n={n}: a GRM scores at least one response")
  blocks = _BLOCK_RE.findall(text or "")
  if not blocks:
    return GRMScores(None, "missing")
  if len(blocks) > 1:
    return GRMScores(None, "duplicated")
  entries = [e.strip() for e in blocks[0].split(",")] if blocks[0] else []
  if len(entries) != n:
    return GRMScores(None, "wrong_count")
  if not all(_INT_RE.fullmatch(e) and SCORE_MIN <= int(e) <= SCORE_MAX for e in entries):
    return GRMScores(None, "out_of_range")
  return GRMScores(tuple(int(e) for e in entries))


Scores = Union[GRMScores, Sequence[int], None]


def _as_tuple(scores: Scores) -> Optional[tuple[int, ...]]:
  if isinstance(scores, GRMScores):
    return scores.scores
  return None if scores is None else tuple(int(s) for s in scores)


def trajectory_correct(scores: Scores, best: Optional[int] = None, label: Optional[int] = None) -> bool:
  """SPCT's correctness rule (§6): n >= 2, scores[best] strictly above every other score; n == 1,
  the score equals `label`. Invalid (None) scores are never correct. `best` is 0-based."""
  s = _as_tuple(scores)
  if s is None or not s:
    return False
  if len(s) == 1:
    if label is None:
      raise ValueError("label is required to judge a single-response (n = 1) trajectory")
    return s[0] == label
  if best is None or not 0 <= best < len(s):
    raise ValueError(f"best={best} must index one of the n={len(s)} responses")
  return all(x < s[best] for i, x in enumerate(s) if i != best)


def grm_reward(parsed: Sequence[GRMScores], best: Sequence[Optional[int]],
               label: Optional[Sequence[Optional[int]]] = None) -> tuple[np.ndarray, np.ndarray]:
  """SPCT's rule-based RL reward (§6) for N trajectories: +1 correct, -1 otherwise (invalid included).

  best: (N,) best index per trajectory (None where n == 1); label: (N,) label score (None where
  n >= 2) or omitted. Returns (reward (N,) float32, invalid (N,) bool)."""
  if len(best) != len(parsed) or (label is not None and len(label) != len(parsed)):
    raise ValueError(f"grm_reward: {len(parsed)} trajectories but {len(best)} best indices"
                     + ("" if label is None else f" and {len(label)} labels"))
  labels = [None] * len(parsed) if label is None else label
  reward = [1.0 if trajectory_correct(p, b, l) else -1.0 for p, b, l in zip(parsed, best, labels)]
  return np.asarray(reward, np.float32).reshape(len(parsed)), np.array([not p.valid for p in parsed], bool)


def invalid_counts(parsed: Sequence[GRMScores]) -> dict[str, int]:
  """How many trajectories are invalid, by reason (every reason listed, 0 included), and in all."""
  counts = {r: 0 for r in INVALID_REASONS}
  for p in parsed:
    if p.invalid is not None:
      counts[p.invalid] += 1
  counts["total"] = sum(counts.values())
  return counts


# --- Response order ------------------------------------------------------------------------------


def shuffle_responses(responses: Sequence, rng: np.random.Generator) -> tuple[list, np.ndarray]:
  """The responses in a random order for one GRM sample (SPCT shuffles per sample, §6), and `perm`
  with shuffled[j] = responses[perm[j]]. The best response shows at position argsort(perm)[best]."""
  perm = rng.permutation(len(responses))
  return [responses[i] for i in perm], perm


def unshuffle_scores(scores: Scores, perm) -> Scores:
  """Scores parsed from a shuffled prompt, back in the original response order (invalid passes through)."""
  s = _as_tuple(scores)
  if s is None:
    return scores
  perm = np.asarray(perm)
  if sorted(perm.tolist()) != list(range(len(s))):
    raise ValueError(f"perm={perm.tolist()} is not a permutation of the {len(s)} scored responses")
  out = [0] * len(s)
  for j, i in enumerate(perm.tolist()):
    out[i] = s[j]
  return GRMScores(tuple(out)) if isinstance(scores, GRMScores) else tuple(out)


# --- Voting --------------------------------------------------------------------------------------


def _check_kn(scores_kn, valid_k, name: str = "scores_kn") -> tuple[np.ndarray, np.ndarray]:
  scores_kn, valid_k = np.asarray(scores_kn), np.asarray(valid_k, bool)
  if scores_kn.ndim != 2 or valid_k.shape != scores_kn.shape[:1]:
    raise ValueError(f"{name} must be (K, n) with valid_k (K,); got {scores_kn.shape} and {valid_k.shape}")
  return scores_kn, valid_k


def vote(scores_kn, valid_k) -> np.ndarray:
  """Voted totals (n,) int64: S*_i = sum_j S_{i,j} over the valid samples j (invalid rows, whatever
  they hold, cast no vote; no valid sample gives all zeros, a tie)."""
  scores_kn, valid_k = _check_kn(scores_kn, valid_k)
  return np.where(valid_k[:, None], scores_kn, 0).astype(np.int64).sum(axis=0)


def default_k_meta(k: int) -> int:
  """SPCT's default: keep half of the k samples (§6), at least one."""
  return max(1, k // 2)


def meta_vote(scores_kn, valid_k, meta_k, k_meta: Optional[int] = None) -> np.ndarray:
  """Meta-RM guided voting (§6): the totals (n,) of the k_meta samples the meta RM scores highest.

  Invalid samples rank below every valid one, so the top k_meta are the valid samples when fewer
  than k_meta are valid. Equal meta scores keep sample order (the earlier sample ranks higher)."""
  scores_kn, valid_k = _check_kn(scores_kn, valid_k)
  k = scores_kn.shape[0]
  meta_k = np.asarray(meta_k, np.float64)
  if meta_k.shape != (k,):
    raise ValueError(f"meta_k must be (K,) = ({k},); got {meta_k.shape}")
  if not np.all(np.isfinite(meta_k)):
    raise ValueError(f"meta_k has non-finite meta-RM scores: {meta_k.tolist()}")
  k_meta = default_k_meta(k) if k_meta is None else k_meta
  if not 1 <= k_meta <= k:
    raise ValueError(f"k_meta={k_meta} must be in [1, k={k}]")
  order = np.lexsort((np.arange(k), -meta_k, ~valid_k))    # last key first: valid, then meta, then index
  keep = np.zeros(k, bool)
  keep[order[:k_meta]] = True
  return vote(scores_kn, valid_k & keep)


def strict_argmax(totals_n) -> Optional[int]:
  """The index of the unique highest total, or None on a tie for the top (TIE_RULE)."""
  totals_n = np.asarray(totals_n)
  top = np.flatnonzero(totals_n == totals_n.max())
  return int(top[0]) if len(top) == 1 else None


def scaling_curve(scores_nkn, valid_nk, best_n, *, meta_nk=None, greedy_nn=None, greedy_valid_n=None,
                  ks: Optional[Sequence[int]] = None) -> dict:
  """Best-response accuracy against the number of GRM samples k (the paper's Fig. 1 / Table 2 curve).

  scores_nkn: (N, K_max, n) per-sample scores in the original response order (unshuffled; invalid
  samples' rows may hold anything), valid_nk: (N, K_max), best_n: (N,) 0-based best index, n >= 2.
  meta_nk: (N, K_max) meta-RM scores for meta-RM voting; greedy_nn, greedy_valid_n: the greedy
  trajectory's (N, n) scores and (N,) validity. Voting@k uses the first k samples of each problem,
  so the curve is nested and one K_max draw gives every point; meta-RM voting@k keeps
  default_k_meta(k) of those k. ks: budgets to report, each <= K_max; default SCALING_KS up to K_max.
  A problem counts as right when strict_argmax of its totals is its best index (TIE_RULE).

  Returns a JSON-ready dict: k, voting, meta_voting and k_meta (when meta_nk is given), greedy
  (when greedy_nn is given), problems, samples, responses, invalid_rate, tie_rule."""
  scores_nkn, valid_nk, best_n = np.asarray(scores_nkn), np.asarray(valid_nk, bool), np.asarray(best_n)
  if scores_nkn.ndim != 3 or valid_nk.shape != scores_nkn.shape[:2] or best_n.shape != scores_nkn.shape[:1]:
    raise ValueError(f"scaling_curve needs scores_nkn (N, K, n), valid_nk (N, K), best_n (N,); got "
                     f"{scores_nkn.shape}, {valid_nk.shape}, {best_n.shape}")
  n_prob, k_max, n = scores_nkn.shape
  if n_prob < 1 or k_max < 1 or n < 2:
    raise ValueError(f"scaling_curve needs N >= 1 problems, K >= 1 samples and n >= 2 responses; got "
                     f"scores_nkn {scores_nkn.shape}")
  if np.any(best_n < 0) or np.any(best_n >= n):
    raise ValueError(f"best_n must index the n={n} responses; got {best_n.tolist()}")
  if ks is None:
    ks = [k for k in SCALING_KS if k <= k_max]
  elif any(not 1 <= k <= k_max for k in ks):
    raise ValueError(f"ks={list(ks)} must each be in [1, K_max={k_max}]")

  def accuracy(totals) -> float:
    return float(np.mean([strict_argmax(t) == b for t, b in zip(totals, best_n.tolist())]))

  out = {"k": [int(k) for k in ks],
         "voting": [accuracy([vote(s[:k], v[:k]) for s, v in zip(scores_nkn, valid_nk)]) for k in ks]}
  if meta_nk is not None:
    meta_nk = np.asarray(meta_nk)
    if meta_nk.shape != valid_nk.shape:
      raise ValueError(f"meta_nk must be (N, K) = {valid_nk.shape}; got {meta_nk.shape}")
    out["k_meta"] = [default_k_meta(k) for k in ks]
    out["meta_voting"] = [accuracy([meta_vote(s[:k], v[:k], m[:k]) for s, v, m in zip(scores_nkn, valid_nk, meta_nk)])
                          for k in ks]
  if greedy_nn is not None:
    greedy_nn = np.asarray(greedy_nn)
    greedy_valid_n = np.ones(n_prob, bool) if greedy_valid_n is None else np.asarray(greedy_valid_n, bool)
    if greedy_nn.shape != (n_prob, n) or greedy_valid_n.shape != (n_prob,):
      raise ValueError(f"greedy_nn must be (N, n) = {(n_prob, n)} with greedy_valid_n (N,); got "
                       f"{greedy_nn.shape}, {greedy_valid_n.shape}")
    out["greedy"] = accuracy([vote(g[None], v[None]) for g, v in zip(greedy_nn, greedy_valid_n)])
  out.update(problems=int(n_prob), samples=int(k_max), responses=int(n),
             invalid_rate=float(1.0 - valid_nk.mean()), tie_rule=TIE_RULE)
  return out
