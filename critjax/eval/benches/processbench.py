"""ProcessBench (Zheng et al. 2024, arXiv 2412.06559): find the earliest wrong step of a solution.

The model reads the problem and the solution's steps, each wrapped as <paragraph_i>...</paragraph_i>,
and answers with the 0-based index of the earliest wrong paragraph, or -1 when every step is right,
in \\boxed{}. Extraction as the official `run_eval.py`: the last `\\boxed{([^}]*)}`, `int()`; a
failure is a prediction of None, always wrong (its rate is reported). Greedy decoding.
Metrics per subset (critjax/eval/bench_metrics.py): accuracy on erroneous samples, on correct
samples, and F1, their harmonic mean; the headline is the mean of the subsets' F1.

Chance level: the expected figures of a predictor that picks uniformly among the n + 1 answers
(-1 or a step index) of each item: accuracy 1 / (n + 1) per item, averaged per class.
`--limit N` takes the first ceil(N / subsets) items of each chosen subset in a fixed shuffled order
(seed 0): the files list erroneous solutions first, so a prefix in file order would hold one class.
"""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

from critjax.eval import bench_data, bench_metrics
from critjax.eval.benches.base import BENCHES, Bench, Result, pick_subsets
from critjax.eval.generation import Sampling

SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")

INSTRUCTION = """Below is a math problem and a solution split into numbered paragraphs. Check the \
paragraphs one at a time, in order. Find the first paragraph that contains an error (a wrong \
calculation, a wrong step of logic, or a misreading of the problem). Give its index (the number \
in its tag) in \\boxed{}, for example \\boxed{2}. If every paragraph is correct, give \\boxed{-1}.

Problem:
{problem}

Solution:
{steps}"""

BOXED_INT = re.compile(r"\\boxed\{([^}]*)\}")


def prompt(problem: str, steps: list[str]) -> str:
  tagged = "\n\n".join(f"<paragraph_{i}>\n{s}\n</paragraph_{i}>" for i, s in enumerate(steps))
  return INSTRUCTION.replace("{problem}", problem).replace("{steps}", tagged)


def parse(text: str) -> Optional[int]:
  found = BOXED_INT.findall(text)
  if not found:
    return None
  try:
    return int(found[-1].strip())
  except ValueError:
    return None


@BENCHES.register("processbench")
class ProcessBench(Bench):
  name = "processbench"
  description = "earliest wrong step: acc on erroneous / correct samples, F1 (harmonic mean), per subset"

  def load(self, limit, subset):
    subsets = pick_subsets(subset, SUBSETS, "ProcessBench subset")
    return self.take_per_subset(bench_data.load_processbench, subsets, limit, "processbench")

  def run(self, gen, items, opts) -> Result:
    sampling = Sampling(max_new_tokens=opts.get("max_new_tokens", 1024))
    requests = [(it.id, [{"role": "user", "content": prompt(it.problem, list(it.steps))}]) for it in items]
    out = gen.generate("processbench", requests, sampling)
    rows, metrics, chance = [], {}, {}
    for s in sorted({it.subset for it in items}, key=SUBSETS.index):
      sub = [it for it in items if it.subset == s]
      preds = [parse(out[it.id][0]) for it in sub]
      labels = [it.label for it in sub]
      m = bench_metrics.processbench_metrics(preds, labels)
      metrics.update({f"{s}/{k}": v for k, v in m.items()})
      p_right = np.array([1.0 / (len(it.steps) + 1) for it in sub])
      err = np.array([it.label != -1 for it in sub])
      ce = 100 * p_right[err].mean() if err.any() else float("nan")
      cc = 100 * p_right[~err].mean() if (~err).any() else float("nan")
      chance.update({f"{s}/acc_erroneous": ce, f"{s}/acc_correct": cc,
                     f"{s}/f1": 2 * ce * cc / (ce + cc) if ce + cc > 0 else 0.0})
      rows += [{"id": it.id, "subset": s, "label": it.label, "pred": p, "correct": p == it.label,
                "output": out[it.id][0]} for it, p in zip(sub, preds)]
    f1s = [v for k, v in metrics.items() if k.endswith("/f1")]
    metrics["f1_mean"] = float(np.mean(f1s))
    chance["f1_mean"] = float(np.mean([v for k, v in chance.items() if k.endswith("/f1")]))
    return Result(metrics=metrics, chance=chance, items=rows)
