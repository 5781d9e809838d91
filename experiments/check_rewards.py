"""Measured checks of the maths reward (issue 5): GSM8K agreement with OpenAI's labels, MATH500.

  .venv/bin/python experiments/check_rewards.py [--workers 2] [--timeout_s 5]

(a) The 1,319 GSM8K test problems in `gsm8k/example_model_solutions.jsonl` each carry four model
    solutions (6B / 175B, fine-tuned / verifier-selected) labelled `is_correct`: 5,276 items.
    The reward scores each against the gold (the 'A: X' line closing `ground_truth`); goal: at
    least 99.5% agreement with the labels. Throughput counts the pool's wall time only.
(b) MATH500: each reference solution must score 1 against its own answer (500/500), and the same
    solution with its last \\boxed{} answer perturbed must score 0 (500/500). The perturbation
    raises the answer's first digit by one (mod 10) -- '\\frac{1}{2}' -> '\\frac{2}{2}',
    '(3, ...)' -> '(4, ...)' -- or, for an answer with no digit, appends '+1'.
Prints one JSON summary. Expected (2-core CPU, 2 workers): agreement 5276/5276, 500/500, 500/500.
"""
import argparse
import json
import re
import time

from critjax.data.datasets import iter_jsonl, load_math500
from critjax.data.paths import data_path
from critjax.rewards.math_reward import MathVerifier

MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def gsm8k_items():
  golds, preds, labels = [], [], []
  path = data_path("gsm8k", "example_model_solutions.jsonl")
  for lineno, rec in iter_jsonl(path):
    m = re.search(r"A:\s*(.+?)\s*$", rec["ground_truth"])
    if m is None:
      raise ValueError(f"{path}:{lineno}: ground_truth has no closing 'A: X' line")
    for k in MODELS:
      golds.append(m.group(1))
      preds.append(rec[k]["solution"])
      labels.append(bool(rec[k]["is_correct"]))
  return golds, preds, labels


def perturb(answer):
  m = re.search(r"\d", answer)
  if m:
    return answer[:m.start()] + str((int(m.group()) + 1) % 10) + answer[m.end():]
  return answer + "+1"


def replace_last_boxed(solution, new):
  start = solution.rfind("\\boxed{") + len("\\boxed{")
  depth, k = 1, start
  while depth:
    depth += {"{": 1, "}": -1}.get(solution[k], 0)
    k += 1
  return solution[:start] + new + solution[k - 1:]


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--workers", type=int, default=2)
  ap.add_argument("--timeout_s", type=float, default=5.0)
  args = ap.parse_args()
  t_all = time.perf_counter()
  with MathVerifier(num_workers=args.workers, timeout_s=args.timeout_s) as verifier:
    verifier.score(["1"], ["1"])  # start the workers outside the timed runs
    golds, preds, labels = gsm8k_items()
    scores, stats = verifier.score(golds, preds)
    agree = sum(bool(s) == lab for s, lab in zip(scores, labels))
    gsm8k = {"items": len(labels), "agree": agree, "agreement": agree / len(labels),
             "reward_1": int(scores.sum()), "labelled_correct": sum(labels),
             "timeouts": stats["timeouts"], "errors": stats["errors"],
             "seconds": round(stats["seconds"], 2),
             "items_per_s": round(len(labels) / stats["seconds"], 1)}

    exs = load_math500()
    golds = [e.answer for e in exs]
    own, s_own = verifier.score(golds, [e.meta["solution"] for e in exs])
    bad, s_bad = verifier.score(
        golds, [replace_last_boxed(e.meta["solution"], perturb(e.answer)) for e in exs])
    math500 = {"items": len(exs), "reference_scores_1": int(own.sum()),
               "perturbed_scores_0": int((bad == 0).sum()),
               "reference_failures": [e.id for e, s in zip(exs, own) if s != 1],
               "perturbed_failures": [e.id for e, s in zip(exs, bad) if s != 0],
               "timeouts": s_own["timeouts"] + s_bad["timeouts"],
               "items_per_s": round(2 * len(exs) / (s_own["seconds"] + s_bad["seconds"]), 1)}
  print(json.dumps({"workers": args.workers, "timeout_s": args.timeout_s, "gsm8k": gsm8k,
                    "math500": math500, "wall_s": round(time.perf_counter() - t_all, 1)},
                   indent=1))


if __name__ == "__main__":
  main()
