"""Critique metrics (critjax/eval/critique_metrics.py) against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest

from critjax.eval.critique_metrics import critique_metrics

T, F = True, False
# 8 episodes.  attempt, verdict, refined, true_first_wrong, pred_first_wrong
#  0: ok,    True,  ok,   -1, -1    verdict right; c->c; localisation right
#  1: ok,    False, bad,  -1,  2    verdict wrong (FP); c->i; localisation wrong
#  2: ok,    None,  ok,   -1, -1    verdict missing; c->c; localisation right
#  3: wrong, False, ok,    1,  1    verdict right (TP); i->c; localisation right
#  4: wrong, False, bad,   0,  2    verdict right (TP); i->i; localisation wrong
#  5: wrong, True,  ok,    2, -1    verdict wrong (FN); i->c; localisation wrong
#  6: wrong, None,  bad,   1, -1    verdict missing (FN); i->i; localisation wrong
#  7: wrong, False, ok,    0,  0    verdict right (TP); i->c; localisation right
ATTEMPT = [T, T, T, F, F, F, F, F]
VERDICT = [True, False, None, False, False, True, None, False]
REFINED = [T, F, T, T, F, T, F, T]
TRUE_FW = [-1, -1, -1, 1, 0, 2, 1, 0]
PRED_FW = [-1, 2, -1, 1, 2, -1, -1, 0]


def test_hand_computed_example():
  m = critique_metrics(ATTEMPT, np.array(VERDICT, dtype=object), REFINED, TRUE_FW, PRED_FW)
  assert m["verdict_acc"] == pytest.approx(4 / 8)          # rows 0, 3, 4, 7
  assert m["verdict_missing"] == pytest.approx(2 / 8)      # rows 2, 6
  # TP = 3 (rows 3, 4, 7), FP = 1 (row 1), FN = 2 (rows 5, 6): 2*3 / (2*3 + 1 + 2) = 6/9
  assert m["f1_wrong"] == pytest.approx(2 / 3)
  assert m["first_wrong_acc_err"] == pytest.approx(2 / 5)  # wrong rows 3..7, matches at 3, 7
  assert m["first_wrong_acc_ok"] == pytest.approx(2 / 3)   # correct rows 0..2, pred -1 at 0, 2
  # 2 * (2/5) * (2/3) / (2/5 + 2/3) = (8/15) / (16/15) = 1/2
  assert m["processbench_f1"] == pytest.approx(1 / 2)
  assert m["helpfulness"] == pytest.approx(3 / 5)          # wrong rows 3..7, refined ok at 3, 5, 7
  assert m["acc_before"] == pytest.approx(3 / 8)
  assert m["acc_after"] == pytest.approx(5 / 8)            # rows 0, 2, 3, 5, 7
  assert m["delta"] == pytest.approx(2 / 8)
  assert m["delta_i2c"] == pytest.approx(3 / 8)            # rows 3, 5, 7
  assert m["delta_c2i"] == pytest.approx(1 / 8)            # row 1
  assert m["delta"] == pytest.approx(m["delta_i2c"] - m["delta_c2i"])
  assert all(isinstance(v, float) for v in m.values())


def test_plain_list_and_float_nan_verdicts():
  # The same verdicts as a float array with NaN for missing, and as a plain list with None.
  as_float = np.array([1.0 if v else (np.nan if v is None else 0.0) for v in VERDICT])
  a = critique_metrics(ATTEMPT, as_float, REFINED)
  b = critique_metrics(ATTEMPT, VERDICT, REFINED)
  for m in (a, b):
    assert m["verdict_acc"] == pytest.approx(0.5)
    assert m["verdict_missing"] == pytest.approx(0.25)
    assert m["f1_wrong"] == pytest.approx(2 / 3)
    assert "processbench_f1" not in m and "first_wrong_acc_err" not in m


def test_nan_when_no_wrong_attempts():
  # All attempts right, no verdict False: no positives and no predicted positives.
  m = critique_metrics([T, T], [True, None], [T, F], [-1, -1], [-1, 0])
  assert math.isnan(m["f1_wrong"])
  assert math.isnan(m["helpfulness"])
  assert math.isnan(m["first_wrong_acc_err"])
  assert m["first_wrong_acc_ok"] == pytest.approx(1 / 2)
  assert math.isnan(m["processbench_f1"])
  assert m["verdict_acc"] == pytest.approx(1 / 2)
  assert m["delta_c2i"] == pytest.approx(1 / 2) and m["delta_i2c"] == 0.0
  # One false alarm and no positives: FP = 1, so F1 = 0 / 1 = 0, not NaN.
  assert critique_metrics([T], [False], [T])["f1_wrong"] == 0.0


def test_nan_when_no_correct_attempts_and_zero_harmonic():
  m = critique_metrics([F, F], [None, None], [F, F], [0, 1], [1, 0])
  assert math.isnan(m["first_wrong_acc_ok"]) and math.isnan(m["processbench_f1"])
  assert m["first_wrong_acc_err"] == 0.0
  assert m["f1_wrong"] == 0.0                                # TP 0, FN 2
  assert m["verdict_missing"] == 1.0 and m["verdict_acc"] == 0.0
  assert m["helpfulness"] == 0.0
  # Both localisation accuracies 0: harmonic mean 0 (not NaN).
  m = critique_metrics([T, F], [True, False], [T, T], [-1, 1], [0, 2])
  assert m["first_wrong_acc_err"] == 0.0 and m["first_wrong_acc_ok"] == 0.0
  assert m["processbench_f1"] == 0.0


def test_empty_is_all_nan():
  m = critique_metrics([], [], [], [], [])
  assert set(m) >= {"verdict_acc", "f1_wrong", "helpfulness", "delta", "processbench_f1"}
  assert all(math.isnan(v) for v in m.values())


def test_f1_crosscheck_against_direct_count():
  rng = np.random.default_rng(0)
  n = 500
  attempt = rng.random(n) < 0.4
  draw = rng.random(n)
  verdict = np.array([None if d < 0.15 else bool(d < 0.6) for d in draw], dtype=object)
  tp = fp = fn = 0
  for a, v in zip(attempt, verdict):
    pred_wrong = v is False
    tp += (not a) and pred_wrong
    fp += a and pred_wrong
    fn += (not a) and not pred_wrong
  precision = np.float64(tp) / np.float64(tp + fp)
  recall = np.float64(tp) / np.float64(tp + fn)
  expected = 2 * precision * recall / (precision + recall)
  got = critique_metrics(attempt, verdict, attempt)["f1_wrong"]
  assert got == pytest.approx(float(expected), rel=1e-12)
  acc = np.mean([v is not None and v == a for a, v in zip(attempt, verdict)], dtype=np.float64)
  assert critique_metrics(attempt, verdict, attempt)["verdict_acc"] == pytest.approx(float(acc), rel=1e-12)


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="lengths"):
    critique_metrics([T, F], [True], [T, F])
  with pytest.raises(ValueError, match="both"):
    critique_metrics([T], [True], [T], true_first_wrong=[-1])
  with pytest.raises(ValueError, match="1-D"):
    critique_metrics([[T]], [True], [T])
  with pytest.raises(ValueError, match="booleans"):
    critique_metrics([2], [True], [T])
