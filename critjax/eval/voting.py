"""Compute-matched inference study (SCoRe, Kumar et al., arXiv 2409.12917, Fig. 1 right).

At an equal budget of 2K samples per problem, compare
  (a) parallel:        2K independent first attempts, majority vote over their answers;
  (b) self-correct:    K first attempts, each followed by one self-correction (2 samples each),
                       majority vote over the K corrected answers only.

Dimension key: N problems, K self-corrected chains per problem (2K parallel samples).

Votes: answers pass through a caller-supplied `normalize(str) -> str | None` (e.g. extract the
boxed answer and canonicalise it); None means "no parsable answer" and casts no vote. The winner
is the most common normalised answer; ties go to the answer seen earliest in the list
(earliest-most-common, the behaviour of `collections.Counter.most_common` on insertion order), so
the result is deterministic and reproducible. A problem with no votes scores as wrong.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

Normalize = Callable[[str], Optional[str]]


def majority_vote(answers: Sequence[str], normalize: Normalize) -> Optional[str]:
  """Most common normalised answer; ties -> earliest first occurrence; None if no answer parses."""
  counts: dict[str, int] = {}  # insertion order = order of first occurrence
  for answer in answers:
    key = normalize(answer)
    if key is not None:
      counts[key] = counts.get(key, 0) + 1
  if not counts:
    return None
  best = max(counts.values())
  return next(key for key, c in counts.items() if c == best)


def _vote_correct(answers: Sequence[str], gold: str, normalize: Normalize) -> bool:
  vote = majority_vote(answers, normalize)
  return vote is not None and vote == normalize(gold)


def compute_matched_accuracy(parallel_nk2: Sequence[Sequence[str]],
                             pairs_nk: Sequence[Sequence[tuple[str, str]]],
                             gold_n: Sequence[str], normalize: Normalize,
                             ks: Optional[Sequence[int]] = None) -> dict[str, list]:
  """Majority-vote accuracy of 2k parallel samples vs k self-corrected chains, for each k in `ks`.

  parallel_nk2: per problem, 2K first-attempt answers. pairs_nk: per problem, K (first, corrected)
  answer pairs. gold_n: the reference answer per problem (normalised with the same function).
  ks: budgets to report (each <= K); default [K]. Prefixes are used (the first 2k parallel samples,
  the first k chains), so the curve is nested and deterministic.
  Returns {'k': [...], 'samples': [2k, ...], 'parallel_acc': [...], 'self_correct_acc': [...]}.
  """
  n = len(gold_n)
  if len(parallel_nk2) != n or len(pairs_nk) != n or n == 0:
    raise ValueError(f"need one row per problem: {len(parallel_nk2)} parallel rows, "
                     f"{len(pairs_nk)} pair rows, {n} gold answers (and N >= 1)")
  k_max = len(pairs_nk[0])
  if k_max < 1:
    raise ValueError("pairs_nk rows must hold K >= 1 (first, corrected) pairs")
  for i in range(n):
    if len(pairs_nk[i]) != k_max or len(parallel_nk2[i]) != 2 * k_max:
      raise ValueError(f"problem {i}: expected {k_max} pairs and {2 * k_max} parallel samples, got "
                       f"{len(pairs_nk[i])} and {len(parallel_nk2[i])}")
  ks = [k_max] if ks is None else list(ks)
  bad = [k for k in ks if not 1 <= k <= k_max]
  if bad:
    raise ValueError(f"ks must lie in [1, K={k_max}], got {bad}")
  out: dict[str, list] = {"k": ks, "samples": [2 * k for k in ks], "parallel_acc": [], "self_correct_acc": []}
  for k in ks:
    par = [_vote_correct(parallel_nk2[i][:2 * k], gold_n[i], normalize) for i in range(n)]
    seq = [_vote_correct([second for _, second in pairs_nk[i][:k]], gold_n[i], normalize) for i in range(n)]
    out["parallel_acc"].append(float(np.mean(par)))
    out["self_correct_acc"].append(float(np.mean(seq)))
  return out
