"""Test-time scaling by sampling on GSM8K: pass@k, maj@k, best-of-k with the model as its own
judge, and judge-weighted majority against k (the curves of EVALUATION.md §9).

n samples per problem at temperature 0.7 (top-p 1); each completion's answer is the number after
the last "answer is", else the last number; correctness by math-verify against the gold. A sample
with no number is wrong and casts no vote (`no_answer_rate`).
  pass@k   Chen et al.'s unbiased estimator over the n samples (arXiv 2107.03374).
  maj@k    majority vote over the first k samples, answers normalised as numbers, ties to the
           answer seen first (bench_metrics.maj_at_k).
  bo@k     best-of-k (rm@k, Cobbe et al. arXiv 2110.14168): the model judges every sample with
           the CriticBench-style prompt of judges.py (CRITIC_PROMPT, greedy) and parse_judgment;
           score 1 for "Judgment: correct", 0 for "incorrect" or an unparsed verdict. The first
           sample with the highest score among the first k is taken (bench_metrics.best_of_n ties
           to the earliest): the first sample judged correct, else sample 1.
  wmaj@k   argmax_a of the summed scores of the first k samples answering a (samples judged
           incorrect weigh 0), ties to the answer seen first; all weights 0 -> the first answer.
  judge_acc (+ _on_correct / _on_incorrect, judge_unparsed_rate): the verdicts against the
           samples' correctness, unparsed read as "incorrect" (its score, 0).
The curves (JSON and PNG) are the result; the table gives k = 1 and k = n. Chance is not defined
for open answers; the greedy accuracy of the same model is the reference. For bo@n it is pass@1: a
judge whose verdicts ignore correctness picks a sample of mean accuracy (with the earliest-tie
rule a constant judge picks sample 1). judge_acc: 50 for a coin. `--subset` sets n (default 8).
"""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

from critjax.eval import bench_data, bench_metrics
from critjax.eval.benches.base import BENCHES, Bench, Result
from critjax.eval.benches.judges import CRITIC_PROMPT, parse_judgment
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


def normalize(ans: str) -> Optional[str]:
  """A number's canonical string ("3.0" -> "3"); None for no answer, which casts no vote."""
  if not ans.strip():
    return None
  try:
    x = float(ans)
  except ValueError:
    return ans.strip()
  return str(int(x)) if x == int(x) else str(x)


@BENCHES.register("scaling")
class Scaling(Bench):
  name = "scaling"
  description = "GSM8K pass@k, maj@k, self-judged best-of-k and weighted maj@k against k (curves)"

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
    judged = gen.generate("scaling_judge", [
        (f"{it.id}#{j}", [{"role": "user", "content": CRITIC_PROMPT.format(question=it.question, solution=t)}])
        for it in items for j, t in enumerate(sampled[it.id])], Sampling(max_new_tokens=max_new))
    verdicts = [[parse_judgment(judged[f"{it.id}#{j}"][0]) for j in range(self.n)] for it in items]
    scores = np.array([[1.0 if v else 0.0 for v in row] for row in verdicts])       # (N, n); unparsed 0
    answers = [[final_answer(t) for t in sampled[it.id]] for it in items]
    with MathVerifier(num_workers=1) as mv:
      golds = [it.answer for it in items for _ in range(self.n)]
      correct, _ = mv.score(golds, ["\\boxed{" + a + "}" for row in answers for a in row])
      g_correct, _ = mv.score([it.answer for it in items],
                              ["\\boxed{" + final_answer(greedy[it.id][0]) + "}" for it in items])
    c = np.asarray(correct).reshape(len(items), self.n) > 0
    ks = [k for k in (1, 2, 4, 8, 16, 32) if k <= self.n]
    if ks[-1] != self.n:
      ks.append(self.n)        # the table's k = n is a point of the curve
    curves = bench_metrics.scaling_curves(c, ks, answers_nk=answers, scores_nk=scores, normalize=normalize)
    curves["bo@k"], curves["wmaj@k"] = curves.pop("rm@k"), curves.pop("weighted_maj@k")
    metrics = {"greedy_acc": 100 * float(np.mean(np.asarray(g_correct) > 0))}
    for name in ("pass@k", "maj@k"):
      metrics[f"{name[:-1]}1"] = 100 * curves[name][0]
      metrics[f"{name[:-1]}{ks[-1]}"] = 100 * curves[name][-1]
    for name in ("bo@k", "wmaj@k"):
      metrics[f"{name[:-1]}{ks[-1]}"] = 100 * curves[name][-1]
    flat = [v for row in verdicts for v in row]
    j = bench_metrics.criticbench_accuracy([v is True for v in flat], c.reshape(-1))
    metrics.update({"judge_acc": 100 * j["acc"], "judge_acc_on_correct": 100 * j["acc_on_correct"],
                    "judge_acc_on_incorrect": 100 * j["acc_on_incorrect"],
                    "judge_unparsed_rate": 100 * float(np.mean([v is None for v in flat])),
                    "no_answer_rate": 100 * float(np.mean([a == "" for row in answers for a in row]))})
    chance = {f"bo@{ks[-1]}": metrics["pass@1"], "judge_acc": 50.0}
    rows = [{"id": it.id, "gold": it.answer, "answers": a, "correct": r.tolist(), "verdicts": v}
            for it, a, r, v in zip(items, answers, c, verdicts)]
    return Result(metrics=metrics, chance=chance, items=rows,
                  curves={n: {"x": ks, "y": [100 * y for y in curves[n]]} for n in ("pass@k", "maj@k", "bo@k", "wmaj@k")})
