"""Calibration by verbalized confidence, with and without a self-critique (CritiCal, Zong et al. 2025,
arXiv 2510.24505), on StrategyQA (yes / no questions).

Stage 1: the model answers, ending with `Answer: yes|no` and `Confidence: X%`. Stage 2: the model
sees its own answer and confidence, critiques the confidence, and states `Confidence: Y%` again
(the answer is kept). An unparsable answer (parse_yes_no) is wrong; an unparsable confidence is filled with the
worst case (critjax/eval/bench_metrics.py::fill_unparsed_confidence) and counted. Metrics:
accuracy, ECE (10 equal bins) and AUROC of the confidence for correctness, parse-failure rate.
Chance: accuracy 50%, AUROC 50 (a confidence unrelated to correctness).
"""
from __future__ import annotations

import re

import numpy as np

from critjax.eval import bench_data, bench_metrics
from critjax.eval.benches.base import BENCHES, Bench, Result
from critjax.eval.generation import Sampling

ANSWER_PROMPT = """Answer the question with yes or no. Think briefly, then end with two lines:
Answer: yes or no
Confidence: a percentage from 0% to 100% that your answer is right

Question: {question}"""

CRITIQUE_PROMPT = """Question: {question}
Proposed answer: {answer}
Stated confidence: {confidence}

Critique this confidence: is it too high or too low, given how sure one can be of the answer? \
Then end with one line "Confidence: X%" giving the confidence you now think is right."""

YES_NO = re.compile(r"answer\s*[:：]\s*\**\s*(yes|no)\b", re.IGNORECASE)
LEADING = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def parse_yes_no(text: str):
  """The last `Answer: yes|no`; failing that, a response that begins with yes or no (a small model
  often answers just "No." and ignores the requested lines); else None."""
  found = YES_NO.findall(text) or LEADING.findall(text)
  return None if not found else found[-1].lower() == "yes"


@BENCHES.register("calibration")
class Calibration(Bench):
  name = "calibration"
  description = "verbalized confidence on StrategyQA: accuracy, ECE, AUROC, before and after a self-critique"

  def load(self, limit, subset):
    return self.take(bench_data.load_strategyqa(), limit, "strategyqa questions")

  def run(self, gen, items, opts) -> Result:
    s = Sampling(max_new_tokens=opts.get("max_new_tokens", 256))
    first = gen.generate("calibration_answer", [(it.id, [{"role": "user", "content": ANSWER_PROMPT.format(
        question=it.question)}]) for it in items], s)
    answers = [parse_yes_no(first[it.id][0]) for it in items]
    conf1 = [bench_metrics.parse_verbalized_confidence(first[it.id][0]) for it in items]
    correct = np.array([a is not None and a == it.answer for a, it in zip(answers, items)])
    crit = gen.generate("calibration_critique", [(it.id, [{"role": "user", "content": CRITIQUE_PROMPT.format(
        question=it.question, answer={True: "yes", False: "no", None: "(none)"}[a],
        confidence="(none)" if c is None else f"{100 * c:.0f}%")}]) for it, a, c in zip(items, answers, conf1)], s)
    conf2 = [bench_metrics.parse_verbalized_confidence(crit[it.id][0]) for it in items]
    metrics = {}
    for tag, conf in (("direct", conf1), ("self_critique", conf2)):
      m = bench_metrics.calibration_metrics(conf, correct)
      metrics.update({f"{tag}/{k}": 100 * v for k, v in m.items()})
    metrics["answer_parse_failure_rate"] = 100 * float(np.mean([a is None for a in answers]))
    chance = {"direct/acc": 50.0, "direct/auroc": 50.0, "self_critique/auroc": 50.0}
    rows = [{"id": it.id, "gold": it.answer, "answer": a, "conf": c1, "conf_after_critique": c2}
            for it, a, c1, c2 in zip(items, answers, conf1, conf2)]
    return Result(metrics=metrics, chance=chance, items=rows)
