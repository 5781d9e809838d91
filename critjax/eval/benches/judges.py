"""Critique and judging benchmarks with a verdict to parse: CriticBench-style critique accuracy on
labelled model solutions, and JudgeBench pairwise accuracy (both orders).

CriticBench-style (Luo et al. 2023, arXiv 2310.04815): the critic reads a GSM8K question and a model
solution (OpenAI's labelled 6B / 175B solutions, `gsm8k/example_model_solutions.jsonl`), writes an
analysis and ends with `Judgment: correct` or `Judgment: incorrect`; the last such line is the
verdict, a missing one counts wrong (its rate reported). Chance: 50% for a coin; the majority-class
rate is reported beside it. `--limit N` takes N items in the file's order of problems, one
generator's solution each (generators taken in turn), so the correct / incorrect mix is the file's.

JudgeBench (Tan et al. 2024, arXiv 2410.12784): the judge sees a question and two responses and
answers `[[A]]` or `[[B]]` (or `[[C]]` for a tie); each pair is judged in both orders and scored by
the upstream rule (critjax/eval/bench_metrics.py::judgebench_pair_correct). Chance: 25% (a coin
per order: the pair counts only when both orders are right), and 0% for a judge that always
names the first position.
"""
from __future__ import annotations

import re

import numpy as np

from critjax.eval import bench_data, bench_metrics
from critjax.eval.benches.base import BENCHES, Bench, Result, pick_subsets, check_limit
from critjax.eval.generation import Sampling

CRITIC_PROMPT = """Here is a math question and a proposed solution. Check the solution step by \
step. Then, on the last line, write "Judgment: correct" if the final answer is right, or \
"Judgment: incorrect" if it is not.

Question: {question}

Proposed solution:
{solution}"""

JUDGMENT = re.compile(r"judgment\s*[:：]\s*\**\s*(correct|incorrect|wrong|right)", re.IGNORECASE)


def parse_judgment(text: str):
  """True (correct), False (incorrect) or None: the last `Judgment: X` in the text."""
  found = JUDGMENT.findall(text)
  return None if not found else found[-1].lower() in ("correct", "right")


@BENCHES.register("criticbench")
class CriticBenchStyle(Bench):
  name = "criticbench"
  description = "critique accuracy on GSM8K model solutions labelled correct / incorrect (CriticBench-style)"

  def load(self, limit, subset):
    check_limit(limit)     # before reading four files
    gens = pick_subsets(subset, bench_data.GSM8K_GENERATORS, "GSM8K solution generator")
    by_gen = {g: bench_data.load_gsm8k_solutions(g) for g in gens}
    n = len(next(iter(by_gen.values())))
    items = [by_gen[gens[i % len(gens)]][i] for i in range(n)]    # one solution per problem, in turn
    return self.take(items, limit, "criticbench items")

  def run(self, gen, items, opts) -> Result:
    s = Sampling(max_new_tokens=opts.get("max_new_tokens", 512))
    out = gen.generate("criticbench", [(it.id, [{"role": "user", "content": CRITIC_PROMPT.format(
        question=it.question, solution=it.solution)}]) for it in items], s)
    verdicts = [parse_judgment(out[it.id][0]) for it in items]
    labels = np.array([it.correct for it in items])
    m = bench_metrics.criticbench_accuracy(verdicts, labels)
    metrics = {k: 100 * v for k, v in m.items()}
    major = 100 * max(labels.mean(), 1 - labels.mean())
    chance = {"acc": 50.0, "acc_majority_class": major}
    rows = [{"id": it.id, "label": bool(it.correct), "verdict": v, "output": out[it.id][0]}
            for it, v in zip(items, verdicts)]
    return Result(metrics=metrics, chance=chance, items=rows)


JUDGE_PROMPT = """Which response answers the question better? Judge which one is correct. End with \
[[A]] if Response A is better, [[B]] if Response B is better, or [[C]] for a tie.

Question: {question}

[Response A]
{a}

[Response B]
{b}"""

PAIR_VERDICT = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def parse_pair(text: str):
  found = PAIR_VERDICT.findall(text)
  return None if not found else {"A": "A>B", "B": "B>A", "C": "A=B"}[found[-1]]


@BENCHES.register("judgebench")
class JudgeBench(Bench):
  name = "judgebench"
  description = "pairwise judge accuracy, both orders (JudgeBench's rule), position-flip rate"

  def load(self, limit, subset):
    items = bench_data.load_judgebench(pick_subsets(subset, bench_data.JUDGEBENCH_MODELS, "JudgeBench response model"))
    return self.take(items, limit, "judgebench pairs")

  def run(self, gen, items, opts) -> Result:
    s = Sampling(max_new_tokens=opts.get("max_new_tokens", 512))
    msg = lambda it, a, b: [{"role": "user", "content": JUDGE_PROMPT.format(question=it.question, a=a, b=b)}]
    ab = gen.generate("judgebench_ab", [(it.id, msg(it, it.response_A, it.response_B)) for it in items], s)
    ba = gen.generate("judgebench_ba", [(it.id, msg(it, it.response_B, it.response_A)) for it in items], s)
    v_ab = [parse_pair(ab[it.id][0]) for it in items]
    v_ba = [parse_pair(ba[it.id][0]) for it in items]
    m = bench_metrics.judgebench_metrics([it.label for it in items], v_ab, v_ba)
    metrics = {k: 100 * float(v) for k, v in m.items() if k != "n"}     # rates, in percent
    rows = [{"id": it.id, "label": it.label, "ab": x, "ba": y,
             "correct": bench_metrics.judgebench_pair_correct(it.label, x, y)} for it, x, y in zip(items, v_ab, v_ba)]
    return Result(metrics=metrics, chance={"accuracy": 25.0}, items=rows)
