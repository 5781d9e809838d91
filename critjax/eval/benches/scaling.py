"""Test-time scaling by sampling on GSM8K: pass@k and maj@k against k (the curves of §9).

n samples per problem at temperature 0.7 (top-p 1); each completion's answer is the text after
"The answer is" or the last number; correctness by math-verify against the gold. pass@k is Chen et
al.'s unbiased estimator over the n samples; maj@k votes over the first k samples (answers
normalised as numbers). The curve (JSON and PNG) is the result; the table gives k = 1 and k = n.
Chance is not defined for open answers; the greedy accuracy of the same model is the reference.
`--subset` sets n (default 8).
"""
from __future__ import annotations

import re

import numpy as np

from critjax.eval import bench_data, bench_metrics
from critjax.eval.benches.base import BENCHES, Bench, Result
from critjax.eval.generation import Sampling

PROMPT = """Solve the problem step by step. End with "The answer is N." where N is a number.

Problem: {question}"""

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def final_answer(text: str) -> str:
  """The number after the last "answer is", else the last number in the text ('' if none)."""
  low = text.lower()
  i = low.rfind("answer is")
  tail = text[i:] if i >= 0 else text
  nums = NUMBER.findall(tail) if i >= 0 else NUMBER.findall(text)
  if not nums:
    return ""
  return (nums[0] if i >= 0 else nums[-1]).replace(",", "").rstrip(".")


def normalize(ans: str) -> str:
  try:
    x = float(ans)
  except ValueError:
    return ans.strip()
  return str(int(x)) if x == int(x) else str(x)


@BENCHES.register("scaling")
class Scaling(Bench):
  name = "scaling"
  description = "GSM8K pass@k and maj@k against the number of samples k (curves)"

  def load(self, limit, subset):
    self.n = 8 if subset in (None, "all") else int(subset)
    if self.n < 1:
      raise ValueError(f"--subset={subset!r}: the number of samples must be >= 1")
    return self.take(bench_data.load_gsm8k_problems(), limit, "gsm8k test problems")

  def run(self, gen, items, opts) -> Result:
    from critjax.rewards.math_reward import MathVerifier
    max_new = opts.get("max_new_tokens", 384)
    reqs = [(it.id, [{"role": "user", "content": PROMPT.format(question=it.question)}]) for it in items]
    greedy = gen.generate("scaling_greedy", reqs, Sampling(max_new_tokens=max_new))
    sampled = gen.generate("scaling_samples", reqs, Sampling(max_new_tokens=max_new, temperature=0.7,
                                                             num_samples=self.n))
    answers = [[final_answer(t) for t in sampled[it.id]] for it in items]
    with MathVerifier(num_workers=1) as mv:
      golds = [it.answer for it in items for _ in range(self.n)]
      correct, _ = mv.score(golds, ["\\boxed{" + a + "}" for row in answers for a in row])
      g_correct, _ = mv.score([it.answer for it in items],
                              ["\\boxed{" + final_answer(greedy[it.id][0]) + "}" for it in items])
    c = np.asarray(correct).reshape(len(items), self.n) > 0
    ks = [k for k in (1, 2, 4, 8, 16, 32) if k <= self.n]
    curves = bench_metrics.scaling_curves(c, ks, answers_nk=answers, normalize=normalize)
    metrics = {"greedy_acc": 100 * float(np.mean(np.asarray(g_correct) > 0))}
    for name in ("pass@k", "maj@k"):
      metrics[f"{name[:-1]}1"] = 100 * curves[name][0]
      metrics[f"{name[:-1]}{ks[-1]}"] = 100 * curves[name][-1]
    rows = [{"id": it.id, "gold": it.answer, "answers": a, "correct": r.tolist()} for it, a, r in zip(items, answers, c)]
    return Result(metrics=metrics, chance={}, items=rows,
                  curves={n: {"x": ks, "y": [100 * y for y in curves[n]]} for n in ("pass@k", "maj@k")})
