"""Benchmark metrics (critjax/eval/bench_metrics.py) against values worked out by hand in the
comments, or against an independent brute-force implementation written here."""
from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from critjax.eval import bench_metrics as bm

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
nan = float("nan")


def isnan(x):
  return isinstance(x, float) and math.isnan(x)


# ---------------------------------------------------------------------------------------------
# ProcessBench (§4)
# ---------------------------------------------------------------------------------------------

def test_processbench_hand_computed():
  #        erroneous (label >= 0)          correct (label -1)
  preds = [1, -1, None, 2, -1, -1, 0]
  labels = [1, 2, 0, 2, -1, -1, -1]
  m = bm.processbench_metrics(preds, labels)
  assert m["acc_erroneous"] == pytest.approx(50.0)       # rows 0, 3 of 0..3 (None at row 2 is wrong)
  assert m["acc_correct"] == pytest.approx(200 / 3)      # rows 4, 5 of 4..6
  # 2 * 50 * 66.67 / 116.67 = 400/7
  assert m["f1"] == pytest.approx(400 / 7)
  assert m["parse_failure_rate"] == pytest.approx(100 / 7)
  assert set(m) == {"acc_erroneous", "acc_correct", "f1", "parse_failure_rate"}


def test_processbench_edge_cases():
  m = bm.processbench_metrics([-1, -1], [-1, -1])       # only correct solutions: no erroneous class
  assert isnan(m["acc_erroneous"]) and m["acc_correct"] == 100.0 and isnan(m["f1"])
  m = bm.processbench_metrics([], [])
  assert all(isnan(v) for v in m.values())
  m = bm.processbench_metrics([None, 3], [1, -1])       # both accuracies 0 -> F1 0, not 0/0
  assert m["f1"] == 0.0 and m["parse_failure_rate"] == 50.0
  for bad in ([1.5], [True]):
    with pytest.raises(ValueError, match="preds"):
      bm.processbench_metrics(bad, [1])
  with pytest.raises(ValueError, match="labels"):
    bm.processbench_metrics([1], [-2])
  with pytest.raises(ValueError, match="lengths differ"):
    bm.processbench_metrics([1, 2], [1])


def test_processbench_by_subset_and_vote():
  out = bm.processbench_by_subset([1, -1, 0, -1], [1, -1, 2, -1], ["gsm8k", "gsm8k", "math", "math"])
  # gsm8k: 100 / 100 -> F1 100; math: 0 / 100 -> F1 0; headline = (100 + 0) / 2
  assert out["gsm8k/f1"] == 100.0 and out["math/f1"] == 0.0 and out["f1_mean"] == 50.0
  assert bm.processbench_vote([2, None, 3, 2, 3]) == 2   # 2 and 3 tie at two votes: first seen wins
  assert bm.processbench_vote([None, -1, -1, 4]) == -1
  assert bm.processbench_vote([None, None]) is None and bm.processbench_vote([]) is None


def test_processbench_on_the_shipped_gsm8k_subset():
  items = json.loads((DATA / "processbench" / "gsm8k.json").read_text())
  labels = [it["label"] for it in items]
  assert sum(l != -1 for l in labels) == 207 and sum(l == -1 for l in labels) == 193   # spec §4 table
  m = bm.processbench_metrics(labels, labels)            # an oracle
  assert m["acc_erroneous"] == m["acc_correct"] == m["f1"] == 100.0 and m["parse_failure_rate"] == 0.0
  m = bm.processbench_metrics([-1] * len(labels), labels)  # "every step is right"
  assert m["acc_erroneous"] == 0.0 and m["acc_correct"] == 100.0 and m["f1"] == 0.0


# ---------------------------------------------------------------------------------------------
# CriticBench (§1)
# ---------------------------------------------------------------------------------------------

T, F = True, False


def test_criticbench_missing_counts_wrong():
  labels = [T, T, T, F, F, F]
  verdicts = [True, False, None, False, True, None]
  m = bm.criticbench_accuracy(verdicts, labels)
  # effective predictions: [T, F, (not T)=F, F, T, (not F)=T]; right at rows 0 and 3
  assert m["acc"] == pytest.approx(2 / 6)
  assert m["acc_on_correct"] == pytest.approx(1 / 3) and m["acc_on_incorrect"] == pytest.approx(1 / 3)
  assert m["missing_rate"] == pytest.approx(2 / 6)
  # positive = "wrong" (rows 3, 4, 5); predicted wrong at rows 1, 2, 3: TP 1, FP 2, FN 2 -> 2/(2+2+2)
  assert m["f1_wrong"] == pytest.approx(1 / 3)


def test_criticbench_missing_read_as_correct():
  m = bm.criticbench_accuracy([True, False, None, False, True, None], [T, T, T, F, F, F], missing_as="correct")
  # effective predictions [T, F, T, F, T, T]: right at rows 0, 2, 3
  assert m["acc"] == pytest.approx(3 / 6)
  assert m["acc_on_correct"] == pytest.approx(2 / 3) and m["acc_on_incorrect"] == pytest.approx(1 / 3)
  # predicted wrong at rows 1, 3: TP 1 (row 3), FP 1 (row 1), FN 2 (rows 4, 5) -> 2/(2+1+2)
  assert m["f1_wrong"] == pytest.approx(2 / 5)
  with pytest.raises(ValueError, match="missing_as"):
    bm.criticbench_accuracy([True], [T], missing_as="skip")


def test_criticbench_all_right_and_nan_verdicts():
  m = bm.criticbench_accuracy(np.array([1.0, 1.0]), [T, T])
  assert m["acc"] == 1.0 and m["acc_on_correct"] == 1.0 and isnan(m["acc_on_incorrect"])
  assert isnan(m["f1_wrong"])                            # no positive at all: 0 / 0
  m = bm.criticbench_accuracy(np.array([np.nan, 0.0]), [T, F])
  assert m["missing_rate"] == 0.5 and m["acc"] == 0.5


def test_self_check_vote_and_error_reduction():
  norm = lambda s: s
  answers = ["1", "2", "2", "1", "1"]
  judged = [True, True, True, False, False]
  assert bm.self_check_vote(answers, judged, certainty=0.5, threshold=1, normalize=norm) == "2"  # "1"s dropped
  assert bm.self_check_vote(answers, judged, certainty=3, threshold=1, normalize=norm) == "1"    # plain vote
  assert bm.self_check_vote(answers, [False] * 5, certainty=0, threshold=1, normalize=norm) == "1"  # fallback
  assert bm.self_check_vote(["1", "2", "2"], [None, False, False], 0, 1, norm) == "1"  # missing verdict kept
  assert bm.error_reduction_rate(0.80, 0.85) == pytest.approx(0.25)   # (0.20 - 0.15) / 0.20
  assert isnan(bm.error_reduction_rate(1.0, 1.0))


# ---------------------------------------------------------------------------------------------
# RealCritic (§2)
# ---------------------------------------------------------------------------------------------

def test_realcritic_hand_computed():
  prev = [T, T, F, F, F]
  corrected = np.array([[T, T], [F, T], [T, T], [F, F], [T, F]])   # (N=5, T=2)
  tasks = ["a", "a", "b", "b", "b"]
  m = bm.realcritic_metrics(corrected, prev, tasks)
  assert m["acc_t1"] == pytest.approx(3 / 5) and m["acc_t2"] == pytest.approx(3 / 5)
  assert m["acc_previous"] == pytest.approx(2 / 5) and m["delta_t1"] == pytest.approx(1 / 5)
  # turn 1: right before = rows 0, 1 -> kept at 0, broken at 1; wrong before = 2, 3, 4 -> fixed at 2, 4
  assert (m["c2c_t1"], m["c2i_t1"]) == (pytest.approx(1 / 2), pytest.approx(1 / 2))
  assert (m["i2c_t1"], m["i2i_t1"]) == (pytest.approx(2 / 3), pytest.approx(1 / 3))
  assert m["delta_i2c_t1"] == pytest.approx(2 / 5) and m["delta_c2i_t1"] == pytest.approx(1 / 5)
  # turn 2: both right ones kept; only row 2 fixed
  assert (m["c2c_t2"], m["c2i_t2"], m["i2c_t2"]) == (1.0, 0.0, pytest.approx(1 / 3))
  assert m["delta_i2c_t2"] == pytest.approx(1 / 5) and m["delta_c2i_t2"] == 0.0
  # per task, turn 1: a = [T, F] -> 1/2, b = [T, F, T] -> 2/3; macro = 7/12
  assert m["a/acc_t1"] == 0.5 and m["b/acc_t1"] == pytest.approx(2 / 3)
  assert m["macro_acc_t1"] == pytest.approx(7 / 12)
  assert m["macro_acc_t2"] == pytest.approx((1.0 + 1 / 3) / 2)


def test_realcritic_direct_cot_and_empty_classes():
  m = bm.realcritic_metrics([T, F, T, T])                # Direct CoT: no critiqued solution
  assert m == {"n": 4, "acc_t1": 0.75}
  m = bm.realcritic_metrics([T, F], [T, T])              # nothing was wrong before
  assert isnan(m["i2c_t1"]) and isnan(m["i2i_t1"]) and m["c2i_t1"] == 0.5
  with pytest.raises(ValueError, match="lengths differ"):
    bm.realcritic_metrics([T, F], [T])


# ---------------------------------------------------------------------------------------------
# CritiCal calibration (§7)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,kind,want", [
    ("The answer is B and my confidence is 80%.", "confidence", 0.80),
    ("Confidence is 80%, though 10% of such claims fail.", "confidence", 0.80),   # step 1 beats "last %"
    ("My confidence in this answer is [65]%.", "confidence", 0.65),
    ("I'd say 30% at first; final: 45%", "confidence", 0.45),                   # last X%
    ("Confidence: 85%", "confidence", 0.85),
    ("Answer: Paris. Confidence: 0.85", "confidence", 0.85),                    # no % sign (ours)
    ("confidence = 85", "confidence", 0.85),
    ("Confidence level: 1", "confidence", 1.0),
    ("Confidence: 12.5%", "confidence", 0.125),
    ("the uncertainty is 20%", "uncertainty", 0.80),                          # conf = 1 - unc
    ("no number here", "confidence", None),
    ("confidence is high", "confidence", None),
    ("my confidence is 150%", "confidence", None),                           # above 100%: failure
])
def test_parse_verbalized_confidence(text, kind, want):
  got = bm.parse_verbalized_confidence(text, kind)
  assert got == (None if want is None else pytest.approx(want))


def test_fill_unparsed_confidence_worst_case():
  conf, filled = bm.fill_unparsed_confidence([0.9, None, None, nan], [T, T, F, F])
  np.testing.assert_array_equal(conf, [0.9, 0.0, 1.0, 1.0])    # right -> 0, wrong -> 1
  assert filled == 3


def test_ece_hand_computed():
  conf = [0.95, 0.85, 0.85, 0.15, 0.55]
  ok = [1, 1, 0, 0, 1]
  # bins: 0.95 -> [0.9, 1]: |1 - .95| * 1/5 = .01;  0.85 x2 -> [0.8, 0.9): |.5 - .85| * 2/5 = .14
  #       0.15 -> [0.1, 0.2): |0 - .15| * 1/5 = .03;  0.55 -> [0.5, 0.6): |1 - .55| * 1/5 = .09
  assert bm.ece(conf, ok) == pytest.approx(0.27)
  assert bm.ece([0.75] * 4, [1, 1, 1, 0]) == pytest.approx(0.0)   # one bin, perfectly calibrated
  assert bm.ece([1.0, 0.0], [1, 0]) == pytest.approx(0.0, abs=1e-15)  # clipped into the end bins
  assert isnan(bm.ece([], []))
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    bm.ece([1.2], [1])
  with pytest.raises(ValueError, match=r"\[0, 1\]"):
    bm.ece([nan], [1])


def test_ece_bin_edges_follow_netcal():
  # netcal's edges are np.linspace(0, 1, 11): edge 3 is 0.30000000000000004, so 0.3 (= 30/100)
  # joins 0.25 in [0.2, 0.3): acc 1/2, conf 0.275 -> |0.5 - 0.275| = 0.225 (0.475 if it were binned up)
  assert bm.ece([0.3, 0.25], [1, 0]) == pytest.approx(0.225)
  # edge 4 is exactly 0.4, so 0.4 sits in [0.4, 0.5), apart from 0.35: (|1 - .4| + |0 - .35|) / 2
  assert bm.ece([0.4, 0.35], [1, 0]) == pytest.approx(0.475)


def test_ece_matches_a_loop_over_bins():
  rng = np.random.default_rng(0)
  conf = rng.uniform(0, 1, 500)
  ok = rng.uniform(0, 1, 500) < 0.5   # over- and under-confident bins, so the binning matters
  want = 0.0
  for b in range(10):
    lo, hi = b / 10, (b + 1) / 10
    sel = (conf >= lo) & ((conf < hi) if b < 9 else (conf <= hi))
    if sel.any():
      want += sel.mean() * abs(ok[sel].mean() - conf[sel].mean())
  assert bm.ece(conf, ok) == pytest.approx(want, rel=1e-12)
  assert bm.ece(conf, ok, n_bins=5) != pytest.approx(want)


def _auc_brute(score, label):
  pos = [s for s, y in zip(score, label) if y]
  neg = [s for s, y in zip(score, label) if not y]
  return sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg) / (len(pos) * len(neg))


def test_auroc_hand_and_brute_force():
  # pairs (pos, neg): (.9,.8) 1, (.9,.3) 1, (.8,.8) 1/2, (.8,.3) 1 -> 3.5 / 4
  assert bm.auroc([0.9, 0.8, 0.8, 0.3], [1, 1, 0, 0]) == pytest.approx(0.875)
  assert bm.auroc([0.5, 0.5, 0.5], [1, 0, 1]) == pytest.approx(0.5)   # all tied
  assert bm.auroc([0.1, 0.9], [1, 0]) == 0.0
  assert isnan(bm.auroc([0.1, 0.9], [1, 1])) and isnan(bm.auroc([], []))
  rng = np.random.default_rng(1)
  for _ in range(20):
    s = rng.integers(0, 5, 40).astype(float)                           # many ties
    y = rng.integers(0, 2, 40).astype(bool)
    assert bm.auroc(s, y) == pytest.approx(_auc_brute(s, y), rel=1e-12)


def test_calibration_metrics_fills_failures_first():
  m = bm.calibration_metrics([0.9, None, 0.2, None], [T, T, F, F])
  # filled: [0.9, 0.0 (right), 0.2, 1.0 (wrong)]
  assert m["acc"] == 0.5 and m["parse_failure_rate"] == 0.5
  # positives {0.9, 0.0} vs negatives {0.2, 1.0}: only 0.9 > 0.2 wins -> 1/4
  assert m["auroc"] == pytest.approx(0.25)
  # bins: [0.9, 1]: {0.9 right, 1.0 wrong} -> |.5 - .95| * 2/4; [0, .1): {0.0 right} -> 1 * 1/4;
  # [0.2, 0.3): {0.2 wrong} -> .2 * 1/4; total .225 + .25 + .05
  assert m["ece"] == pytest.approx(0.525)


# ---------------------------------------------------------------------------------------------
# JudgeBench and RM-Bench
# ---------------------------------------------------------------------------------------------

#        label   order (A, B)  order (B, A), in its own frame        both-order rule
JB = [("A>B", "A>B", "B>A"),   # 0: right in both orders             +2 correct
      ("A>B", "A>B", "A>B"),   # 1: picks the first slot both times  0  (position flip)
      ("B>A", "A=B", "A>B"),   # 2: tie, then right                  +1 correct
      ("B>A", None, None),     # 3: unparsed twice                   0
      ("A>B", "B>A", "A>B"),   # 4: wrong in both orders             -2
      ("A>B", "A>>B", "B>>A")]  # 5: arena-hard strength, right      +2 correct
SOURCES = ["mmlu-pro-law", "mmlu-pro-math", "livebench-math", "livebench-reasoning", "livecodebench",
           "livebench-math"]


def test_judgebench_both_orders():
  labels, ab, ba = map(list, zip(*JB))
  m = bm.judgebench_metrics(labels, ab, ba, SOURCES)
  assert m["accuracy"] == pytest.approx(3 / 6)           # rows 0, 2, 5
  assert m["accuracy_first"] == pytest.approx(3 / 6)     # rows 0, 1, 5
  assert m["all_correct"] == pytest.approx(2 / 6)        # rows 0, 5
  assert m["all_incorrect"] == pytest.approx(2 / 6)      # rows 3, 4
  assert m["some_correct"] == pytest.approx(2 / 6)       # rows 1, 2
  assert m["inconsistent_rate"] == pytest.approx(2 / 6)  # rows 1 (A>B vs B>A), 2 (A=B vs B>A)
  assert m["position_flip_rate"] == pytest.approx(1 / 6)  # row 1
  assert m["null_rate"] == pytest.approx(1 / 6)          # row 3
  assert m["mmlu-pro/accuracy"] == 0.5                   # rows 0 (right), 1 (not)
  assert m["livebench-math/accuracy"] == 1.0             # rows 2, 5
  assert m["livebench-reasoning/accuracy"] == 0.0 and m["livecodebench/accuracy"] == 0.0


def test_judgebench_single_order_and_rules():
  labels, ab, _ = map(list, zip(*JB))
  m = bm.judgebench_metrics(labels, ab)
  assert m["accuracy"] == m["accuracy_first"] == pytest.approx(0.5) and "position_flip_rate" not in m
  assert bm.judgebench_pair_correct("A>B", "A>B", "A=B")       # right + tie counts
  assert not bm.judgebench_pair_correct("A>B", "A>B", "A>B")   # right + wrong does not
  assert not bm.judgebench_pair_correct("A>B", "A=B", "A=B")   # tie + tie does not
  assert [bm.flip_verdict(v) for v in ("A>B", "B>A", "A=B", None)] == ["B>A", "A>B", "A=B", None]
  with pytest.raises(ValueError, match="verdicts_ab"):
    bm.judgebench_metrics(["A>B"], ["A is better"])
  with pytest.raises(ValueError, match="labels"):
    bm.judgebench_metrics(["A=B"], ["A>B"])


def test_judgebench_on_the_shipped_pairs():
  rows = [json.loads(line) for line in (DATA / "judgebench" / "gpt-4o-2024-05-13.jsonl").read_text().splitlines()]
  labels = [r["label"] for r in rows]
  oracle = bm.judgebench_metrics(labels, labels, [bm.flip_verdict(l) for l in labels], [r["source"] for r in rows])
  assert oracle["accuracy"] == 1.0 and oracle["position_flip_rate"] == 0.0
  assert {k for k in oracle if k.endswith("/accuracy")} == {f"{s}/accuracy" for s in bm.JUDGEBENCH_SOURCES}
  first_slot = bm.judgebench_metrics(labels, ["A>B"] * len(rows), ["A>B"] * len(rows))
  # always "the first one": never correct over both orders, right in the first order on the A>B labels
  assert first_slot["accuracy"] == 0.0 and first_slot["position_flip_rate"] == 1.0
  assert first_slot["accuracy_first"] == pytest.approx(193 / 350)


def test_rmbench_hand_computed():
  chosen = [[3, 2, 1], [1, 1, 1]]
  rejected = [[2, 2, 0], [0, 2, 0]]
  c = bm.rmbench_correct(chosen, rejected)
  # item 0 rows (chosen 3, 2, 1 vs rejected 2, 2, 0): [T T T], [F F T] (2 > 2 is a tie: wrong), [F F T]
  # item 1 rows (chosen 1 vs rejected 0, 2, 0):      [T F T] each
  # mean M = [[1, .5, 1], [.5, 0, 1], [.5, 0, 1]]
  m = bm.rmbench_accuracy(c)
  assert m["hard"] == pytest.approx(2.5 / 3)     # upper triangle .5, 1, 1
  assert m["normal"] == pytest.approx(2 / 3)     # diagonal 1, 0, 1
  assert m["easy"] == pytest.approx(1 / 3)       # lower triangle .5, .5, 0
  assert m["avg"] == pytest.approx(11 / 18)
  s = bm.rmbench_summary({"chat": c, "code": np.ones((4, 3, 3), bool)})
  assert s["hard"] == pytest.approx((2.5 / 3 + 1) / 2) and s["easy"] == pytest.approx((1 / 3 + 1) / 2)
  assert s["total_avg"] == pytest.approx((11 / 18 + 1) / 2) and s["code/avg"] == 1.0
  assert all(isnan(v) for v in bm.rmbench_accuracy(np.zeros((0, 3, 3), bool)).values())
  assert [bm.rmbench_domain(x) for x in ("chat", "code", "safety-refuse", "safety-response")] == \
      ["chat", "code", "safety", "safety"]
  with pytest.raises(ValueError, match="domain"):
    bm.rmbench_domain("reasoning")


def test_rmbench_files_have_the_3x3_grid():
  for f in sorted((DATA / "rmbench").glob("*_filtered.json")):
    items = json.loads(f.read_text())
    assert all(len(it["chosen"]) == len(it["rejected"]) == len(bm.RMBENCH_STYLES) for it in items), f.name
    length = lambda r: [[len(x) for x in it[r]] for it in items]   # a length "reward" runs end to end
    m = bm.rmbench_accuracy(bm.rmbench_correct(length("chosen"), length("rejected")))
    assert all(0.0 <= v <= 1.0 for v in m.values()), f.name


# ---------------------------------------------------------------------------------------------
# RL-MIA (§8)
# ---------------------------------------------------------------------------------------------

def test_topk_entropy_and_self_critique_score():
  h = bm.topk_entropy([np.log([0.5, 0.25]), [], [0.0]])
  # -(.5 ln .5 + .25 ln .25) = .5 ln 2 + .5 ln 2 = ln 2; the empty step is skipped; p = 1 -> 0
  np.testing.assert_allclose(h, [math.log(2), 0.0])
  # H = [1, 2, 2], H' = [1, 2] padded [1, 2, 0]: cos = 5 / (3 sqrt 5), times length ratio 2/3
  assert bm.self_critique_score([1, 2, 2], [1, 2]) == pytest.approx(2 * math.sqrt(5) / 9)
  assert bm.self_critique_score([0.3, 0.1], [0.3, 0.1]) == pytest.approx(1.0)
  assert bm.self_critique_score([1, 0], [0, 1]) == 0.0
  assert bm.self_critique_score([0, 0], [1]) == 0.0
  assert isnan(bm.self_critique_score([], [1.0]))


def test_perplexity_and_min_k():
  assert bm.perplexity([math.log(0.5), math.log(0.25), None]) == pytest.approx(2 ** 1.5)  # exp(1.5 ln 2)
  assert isnan(bm.perplexity([None]))
  lp = [-1, -5, -3, -2, -4, -0.5, -0.1, -0.2, -6, -0.3]
  assert bm.min_k_prob(lp, 0.2) == pytest.approx(-5.5)     # floor(2.0) = 2 lowest: -6, -5
  assert bm.min_k_prob(lp, 0.35) == pytest.approx(-5.0)    # floor(3.5) = 3: -6, -5, -4
  assert isnan(bm.min_k_prob(lp, 0.05))                    # floor(0.5) = 0 tokens
  assert bm.min_k_prob(lp + [None], 1.0) == pytest.approx(np.mean(lp))
  with pytest.raises(ValueError):
    bm.min_k_prob(lp, 0.0)


def test_membership_auc_drops_nan_and_applies_direction():
  assert bm.membership_auc([0.9, nan, 0.4, 0.1], [1, 1, 0, 0]) == 1.0
  assert bm.membership_auc([0.9, nan, 0.4, 0.1], [1, 1, 0, 0], direction=-1) == 0.0
  assert bm.membership_auc([1.5, 3.0], [1, 0], direction=-1) == 1.0   # lower perplexity = member
  with pytest.raises(ValueError, match="direction"):
    bm.membership_auc([1.0], [1], direction=0)


# ---------------------------------------------------------------------------------------------
# Test-time scaling (§9)
# ---------------------------------------------------------------------------------------------

def _pass_exact(n, c, k):
  return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def test_pass_at_k():
  assert bm.pass_at_k(5, 2, 2) == pytest.approx(0.7)       # 1 - C(3,2)/C(5,2) = 1 - 3/10
  assert bm.pass_at_k(5, 4, 2) == 1.0                      # n - c < k
  assert bm.pass_at_k(5, 0, 3) == 0.0
  assert bm.pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
  for n, c, k in [(200, 37, 50), (1000, 1, 999), (100, 50, 10), (64, 63, 1)]:
    assert bm.pass_at_k(n, c, k) == pytest.approx(_pass_exact(n, c, k), rel=1e-12, abs=1e-15)
  for bad in [(5, 6, 1), (5, 2, 0), (5, 2, 6)]:
    with pytest.raises(ValueError):
      bm.pass_at_k(*bad)
  # problem 0: 1 - C(3,2)/C(4,2) = 1/2; problem 1: 1 - C(2,2)/C(4,2) = 5/6
  assert bm.pass_at_k_mean([[1, 0, 0, 0], [1, 1, 0, 0]], 2) == pytest.approx(2 / 3)


ANS = [["1", "2", "2", "3"], ["5", "6", "7", "5"], [" ", " ", "9", "8"]]
OK = [[0, 1, 1, 0], [1, 0, 0, 1], [0, 0, 1, 0]]
SC = [[0.9, 0.3, 0.4, 0.1], [0.1, 0.5, 0.2, 0.3], [nan, 0.2, 0.7, 0.7]]
NORM = lambda s: s.strip() or None


def test_maj_at_k_hand_computed():
  # k=1: "1" wrong, "5" right, " " no vote -> 1/3;  k=2: "1"/"2" tie -> "1" wrong, "5"/"6" -> "5", none -> 1/3
  # k=3: "2" right, 5/6/7 tie -> "5" right, "9" right -> 1;  k=4: "2", "5", "9"/"8" tie -> "9": all right
  assert [bm.maj_at_k(ANS, OK, k, NORM) for k in (1, 2, 3, 4)] == \
      [pytest.approx(1 / 3), pytest.approx(1 / 3), 1.0, 1.0]
  with pytest.raises(ValueError, match="k must"):
    bm.maj_at_k(ANS, OK, 5, NORM)


def test_best_of_n_and_weighted_vote():
  # rm@1: first samples -> wrong, right, wrong; rm@2: argmax [.9,.3] -> 0 wrong, [.1,.5] -> 1 wrong,
  # [nan, .2] -> 1 wrong; rm@4: idx 0 wrong, idx 1 wrong, .7/.7 tie -> idx 2 right
  assert [bm.best_of_n(SC, OK, k) for k in (1, 2, 4)] == [pytest.approx(1 / 3), 0.0, pytest.approx(1 / 3)]
  assert bm.best_of_n([[nan, nan]], [[1, 0]], 2) == 1.0     # all unscored -> the first
  # weighted@4: "1" .9 > "2" .7 (wrong); "6" .5 > "5" .4 (wrong); "9" .7 = "8" .7 -> "9" (right)
  assert bm.weighted_maj_at_k(ANS, SC, OK, 4, NORM) == pytest.approx(1 / 3)
  assert bm.weighted_maj_at_k(ANS, SC, OK, 2, NORM) == 0.0  # "1"; "6"; no vote


def test_scaling_curves_prefix_and_random_subsets():
  cur = bm.scaling_curves(OK, [1, 2, 4], ANS, SC, NORM)
  assert cur["k"] == [1, 2, 4]
  assert cur["pass@k"] == pytest.approx([np.mean([_pass_exact(4, sum(r), k) for r in OK]) for k in (1, 2, 4)])
  assert cur["maj@k"] == pytest.approx([1 / 3, 1 / 3, 1.0])
  assert cur["rm@k"] == pytest.approx([1 / 3, 0.0, 1 / 3])
  assert cur["weighted_maj@k"] == pytest.approx([1 / 3, 0.0, 1 / 3])  # weighted@1: "1" no, "5" yes, none
  # random size-2 subsets of one problem whose only right sample also scores highest:
  # rm@2 = P(sample 0 drawn) = 1 - C(3,2)/C(4,2) = 1/2; maj@1 over distinct answers = 1/4
  one = bm.scaling_curves([[1, 0, 0, 0]], [1, 2], [["a", "b", "c", "d"]], [[4, 3, 2, 1]], NORM, n_subsets=4000)
  assert one["rm@k"][1] == pytest.approx(0.5, abs=0.03)
  assert one["maj@k"][0] == pytest.approx(0.25, abs=0.03)
  with pytest.raises(ValueError, match="normalize"):
    bm.scaling_curves(OK, [1], ANS)


def test_scaling_curves_random_subsets_equal_prefix_when_order_cannot_matter():
  # every sample of a problem gives the same answer and score: any subset scores as the prefix
  ok = [[1, 1, 1], [0, 0, 0]]
  ans = [["x"] * 3, ["y"] * 3]
  a = bm.scaling_curves(ok, [1, 3], ans, [[1.0] * 3, [2.0] * 3], NORM)
  b = bm.scaling_curves(ok, [1, 3], ans, [[1.0] * 3, [2.0] * 3], NORM, n_subsets=5, seed=3)
  assert a == b and a["maj@k"] == [0.5, 0.5]


def test_processbench_out_of_range_prediction_is_wrong_not_unparsed():
  # labels: one erroneous (step 1), one correct; preds: -2800 (a parsed int, out of range), -1
  m = bm.processbench_metrics([-2800, -1], [1, -1])
  assert m["acc_erroneous"] == 0.0 and m["acc_correct"] == 100.0 and m["parse_failure_rate"] == 0.0
