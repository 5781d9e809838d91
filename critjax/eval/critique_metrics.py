"""Critique metrics over N (attempt, critique, refinement) episodes: is the verdict right, does it
find the first wrong step, and does the refinement written after it fix the attempt.

Dimension key: N episodes.

Definitions (NaN when a denominator is 0):
  verdict_acc          = mean_n [verdict_n == attempt_correct_n]; a missing verdict counts as wrong
  verdict_missing      = fraction of episodes with no verdict
  f1_wrong             = F1 of "attempt is wrong" (predicted positive = verdict False; a missing verdict
                         is not a positive prediction) = 2TP / (2TP + FP + FN)
  first_wrong_acc_err  = on wrong attempts, fraction with pred_first_wrong == true_first_wrong
  first_wrong_acc_ok   = on correct attempts, fraction with pred_first_wrong == -1
  processbench_f1      = harmonic mean of the two: ProcessBench's score (Zheng et al., arXiv
                         2412.06559, §3), its accuracy on erroneous and on correct samples combined
  helpfulness          = P(refined correct | attempt wrong), the critique's usefulness to a refiner
                         (Critique-RL, arXiv 2510.24320; AutoMathCritique, arXiv 2411.16579)
  acc_before / acc_after = mean attempt / refinement correctness; delta = after - before
  delta_i2c / delta_c2i  = fraction of all episodes wrong->right / right->wrong, SCoRe's Δ^{i→c} and
                         Δ^{c→i} (Kumar et al., arXiv 2409.12917), so delta = delta_i2c - delta_c2i
The first_wrong metrics are present only when both true_first_wrong and pred_first_wrong are given.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

_NAN = float("nan")


def _ratio(num, den) -> float:
  """num / den as a float, NaN when den == 0."""
  return float(num) / float(den) if den else _NAN


def _harmonic(a: float, b: float) -> float:
  """Harmonic mean 2ab / (a + b); NaN if either is NaN, 0 when both are 0."""
  if math.isnan(a) or math.isnan(b):
    return _NAN
  return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def _as_bool(x, name: str) -> np.ndarray:
  """(N,) array-like of booleans (or 0/1) -> (N,) bool."""
  arr = np.asarray(x)
  if arr.ndim != 1:
    raise ValueError(f"{name} must be 1-D (N,), got shape {arr.shape}")
  if arr.size and not np.isin(arr, (0, 1)).all():
    raise ValueError(f"{name} must hold booleans (or 0/1)")
  return arr.astype(bool)


def _as_verdicts(x) -> tuple[np.ndarray, np.ndarray]:
  """(N,) of True/False/None (None or NaN = missing) -> (said_correct (N,) bool, missing (N,) bool)."""
  arr = np.asarray(x, dtype=object)
  if arr.ndim != 1:
    raise ValueError(f"verdict_final must be 1-D (N,), got shape {arr.shape}")
  items = list(arr)
  missing = np.array([v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)) for v in items], bool)
  said = np.array([False if m else bool(v) for v, m in zip(items, missing)], bool)
  return said, missing


def _as_steps(x, name: str) -> np.ndarray:
  """(N,) step indices (-1 = no wrong step) -> (N,) int64."""
  arr = np.asarray(x)
  if arr.ndim != 1:
    raise ValueError(f"{name} must be 1-D (N,), got shape {arr.shape}")
  return arr.astype(np.int64)


def f1_wrong(attempt_correct: np.ndarray, said_correct: np.ndarray, missing: np.ndarray) -> float:
  """F1 with positive class "attempt is wrong"; predicted positive = a (present) verdict False."""
  pos = ~attempt_correct
  pred = ~said_correct & ~missing
  tp = int(np.sum(pos & pred))
  fp = int(np.sum(~pos & pred))
  fn = int(np.sum(pos & ~pred))
  return _ratio(2 * tp, 2 * tp + fp + fn)


def first_wrong_metrics(attempt_correct: np.ndarray, true_first_wrong: np.ndarray,
                        pred_first_wrong: np.ndarray) -> dict[str, float]:
  """ProcessBench-style step localisation: accuracy on wrong and on correct attempts, and their F1."""
  err, ok = ~attempt_correct, attempt_correct
  acc_err = _ratio(np.sum(err & (pred_first_wrong == true_first_wrong)), np.sum(err))
  acc_ok = _ratio(np.sum(ok & (pred_first_wrong == -1)), np.sum(ok))
  return {"first_wrong_acc_err": acc_err, "first_wrong_acc_ok": acc_ok,
          "processbench_f1": _harmonic(acc_err, acc_ok)}


def critique_metrics(attempt_correct, verdict_final, refined_correct, true_first_wrong=None,
                     pred_first_wrong=None) -> dict[str, float]:
  """All critique metrics (module docstring) over N episodes; every input is (N,)."""
  before = _as_bool(attempt_correct, "attempt_correct")
  after = _as_bool(refined_correct, "refined_correct")
  said, missing = _as_verdicts(verdict_final)
  n = before.size
  if not (after.size == said.size == n):
    raise ValueError(f"lengths differ: attempt_correct {n}, verdict_final {said.size}, refined_correct {after.size}")
  if (true_first_wrong is None) != (pred_first_wrong is None):
    raise ValueError("pass both true_first_wrong and pred_first_wrong, or neither")
  right = ~missing & (said == before)
  out = {
      "verdict_acc": _ratio(np.sum(right), n),
      "verdict_missing": _ratio(np.sum(missing), n),
      "f1_wrong": f1_wrong(before, said, missing),
      "helpfulness": _ratio(np.sum(~before & after), np.sum(~before)),
      "acc_before": _ratio(np.sum(before), n),
      "acc_after": _ratio(np.sum(after), n),
      "delta_i2c": _ratio(np.sum(~before & after), n),
      "delta_c2i": _ratio(np.sum(before & ~after), n),
  }
  out["delta"] = out["acc_after"] - out["acc_before"]
  if true_first_wrong is not None:
    true_fw = _as_steps(true_first_wrong, "true_first_wrong")
    pred_fw = _as_steps(pred_first_wrong, "pred_first_wrong")
    if not (true_fw.size == pred_fw.size == n):
      raise ValueError(f"first-wrong lengths {true_fw.size}, {pred_fw.size} differ from N={n}")
    out.update(first_wrong_metrics(before, true_fw, pred_fw))
  return out
