"""Metric functions of the critique-evaluation benchmarks (shared/specs/EVALUATION.md §1, §2, §4, §7-9,
plus JudgeBench and RM-Bench), pure NumPy in float64. MetaCritique (§3) is in metacritique.py.

Each function names its paper, the upstream scorer it follows and its formula. Where the spec marks
a detail [unverified], or where we depart from the upstream code, the docstring says so
(UNVERIFIED / DEPARTURE).

Units: every rate is a fraction in [0, 1], except ProcessBench's, which are percentages as its
`run_eval.py` prints them (and as critjax/eval/benches/processbench.py reads them). A rate whose
denominator is 0 is NaN.

Dimension key: N items (problems, pairs, critiques), K samples per item, T turns, S response styles
(RM-Bench, S = 3).

  §4 ProcessBench       processbench_metrics, processbench_by_subset, processbench_vote
  §1 CriticBench        criticbench_accuracy, self_check_vote, error_reduction_rate
  §2 RealCritic         realcritic_metrics
  §7 CritiCal           parse_verbalized_confidence, fill_unparsed_confidence, ece, auroc,
                        calibration_metrics
  JudgeBench, RM-Bench  flip_verdict, judgebench_pair_correct, judgebench_metrics, rmbench_correct,
                        rmbench_accuracy, rmbench_summary, rmbench_domain
  §8 RL-MIA             topk_entropy, self_critique_score, perplexity, min_k_prob, membership_auc
  §9 test-time scaling  pass_at_k, pass_at_k_mean, maj_at_k, weighted_maj_at_k, best_of_n,
                        scaling_curves
"""
from __future__ import annotations

import math
import re
from typing import Mapping, Optional, Sequence

import numpy as np

from critjax.eval.bench_data import RMBENCH_STYLES   # chosen / rejected order
from critjax.eval.critique_metrics import _as_bool, _as_verdicts, _harmonic, _ratio, f1_wrong, first_wrong_metrics
from critjax.eval.self_correction import transitions
from critjax.eval.voting import Normalize, majority_vote

_NAN = float("nan")


def _same_length(**arrays) -> int:
  sizes = {name: len(a) for name, a in arrays.items()}
  if len(set(sizes.values())) > 1:
    raise ValueError(f"lengths differ: {sizes}")
  return next(iter(sizes.values()))


# ----------------------------------------------------------------------------------------------
# §4 ProcessBench
# ----------------------------------------------------------------------------------------------

_UNPARSED = -2  # stands for a None prediction: equals no label (labels are >= -1), so always wrong
_INVALID = -3   # a parsed index below -1 (a model answering \boxed{-2800}): wrong, but not a parse failure


def _step_index(v, name: str, i: int) -> int:
  if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < -1:
    raise ValueError(f"{name}[{i}] = {v!r}: expected an int >= -1 (-1 = no wrong step)")
  return int(v)


def _pred_index(v, i: int) -> int:
  """A predicted index: any int (one below -1 or past the last step is simply wrong)."""
  if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
    raise ValueError(f"preds[{i}] = {v!r}: expected an int or None")
  return int(v) if v >= -1 else _INVALID


def processbench_metrics(preds: Sequence[Optional[int]], labels: Sequence[int]) -> dict[str, float]:
  """ProcessBench on one subset (Zheng et al., arXiv 2412.06559; QwenLM/ProcessBench
  `code/run_eval.py`), in percent:

    acc_erroneous      = 100 · mean_{n: label_n != -1} [pred_n == label_n]
    acc_correct        = 100 · mean_{n: label_n == -1} [pred_n == -1]
    f1                 = 2 · acc_erroneous · acc_correct / (acc_erroneous + acc_correct)
    parse_failure_rate = 100 · mean_n [pred_n is None]

  preds: (N,) earliest-wrong-step index, -1 for "all steps correct", None when the output did not
  parse (counted wrong, as upstream). labels: (N,) ints >= -1. A class with no sample gives NaN.
  DEPARTURE: when both accuracies are 0, f1 = 0 (upstream divides 0 by 0).
  """
  n = _same_length(preds=preds, labels=labels)
  lab = np.array([_step_index(v, "labels", i) for i, v in enumerate(labels)], np.int64).reshape(n)
  pred = np.array([_UNPARSED if v is None else _pred_index(v, i) for i, v in enumerate(preds)],
                  np.int64).reshape(n)
  m = first_wrong_metrics(lab == -1, lab, pred)
  acc_err, acc_cor = 100 * m["first_wrong_acc_err"], 100 * m["first_wrong_acc_ok"]
  return {"acc_erroneous": acc_err, "acc_correct": acc_cor, "f1": _harmonic(acc_err, acc_cor),
          "parse_failure_rate": 100 * _ratio(np.sum(pred == _UNPARSED), n)}


def processbench_by_subset(preds, labels, subsets) -> dict[str, float]:
  """processbench_metrics per subset, keys "{subset}/{metric}", plus the headline
  f1_mean = unweighted mean of the subsets' F1 (the paper's "average F1")."""
  _same_length(preds=preds, labels=labels, subsets=subsets)
  out: dict[str, float] = {}
  for s in dict.fromkeys(subsets):  # first-seen order
    idx = [i for i, x in enumerate(subsets) if x == s]
    m = processbench_metrics([preds[i] for i in idx], [labels[i] for i in idx])
    out.update({f"{s}/{k}": v for k, v in m.items()})
  out["f1_mean"] = float(np.mean([v for k, v in out.items() if k.endswith("/f1")])) if out else _NAN
  return out


def processbench_vote(preds_k: Sequence[Optional[int]]) -> Optional[int]:
  """ProcessBench's --use_voting: majority over the K parsed predictions of one item, unparsed ones
  dropped, ties to the first seen (Counter.most_common); None when none parsed.
  DEPARTURE: upstream votes over the raw boxed strings and int()s the winner; we vote over ints,
  so "1" and "01" count as one answer and an unparsable string cannot win."""
  win = majority_vote([None if p is None else str(int(p)) for p in preds_k], lambda s: s)
  return None if win is None else int(win)


# ----------------------------------------------------------------------------------------------
# §1 CriticBench (Luo et al. 2023) and the THU CriticBench's critique F1 (§1b)
# ----------------------------------------------------------------------------------------------

def criticbench_accuracy(verdicts, labels, missing_as: str = "wrong") -> dict[str, float]:
  """Critique accuracy (Luo et al., arXiv 2310.04815, §4.1): acc = #[verdict_n == label_n] / N, where
  verdict True means "Judgment: correct" and label True means the response is correct.

    acc_on_correct / acc_on_incorrect = the same accuracy over items labelled correct / incorrect
    missing_rate = fraction with no parsable verdict (None or NaN in `verdicts`)
    f1_wrong     = THU CriticBench's Q score (Lin et al., arXiv 2402.14809, `result_processor.py`):
                   F1 with "the response is wrong" as the positive class, 2TP / (2TP + FP + FN)

  missing_as: how a missing verdict is read.
    "wrong"   : as the opposite of the label, so it is always wrong (THU CriticBench; the critjax
                convention of critique_metrics.py). The default.
    "correct" : as "Judgment: correct" (Luo et al. App. F: the prediction defaults to "correct"
                when the pattern is missing [2nd-hand in the spec]).
  Luo et al. report the mean over 8 runs at temperature 0.6: call once per run and average
  (self_correction.mean_stderr).
  """
  lab = _as_bool(labels, "labels")
  said, missing = _as_verdicts(verdicts)
  n = _same_length(verdicts=said, labels=lab)
  if missing_as == "wrong":
    pred = np.where(missing, ~lab, said)
  elif missing_as == "correct":
    pred = np.where(missing, True, said)
  else:
    raise ValueError(f"missing_as must be 'wrong' or 'correct', got {missing_as!r}")
  right = pred == lab
  return {"acc": _ratio(right.sum(), n), "acc_on_correct": _ratio((right & lab).sum(), lab.sum()),
          "acc_on_incorrect": _ratio((right & ~lab).sum(), (~lab).sum()),
          "missing_rate": _ratio(missing.sum(), n), "f1_wrong": f1_wrong(lab, pred, np.zeros(n, bool))}


def self_check_vote(answers: Sequence[str], judged_correct: Sequence[Optional[bool]], certainty: float,
                    threshold: float, normalize: Normalize) -> Optional[str]:
  """Self-consistency with self-check (Luo et al., arXiv 2310.04815, §5): when the query's certainty
  is below `threshold` C (C = 2 for GPT-4, 1 for PaLM-2 and ChatGPT), drop the sampled answers that
  the model's own critique judged incorrect (judged_correct False; a missing verdict keeps the
  answer), then majority-vote (voting.majority_vote: ties to the first seen). At or above C, the
  plain vote.
  UNVERIFIED (spec §1): the certainty formula and the exact vote rule are in the paper's §3.2.2 / §5,
  which the spec could not read, so the caller supplies `certainty`. Our choice: if every answer is
  dropped, fall back to the plain vote."""
  _same_length(answers=answers, judged_correct=judged_correct)
  if certainty < threshold:
    kept = [a for a, ok in zip(answers, judged_correct) if ok is None or bool(ok)]
    if kept:
      return majority_vote(kept, normalize)
  return majority_vote(answers, normalize)


def error_reduction_rate(acc_base: float, acc_new: float) -> float:
  """(err_base - err_new) / err_base with err = 1 - acc, as Luo et al. §5 report self-check against
  plain self-consistency (e.g. 16.09% for PaLM-2 on GSM8K). NaN when err_base == 0."""
  err_base, err_new = 1.0 - float(acc_base), 1.0 - float(acc_new)
  return _ratio(err_base - err_new, err_base)


# ----------------------------------------------------------------------------------------------
# §2 RealCritic (closed loop: a critique scores by the correction it leads to)
# ----------------------------------------------------------------------------------------------

def realcritic_metrics(corrected, previous=None, tasks: Optional[Sequence[str]] = None) -> dict[str, float]:
  """RealCritic (Tang et al., arXiv 2501.14492; tangzhy/RealCritic `evaluate.py`).

  corrected: (N,) or (N, T) bool, whether the final answer of the correction written after turn t's
  critique is right (math_equal vs gt). For Direct CoT pass the direct answers' correctness and no
  `previous`. previous: (N,) bool, whether the critiqued solution was right: the data's
  `previous_score` for cross-critique, the model's own Direct-CoT correctness for self-critique.
  Iterative critique: column t is turn t+1 (upstream evaluates every turn against the same
  `previous_score`). tasks: (N,) task names for the per-task and macro figures.

  Keys (t = 1..T):
    acc_t{t}        = mean_n corrected[n, t]                                 (upstream `acc` / 100)
    with previous:
    acc_previous    = mean_n previous[n]; delta_t{t} = acc_t{t} - acc_previous
                      (self-critique minus Direct CoT; cross-critique minus the ~50% mixed baseline)
    c2c_t{t}, c2i_t{t} = #(right -> right / wrong) / #right before           (critic_information
    i2c_t{t}, i2i_t{t} = #(wrong -> right / wrong) / #wrong before            ratios / 100)
    delta_i2c_t{t}, delta_c2i_t{t} = the same transitions as fractions of all N (SCoRe's Δ^{i→c},
                      Δ^{c→i}, self_correction.transitions)
    with tasks:     {task}/acc_t{t} and macro_acc_t{t} = unweighted mean over tasks (the paper's
                    "average over the 8 tasks").
  DEPARTURE: a ratio over an empty class is NaN (upstream writes 0).
  """
  c_nt = np.asarray(corrected)
  if c_nt.ndim == 1:
    c_nt = c_nt[:, None]
  if c_nt.ndim != 2 or not np.isin(c_nt, (0, 1)).all():
    raise ValueError(f"corrected must be (N,) or (N, T) booleans, got shape {np.shape(corrected)}")
  c_nt = c_nt.astype(bool)
  n, t_count = c_nt.shape
  out: dict[str, float] = {"n": n}
  for t in range(t_count):
    out[f"acc_t{t + 1}"] = _ratio(c_nt[:, t].sum(), n)
  if previous is not None:
    prev = _as_bool(previous, "previous")
    _same_length(corrected=c_nt, previous=prev)
    out["acc_previous"] = _ratio(prev.sum(), n)
    for t in range(t_count):
      cur, s = c_nt[:, t], f"_t{t + 1}"
      out["delta" + s] = out["acc" + s] - out["acc_previous"]
      out["c2c" + s] = _ratio((prev & cur).sum(), prev.sum())
      out["c2i" + s] = _ratio((prev & ~cur).sum(), prev.sum())
      out["i2c" + s] = _ratio((~prev & cur).sum(), (~prev).sum())
      out["i2i" + s] = _ratio((~prev & ~cur).sum(), (~prev).sum())
      if n:
        tr = transitions(np.stack([prev, cur], axis=1))
        out["delta_i2c" + s], out["delta_c2i" + s] = tr["delta_i2c"], tr["delta_c2i"]
  if tasks is not None:
    _same_length(corrected=c_nt, tasks=tasks)
    names = list(dict.fromkeys(tasks))
    task_arr = np.asarray(tasks, dtype=object)
    for t in range(t_count):
      accs = [float(c_nt[task_arr == name, t].mean()) for name in names]
      out.update({f"{name}/acc_t{t + 1}": a for name, a in zip(names, accs)})
      out[f"macro_acc_t{t + 1}"] = float(np.mean(accs)) if accs else _NAN
  return out


# ----------------------------------------------------------------------------------------------
# §7 CritiCal: verbalised confidence, ECE, AUROC
# ----------------------------------------------------------------------------------------------

CRITICAL_ECE_BINS = 10  # CritiCal evaluation_all.py: netcal.metrics.ECE(10), equal-width bins

_NUM = r"(\d+(?:\.\d+)?)"
_PCT_PATTERNS = {
    "confidence": (re.compile(r"confidence is\s*\[?" + _NUM + r"\]?%", re.I),
                   re.compile(r"confidence in this answer is\s*\[?" + _NUM + r"\]?%", re.I)),
    "uncertainty": (re.compile(r"uncertainty is\s*\[?" + _NUM + r"\]?%", re.I),),
}
_ANY_PCT = re.compile(_NUM + r"\]?%")
# step 4 runs only when no "X%" is in the text at all, so it needs no guard against a percent sign
_BARE = {kind: re.compile(kind + r"(?:\s+(?:level|score))?\s*(?:is|:|=)\s*\[?(\d*\.?\d+)", re.I)
         for kind in _PCT_PATTERNS}


def parse_verbalized_confidence(text: str, kind: str = "confidence") -> Optional[float]:
  """Verbalised confidence in [0, 1] from a response, or None when none parses (CritiCal
  `critique/utils.py::extract_confidence` / `extract_uncertainty`; Zong et al., arXiv 2510.24505).

  Tried in order (upstream's order), value / 100:
    1. "confidence is X%"  (kind="uncertainty": "uncertainty is X%"), an optional [ ] around X
    2. "confidence in this answer is X%"  (confidence only)
    3. the last "X%" anywhere in the text
  then our extension, for answers without a percent sign:
    4. the last "confidence[ level| score] (is|:|=) X": X <= 1 is a probability, 1 < X <= 100 a
       percentage ("Confidence: 0.85" -> 0.85, "confidence: 85" -> 0.85).
  kind="uncertainty" returns the confidence 1 - u of the parsed uncertainty u.
  DEPARTURES: patterns are case-insensitive (upstream's 1-2 are not; its step 3 catches most such
  cases anyway); step 4 is ours; a value above 100% is a parse failure (upstream keeps 1.5 and
  netcal then clips it to 1).
  """
  if kind not in _PCT_PATTERNS:
    raise ValueError(f"kind must be 'confidence' or 'uncertainty', got {kind!r}")
  value = None
  for pat in _PCT_PATTERNS[kind]:
    m = pat.search(text)
    if m:
      value = float(m.group(1)) / 100.0
      break
  if value is None:
    found = _ANY_PCT.findall(text)
    if found:
      value = float(found[-1]) / 100.0
  if value is None:
    found = _BARE[kind].findall(text)
    if found:
      x = float(found[-1])
      value = x if x <= 1.0 else x / 100.0
  if value is None or value > 1.0:
    return None
  return 1.0 - value if kind == "uncertainty" else value


def fill_unparsed_confidence(confidences: Sequence[Optional[float]], correct) -> tuple[np.ndarray, int]:
  """CritiCal's worst case for a confidence that did not parse (evaluation_all.py): 1.0 when the
  answer is wrong, 0.0 when it is right, so format failures cost in both ECE and AUROC.
  Returns ((N,) float64 confidences, the number filled)."""
  ok = _as_bool(correct, "correct")
  _same_length(confidences=confidences, correct=ok)
  missing = np.array([c is None or (isinstance(c, float) and math.isnan(c)) for c in confidences], bool)
  conf = np.array([0.0 if m else float(c) for c, m in zip(confidences, missing)], np.float64)
  conf[missing] = np.where(ok[missing], 0.0, 1.0)
  return conf, int(missing.sum())


def ece(confidence, correct, n_bins: int = CRITICAL_ECE_BINS) -> float:
  """Expected calibration error (Naeini et al., AAAI 2015; Guo et al., ICML 2017), as netcal's
  `ECE(n_bins).measure(conf, correct)` computes it for 1-D binary input, which CritiCal reports:

    ECE = sum_b (|B_b| / N) · |acc(B_b) - conf(B_b)|

  over n_bins equal-width bins with edges np.linspace(0, 1, n_bins + 1); a bin is [lo, hi), the
  last [lo, 1]; confidences are first clipped to [eps, 1 - eps] (netcal), acc(B) is the fraction
  correct and conf(B) the mean confidence in the bin; empty bins add 0.
  Note (netcal's binning, kept to reproduce its numbers): the float edges are i * 0.1, so 0.3, 0.6
  and 0.7 (= 30/100, ...) sit just below their edges (3 * 0.1 = 0.30000000000000004) and fall in
  the bin below, while 0.1, 0.2, 0.4, 0.5, 0.8, 0.9 fall in the bin above.
  NaN for no samples."""
  conf = np.asarray(confidence, np.float64)
  ok = _as_bool(correct, "correct")
  if conf.ndim != 1 or conf.shape != ok.shape:
    raise ValueError(f"confidence {conf.shape} and correct {ok.shape} must be equal 1-D shapes")
  if conf.size == 0:
    return _NAN
  if np.isnan(conf).any() or (conf < 0).any() or (conf > 1).any():
    raise ValueError("confidence must lie in [0, 1] (fill unparsed ones first: fill_unparsed_confidence)")
  eps = np.finfo(np.float64).eps
  conf = np.clip(conf, eps, 1.0 - eps)
  edges = np.linspace(0.0, 1.0, n_bins + 1)
  b = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
  count = np.bincount(b, minlength=n_bins).astype(np.float64)
  acc_sum = np.bincount(b, weights=ok.astype(np.float64), minlength=n_bins)
  conf_sum = np.bincount(b, weights=conf, minlength=n_bins)
  nz = count > 0
  return float(np.sum(np.abs(acc_sum[nz] - conf_sum[nz])) / conf.size)


def _average_ranks(x: np.ndarray) -> np.ndarray:
  """1-based ranks of x, tied values sharing the mean of their ranks."""
  order = np.argsort(x, kind="mergesort")
  xs = x[order]
  starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
  ends = np.r_[starts[1:], xs.size]
  ranks = np.empty(x.size, np.float64)
  ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
  return ranks


def auroc(score, label) -> float:
  """Area under the ROC curve of `score` for the positive class `label` (CritiCal: roc_auc_score of
  confidence for correctness; RL-MIA: roc_curve + auc of the detector score for membership).
  Rank form (Mann-Whitney U / (n_pos · n_neg)): the probability that a random positive outscores a
  random negative, a tie counting 1/2, which equals the trapezoidal area of the ROC curve.
  NaN when either class is empty (CritiCal returns NaN there too)."""
  s = np.asarray(score, np.float64)
  y = _as_bool(label, "label")
  if s.shape != y.shape:
    raise ValueError(f"score {s.shape} and label {y.shape} must be equal 1-D shapes")
  if np.isnan(s).any():
    raise ValueError("score holds NaN (drop those items first, as membership_auc does)")
  n_pos, n_neg = int(y.sum()), int((~y).sum())
  if n_pos == 0 or n_neg == 0:
    return _NAN
  u = _average_ranks(s)[y].sum() - n_pos * (n_pos + 1) / 2.0
  return float(u / (n_pos * n_neg))


def calibration_metrics(confidences: Sequence[Optional[float]], correct,
                        n_bins: int = CRITICAL_ECE_BINS) -> dict[str, float]:
  """CritiCal's summary (evaluation_all.py) of one evaluation: acc, ECE and AUROC of the verbalised
  confidence after the worst-case fill (fill_unparsed_confidence), and the fraction filled."""
  ok = _as_bool(correct, "correct")
  conf, filled = fill_unparsed_confidence(confidences, ok)
  return {"acc": _ratio(ok.sum(), ok.size), "ece": ece(conf, ok, n_bins), "auroc": auroc(conf, ok),
          "parse_failure_rate": _ratio(filled, ok.size)}


# ----------------------------------------------------------------------------------------------
# Pairwise judges: JudgeBench and RM-Bench. The spec has no section on either: the rules are
# shared/data/README.md's notes and the upstream scorers named in each docstring.
# ----------------------------------------------------------------------------------------------

VERDICTS = ("A>B", "B>A", "A=B")
JUDGEBENCH_SOURCES = ("mmlu-pro", "livebench-reasoning", "livebench-math", "livecodebench")  # run_judge.py


def _verdict(v, name: str, i: int) -> Optional[str]:
  if v is None:
    return None
  s = str(v).replace(">>", ">").strip()  # arena-hard's A>>B / B>>A, normalised as judges.py does
  if s not in VERDICTS:
    raise ValueError(f"{name}[{i}] = {v!r}: expected one of {VERDICTS} or None")
  return s


def flip_verdict(v: Optional[str]) -> Optional[str]:
  """A verdict read with the two responses swapped: A>B <-> B>A; A=B and None unchanged."""
  return {"A>B": "B>A", "B>A": "A>B"}.get(v, v)


def judgebench_pair_correct(label: str, v_ab: Optional[str], v_ba: Optional[str]) -> bool:
  """JudgeBench's rule for a pair judged in both orders (Tan et al., arXiv 2410.12784;
  ScalerLab/JudgeBench `utils/metrics.py`): with v_ab the verdict on (A, B) and v_ba the verdict on
  the swapped order (B shown first, in its own frame), count +1 for each of v_ab, flip(v_ba) equal
  to the label and -1 for each equal to the opposite label; the pair is correct iff the sum > 0.
  So right + tie (or unparsed) counts, right + wrong does not, and tie + tie does not."""
  counter = 0
  for v in (v_ab, flip_verdict(v_ba)):
    if v == label:
      counter += 1
    elif v == flip_verdict(label):
      counter -= 1
  return counter > 0


def judgebench_metrics(labels: Sequence[str], verdicts_ab: Sequence[Optional[str]],
                       verdicts_ba: Optional[Sequence[Optional[str]]] = None,
                       sources: Optional[Sequence[str]] = None) -> dict[str, float]:
  """JudgeBench pairwise accuracy (utils/metrics.py::compute_final_metrics) and position bias.

  labels: (N,) "A>B" / "B>A". verdicts_ab: the judge on (question, A, B). verdicts_ba: the judge on
  (question, B, A), in that prompt's own frame ("A" = the response shown first = B); None when the
  judge ran once (upstream --single_game, e.g. reward models). Verdicts: "A>B", "B>A", "A=B" (tie),
  "A>>B"/"B>>A" (read as ">"), or None (unparsed).

  Keys:
    accuracy            both orders: mean of judgebench_pair_correct; single order: mean [v_ab == label]
    accuracy_first      mean [v_ab == label] (the first order alone)
    with verdicts_ba:
    all_correct / all_incorrect / some_correct  both, neither, one of v_ab and flip(v_ba) equal the label
    inconsistent_rate   mean [v_ab != flip(v_ba)] (upstream n_inconsistent: any disagreement,
                        ties and unparsed ones included)
    position_flip_rate  both verdicts strict and naming the same slot (v_ab == v_ba in A>B / B>A):
                        the preferred response changes when the order is swapped, so the judge
                        followed position, not content
    null_rate           mean [v_ab or v_ba is None]
    with sources:       {prefix}/accuracy for each of JUDGEBENCH_SOURCES present (source.startswith)
  """
  n = len(labels)
  lab = [_verdict(v, "labels", i) for i, v in enumerate(labels)]
  if any(v not in ("A>B", "B>A") for v in lab):
    raise ValueError("labels must be 'A>B' or 'B>A'")
  ab = [_verdict(v, "verdicts_ab", i) for i, v in enumerate(verdicts_ab)]
  _same_length(labels=lab, verdicts_ab=ab)
  first = np.array([a == l for a, l in zip(ab, lab)], bool)
  out = {"n": n, "accuracy_first": _ratio(first.sum(), n)}
  if verdicts_ba is None:
    correct = first
  else:
    ba = [_verdict(v, "verdicts_ba", i) for i, v in enumerate(verdicts_ba)]
    _same_length(labels=lab, verdicts_ba=ba)
    second = np.array([flip_verdict(b) == l for b, l in zip(ba, lab)], bool)
    correct = np.array([judgebench_pair_correct(l, a, b) for l, a, b in zip(lab, ab, ba)], bool)
    out.update({
        "all_correct": _ratio((first & second).sum(), n),
        "all_incorrect": _ratio((~first & ~second).sum(), n),
        "some_correct": _ratio((first ^ second).sum(), n),
        "inconsistent_rate": _ratio(sum(a != flip_verdict(b) for a, b in zip(ab, ba)), n),
        "position_flip_rate": _ratio(sum(a == b and a in ("A>B", "B>A") for a, b in zip(ab, ba)), n),
        "null_rate": _ratio(sum(a is None or b is None for a, b in zip(ab, ba)), n),
    })
  out["accuracy"] = _ratio(correct.sum(), n)
  if sources is not None:
    _same_length(labels=lab, sources=sources)
    for prefix in JUDGEBENCH_SOURCES:
      sel = np.array([s.startswith(prefix) for s in sources], bool)
      if sel.any():
        out[f"{prefix}/accuracy"] = float(correct[sel].mean())
  return out



def rmbench_correct(chosen_scores, rejected_scores) -> np.ndarray:
  """RM-Bench's comparisons (Liu et al., arXiv 2410.16184; THU-KEG/RM-Bench `scripts/utils.py`):
  (N, S) reward scores of the chosen and the rejected responses in RMBENCH_STYLES order ->
  (N, S, S) bool, [n, i, j] = chosen_scores[n, i] > rejected_scores[n, j] (strict: a tie is wrong).
  A generative judge can build the same (N, S, S) array itself, e.g. from judgebench_pair_correct
  of each (chosen i, rejected j) pair judged in both orders."""
  c = np.asarray(chosen_scores, np.float64)
  r = np.asarray(rejected_scores, np.float64)
  if c.ndim != 2 or c.shape != r.shape:
    raise ValueError(f"chosen {c.shape} and rejected {r.shape} scores must be equal (N, S) shapes")
  return c[:, :, None] > r[:, None, :]


def rmbench_accuracy(correct_nss) -> dict[str, float]:
  """RM-Bench accuracies of one domain from (N, S, S) comparisons (utils.py::compute_accuracy):
  M = mean_n correct[n] (S x S, rows chosen style, columns rejected style);
    hard   = mean of the upper triangle (i < j: chosen plainer than rejected)
    normal = mean of the diagonal (same style)
    easy   = mean of the lower triangle (chosen fancier than rejected)
    avg    = mean(hard, normal, easy) (upstream's domain average)
  NaN for N = 0."""
  c = np.asarray(correct_nss)
  if c.ndim != 3 or c.shape[1] != c.shape[2] or c.shape[1] < 2:
    raise ValueError(f"correct must be (N, S, S) with S >= 2, got shape {c.shape}")
  if c.shape[0] == 0:
    return {"hard": _NAN, "normal": _NAN, "easy": _NAN, "avg": _NAN}
  m = c.astype(np.float64).mean(axis=0)
  s = m.shape[0]
  pairs = s * (s - 1) / 2
  out = {"hard": float(np.triu(m, 1).sum() / pairs), "normal": float(np.diag(m).mean()),
         "easy": float(np.tril(m, -1).sum() / pairs)}
  out["avg"] = float(np.mean([out["hard"], out["normal"], out["easy"]]))
  return out


def rmbench_domain(name: str) -> str:
  """The domain (chat, math, code, safety) of an RM-Bench file stem or `domain` field, by prefix as
  upstream's split_dataset_by_domain: "safety-refuse" and "safety-response" are both "safety"."""
  for d in ("chat", "math", "code", "safety"):
    if name.startswith(d):
      return d
  raise ValueError(f"{name!r} is not an RM-Bench domain (chat, math, code, safety)")


def rmbench_summary(per_domain: Mapping[str, object]) -> dict[str, float]:
  """RM-Bench leaderboard figures from {domain: (N, S, S) comparisons}: each domain's avg, then
  hard / normal / easy = means over domains of the domain figures, and total_avg = mean of the
  domain avgs (README "Clarity on Avg Calculation": Overall = (Chat + Code + Math + Safety) / 4).
  Items of one domain must be pooled before (both safety files make one "safety" domain)."""
  res = {d: rmbench_accuracy(c) for d, c in per_domain.items()}
  out = {f"{d}/{k}": v for d, r in res.items() for k, v in r.items()}
  for k in ("hard", "normal", "easy"):
    out[k] = float(np.mean([r[k] for r in res.values()])) if res else _NAN
  out["total_avg"] = float(np.mean([r["avg"] for r in res.values()])) if res else _NAN
  return out


# ----------------------------------------------------------------------------------------------
# §8 RL-MIA: self-critique contamination score and likelihood baselines
# ----------------------------------------------------------------------------------------------

def topk_entropy(step_logprobs: Sequence[Sequence[float]]) -> np.ndarray:
  """Per-step entropies H_t = -sum_v p_v log p_v over the top-K log-probs returned at each generated
  position (RL-MIA `generate_full_data.py`, K = 50 there): p_v = exp(logprob_v), not renormalised
  over the top K, as upstream. Steps with no log-probs are skipped, as upstream. -> (T,) float64."""
  out = []
  for lp in step_logprobs:
    lp = np.asarray(lp, np.float64)
    if lp.size:
      out.append(float(-np.sum(np.exp(lp) * lp)))
  return np.asarray(out, np.float64)


def self_critique_score(h_first, h_second) -> float:
  """RL-MIA's Self-Critique contamination score (Tao et al., arXiv 2510.09259; detectors/
  self_critique.py): H, H' = entropy sequences of the greedy answer and of the greedy "different
  reasoning path" answer; with both zero-padded to max(|H|, |H'|),

    score = cos(pad(H), pad(H')) · min(|H|, |H'|) / max(|H|, |H'|)

  Higher = more likely a member (contaminated). NaN when either sequence is empty (the item is
  dropped from the AUC, as upstream); 0 when either is all zeros."""
  a = np.asarray(h_first, np.float64).ravel()
  b = np.asarray(h_second, np.float64).ravel()
  if a.size == 0 or b.size == 0:
    return _NAN
  size = max(a.size, b.size)
  pa, pb = np.zeros(size), np.zeros(size)
  pa[:a.size], pb[:b.size] = a, b
  na, nb = np.linalg.norm(pa), np.linalg.norm(pb)
  if na == 0 or nb == 0:
    return 0.0
  return float(pa @ pb / (na * nb) * min(a.size, b.size) / size)


def _token_logprobs(logprobs) -> np.ndarray:
  # None marks a sampled token outside the returned top-K (generate_full_data.py); dropped, as upstream
  return np.array([x for x in logprobs if x is not None], np.float64)


def perplexity(logprobs: Sequence[Optional[float]]) -> float:
  """PPL = exp(-mean_t log p(x_t)) of the greedy answer (RL-MIA detectors/ppl.py; lower = member,
  so score it with membership_auc(direction=-1)). NaN when no log-prob."""
  lp = _token_logprobs(logprobs)
  return float(np.exp(-lp.mean())) if lp.size else _NAN


def min_k_prob(logprobs: Sequence[Optional[float]], k: float = 0.2) -> float:
  """Min-K% Prob (Shi et al., ICLR 2024, arXiv 2310.16789): the mean of the floor(k·T) lowest
  token log-probs; higher = more likely seen in training (direction +1). k = 0.2 in RL-MIA.
  NaN when floor(k·T) = 0 (RL-MIA detectors/mink.py).
  Sign note: RL-MIA's mink.py returns the negative, -mean, with direction +1, i.e. it scores a
  *lower* likelihood as membership; its AUC is 1 - the AUC of this score."""
  if not 0 < k <= 1:
    raise ValueError(f"k must lie in (0, 1], got {k}")
  lp = _token_logprobs(logprobs)
  m = int(lp.size * k)
  return float(np.sort(lp)[:m].mean()) if m else _NAN


def membership_auc(scores, member, direction: int = 1) -> float:
  """AUC of a detector for membership (RL-MIA evaluate_all_methods.py): items with a NaN score
  dropped, scores multiplied by the detector's direction (+1: higher = member, as self_critique_score
  and min_k_prob; -1: lower = member, as perplexity), then auroc (ties 1/2)."""
  if direction not in (1, -1):
    raise ValueError(f"direction must be +1 or -1, got {direction}")
  s = np.asarray(scores, np.float64)
  y = _as_bool(member, "member")
  if s.shape != y.shape:
    raise ValueError(f"scores {s.shape} and member {y.shape} must be equal 1-D shapes")
  keep = ~np.isnan(s)
  return auroc(direction * s[keep], y[keep])


# ----------------------------------------------------------------------------------------------
# §9 Test-time scaling: pass@k, maj@k, best-of-N
# ----------------------------------------------------------------------------------------------

def pass_at_k(n: int, c: int, k: int) -> float:
  """Unbiased pass@k of one problem (Chen et al., arXiv 2107.03374, Eq. 1): 1 - C(n-c, k) / C(n, k)
  with n samples of which c are correct; 1 when n - c < k. Computed as their stable product
  1 - prod_{i=n-c+1}^{n} (1 - k / i), never forming the binomials."""
  if not (0 <= c <= n and 1 <= k <= n):
    raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
  if n - c < k:
    return 1.0
  return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def pass_at_k_mean(correct_nk, k: int) -> float:
  """mean over problems of pass_at_k(K, c_n, k), c_n = sum_j correct[n, j]; (N, K) bool."""
  c = np.asarray(correct_nk)
  if c.ndim != 2 or not np.isin(c, (0, 1)).all():
    raise ValueError(f"correct must be (N, K) booleans, got shape {c.shape}")
  if c.shape[0] == 0:
    return _NAN
  return float(np.mean([pass_at_k(c.shape[1], int(row.sum()), k) for row in c]))


def _vote_index(keys: Sequence[Optional[str]], weights: Optional[Sequence[float]] = None) -> Optional[int]:
  """Index of the first sample of the winning answer (most votes, or most weight); ties go to the
  answer seen first; None keys cast no vote; None when nobody votes."""
  tally: dict[str, float] = {}
  first: dict[str, int] = {}
  for j, key in enumerate(keys):
    if key is not None:
      tally[key] = tally.get(key, 0.0) + (1.0 if weights is None else float(weights[j]))
      first.setdefault(key, j)
  if not tally:
    return None
  best = max(tally.values())
  return first[next(key for key, v in tally.items() if v == best)]


def maj_at_k(answers_nk: Sequence[Sequence[str]], correct_nk, k: int, normalize: Normalize) -> float:
  """maj@k / self-consistency (Wang et al., arXiv 2203.11171; Qwen2.5-Math `rm_maj_eval.py`): over
  the first k samples of each problem, the most frequent normalised answer (voting.majority_vote:
  ties to the first seen, None = no vote) is scored by the correctness of the first sample that
  gave it; a problem with no vote scores 0. Mean over problems."""
  c = _samples(correct_nk, answers_nk, k)
  hits = []
  for row, ok in zip(answers_nk, c):
    keys = [normalize(a) for a in row[:k]]
    win = majority_vote(row[:k], normalize)
    hits.append(False if win is None else bool(ok[keys.index(win)]))
  return float(np.mean(hits))


def weighted_maj_at_k(answers_nk, scores_nk, correct_nk, k: int, normalize: Normalize) -> float:
  """Weighted majority vote: argmax_a sum_{j <= k: a_j = a} s_j over the first k samples, ties to
  the answer seen first, scored like maj_at_k. NaN scores weigh 0."""
  c = _samples(correct_nk, answers_nk, k)
  s = np.nan_to_num(np.asarray(scores_nk, np.float64), nan=0.0)
  hits = []
  for row, w, ok in zip(answers_nk, s, c):
    j = _vote_index([normalize(a) for a in row[:k]], w[:k])
    hits.append(False if j is None else bool(ok[j]))
  return float(np.mean(hits))


def best_of_n(scores_nk, correct_nk, k: int) -> float:
  """Best-of-N / rm@k (Cobbe et al., arXiv 2110.14168; Lightman et al., arXiv 2305.20050): the
  sample with the highest judge score among the first k is scored. Ties: the earliest sample (as
  np.argmax). A NaN score (the judge gave none) never wins over a scored sample; all NaN -> the
  first. Mean over problems."""
  c = _samples(correct_nk, None, k)
  s = np.asarray(scores_nk, np.float64)
  if s.shape != c.shape:
    raise ValueError(f"scores {s.shape} and correct {c.shape} must be equal (N, K) shapes")
  pick = np.argmax(np.where(np.isnan(s[:, :k]), -np.inf, s[:, :k]), axis=1)
  return float(c[np.arange(c.shape[0]), pick].mean())


def _samples(correct_nk, answers_nk, k: int) -> np.ndarray:
  c = np.asarray(correct_nk)
  if c.ndim != 2 or c.shape[0] == 0 or not np.isin(c, (0, 1)).all():
    raise ValueError(f"correct must be (N >= 1, K) booleans, got shape {c.shape}")
  if not 1 <= k <= c.shape[1]:
    raise ValueError(f"k must lie in [1, K={c.shape[1]}], got {k}")
  if answers_nk is not None and (len(answers_nk) != c.shape[0] or any(len(r) != c.shape[1] for r in answers_nk)):
    raise ValueError(f"answers must have shape (N, K) = {c.shape} to match correct")
  return c.astype(bool)


def scaling_curves(correct_nk, ks: Sequence[int], answers_nk=None, scores_nk=None,
                   normalize: Optional[Normalize] = None, n_subsets: Optional[int] = None,
                   seed: int = 0) -> dict[str, list]:
  """Curves over k (§9): {"k", "pass@k"} always, "maj@k" with answers (and normalize), "rm@k" with
  scores, "weighted_maj@k" with both. pass@k is the closed form over all K samples. The others use
  the first k samples of each problem when n_subsets is None (deterministic, nested; how the
  Qwen2.5-Math fixture's maj@k / rm@k are defined), else the mean over n_subsets random size-k
  subsets per point (a random permutation's first k, so the order and the first-seen tie-break are
  random too), drawn with np.random.default_rng(seed). Plot against log2 k."""
  c = np.asarray(correct_nk).astype(bool)
  n, kk = c.shape
  out: dict[str, list] = {"k": list(ks), "pass@k": [pass_at_k_mean(c, k) for k in ks]}
  if answers_nk is not None and normalize is None:
    raise ValueError("maj@k needs a normalize function for the answers")
  ans = None if answers_nk is None else [list(r) for r in answers_nk]
  sc = None if scores_nk is None else np.asarray(scores_nk, np.float64)
  rng = np.random.default_rng(seed)
  perms = [np.arange(kk)[None].repeat(n, 0)] if n_subsets is None else \
      [np.stack([rng.permutation(kk) for _ in range(n)]) for _ in range(n_subsets)]

  def mean_over(fn, k):
    vals = []
    for p in perms:
      cp = np.take_along_axis(c, p, axis=1)
      ap = None if ans is None else [[row[j] for j in pr] for row, pr in zip(ans, p)]
      sp = None if sc is None else np.take_along_axis(sc, p, axis=1)
      vals.append(fn(cp, ap, sp, k))
    return float(np.mean(vals))

  if ans is not None:
    out["maj@k"] = [mean_over(lambda cp, ap, sp, k: maj_at_k(ap, cp, k, normalize), k) for k in ks]
  if sc is not None:
    out["rm@k"] = [mean_over(lambda cp, ap, sp, k: best_of_n(sp, cp, k), k) for k in ks]
  if ans is not None and sc is not None:
    out["weighted_maj@k"] = [mean_over(lambda cp, ap, sp, k: weighted_maj_at_k(ap, sp, cp, k, normalize), k)
                             for k in ks]
  return out
