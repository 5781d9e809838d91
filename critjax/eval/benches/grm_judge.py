"""Reward-model accuracy of a generative reward model in SPCT's format (DeepSeek-GRM, arXiv
2504.02495; ALGORITHMS.md §6): RM-Bench and JudgeBench judged by a GRM checkpoint with voting.

The model reads the query and two responses in the grm_chat template (principles, a critique, then
`Scores: [[a, b]]`, parsed by critjax.rl.grm_scores.parse_scores: a missing, duplicated, wrongly
counted or out-of-range block is invalid). Each compared pair is judged in both orders, `samples`
times per order (--samples=m, default 1; T = --temperature, default 0.5 when m > 1 as in
SPCT, else greedy): 2m judgments per pair. Voting (SPCT §3.3): each response's score is the sum of
its scores over the valid judgments; the pair is right when the better response's sum is strictly
higher (a tie, or no valid judgment, is wrong).

  rmbench_grm      RM-Bench: every (chosen i, rejected j) of a prompt's 3 x 3, correct[n, i, j] as
                   above; hard / normal / easy / total_avg as reward_models.py's rmbench.
  judgebench_grm   JudgeBench: the label's better response against the other; accuracy, and per source.

Chance: a judge drawing each valid score uniformly from 1..10, independently: the pair is right
with P(S_better > S_other) = (1 - P(S_better = S_other)) / 2 for S a sum of 2m uniform scores
(`voted_chance`, by exact convolution: 45% for one score per side, 46.65% for the two of m = 1).
Reported beside: invalid_rate (share of all judgments) and tie_rate (pairs whose sums are equal).
"""
from __future__ import annotations

import numpy as np

from critjax.data.templates import get_template
from critjax.eval.benches.base import BENCHES, Result
from critjax.eval.benches.reward_models import JudgeBenchPointwise, RMBench, _rmbench_metrics, judgebench_accuracy
from critjax.eval.generation import Sampling
from critjax.rl.grm_scores import SCORE_MAX, SCORE_MIN, parse_scores

TEMPLATE = "grm_chat"


def voted_chance(judgments: int) -> float:
  """P(sum of `judgments` uniform 1..10 scores for one response > the same for the other)."""
  one = np.ones(SCORE_MAX - SCORE_MIN + 1) / (SCORE_MAX - SCORE_MIN + 1)
  dist = np.array([1.0])
  for _ in range(judgments):
    dist = np.convolve(dist, one)
  return float((1.0 - (dist ** 2).sum()) / 2.0)


def _sampling(opts) -> tuple[Sampling, int]:
  m = int(opts.get("samples", 1))
  if m < 1:
    raise ValueError(f"--opt samples={m} must be >= 1")
  t = float(opts.get("temperature", 0.5 if m > 1 else 0.0))
  return Sampling(max_new_tokens=int(opts.get("max_new_tokens", 1024)), temperature=t, num_samples=m), m


def judge_pairs(gen, stage: str, query_pairs, opts) -> dict:
  """query_pairs: [(pair id, query, better, other)] -> per pair id: sums (better, other) over the
  valid judgments of both orders, n_valid, n_judgments, and the raw outputs."""
  s, m = _sampling(opts)
  tpl = get_template(TEMPLATE)
  msg = lambda q, a, b: [{"role": "user", "content": tpl.prompt(q, [a, b])}]
  fwd = gen.generate(f"{stage}_bo", [(pid, msg(q, b, o)) for pid, q, b, o in query_pairs], s)   # better first
  rev = gen.generate(f"{stage}_ob", [(pid, msg(q, o, b)) for pid, q, b, o in query_pairs], s)   # better second
  out = {}
  for pid, _, _, _ in query_pairs:
    sums, valid = np.zeros(2), 0
    for texts, better_at in ((fwd[pid], 0), (rev[pid], 1)):
      for t in texts:
        p = parse_scores(t, 2)
        if p.valid:
          valid += 1
          sums += (p.scores[better_at], p.scores[1 - better_at])
    out[pid] = {"better": float(sums[0]), "other": float(sums[1]), "valid": valid, "judgments": 2 * m,
                "outputs_better_first": fwd[pid], "outputs_better_second": rev[pid]}
  return out


def _right(v: dict) -> bool:
  return v["valid"] > 0 and v["better"] > v["other"]


def _rates(votes: list[dict]) -> dict:
  n = sum(v["judgments"] for v in votes)
  return {"invalid_rate": 100 * (1 - sum(v["valid"] for v in votes) / n),
          "tie_rate": 100 * float(np.mean([v["valid"] > 0 and v["better"] == v["other"] for v in votes]))}


@BENCHES.register("rmbench_grm")
class RMBenchGRM(RMBench):
  name = "rmbench_grm"
  description = "RM-Bench accuracy of a GRM (SPCT format, both orders, voting over --samples per order)"

  def run(self, gen, items, opts) -> Result:
    pid = lambda it, i, j: f"{it.id}/c{i}r{j}"
    votes = judge_pairs(gen, "rmbench_grm", [(pid(it, i, j), it.prompt, it.chosen[i], it.rejected[j])
                                             for it in items for i in range(3) for j in range(3)], opts)
    correct = np.array([[[_right(votes[pid(it, i, j)]) for j in range(3)] for i in range(3)] for it in items],
                       bool).reshape(len(items), 3, 3)
    metrics = _rmbench_metrics(items, correct)
    ch = 100 * voted_chance(2 * _sampling(opts)[1])
    chance = {k: ch for k in metrics}
    metrics.update(_rates(list(votes.values())))
    rows = [{"id": it.id, "domain": it.domain, "correct": correct[n].tolist(),
             "votes": {f"c{i}r{j}": votes[pid(it, i, j)] for i in range(3) for j in range(3)}}
            for n, it in enumerate(items)]
    return Result(metrics=metrics, chance=chance, items=rows)


@BENCHES.register("judgebench_grm")
class JudgeBenchGRM(JudgeBenchPointwise):
  name = "judgebench_grm"
  description = "JudgeBench accuracy of a GRM (SPCT format, both orders, voting over --samples per order)"

  def run(self, gen, items, opts) -> Result:
    pairs = [(it.id, it.question, *((it.response_A, it.response_B) if it.label == "A>B" else
                                    (it.response_B, it.response_A))) for it in items]
    votes = judge_pairs(gen, "judgebench_grm", pairs, opts)
    correct = np.array([_right(votes[it.id]) for it in items], bool)
    metrics = judgebench_accuracy(items, correct)
    ch = 100 * voted_chance(2 * _sampling(opts)[1])
    chance = {k: ch for k in metrics}
    metrics.update(_rates(list(votes.values())))
    rows = [{"id": it.id, "label": it.label, "source_dataset": it.source_dataset, "correct": bool(ok), **votes[it.id]}
            for it, ok in zip(items, correct)]
    return Result(metrics=metrics, chance=chance, items=rows)
