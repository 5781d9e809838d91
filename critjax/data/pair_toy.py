"""BRPO's length-hacking toy: preference pairs on the arithmetic task where a scalar reward model can
learn length instead of correctness, and a pairwise judge that compares correctness first.

Writing-Zero (arXiv 2506.00103, ALGORITHMS.md §7) reports that a policy trained by GRPO against a
scalar reward model grows long (1,872 against 1,292 tokens, mostly redundant self-explanation) and
hacks the RM, while BRPO with a pairwise generative judge does not. The toy builds that setting
with known ground truth. Responses are the arithmetic task's worked solutions (right, or with 1..c
columns slipped, critjax.data.grm_toy.GRMToy.slipped_solution), each ending in n chunks of filler
(`' ; sure'`, ArithmeticTask.filler), which change nothing but the length:

  rm_pair        the scalar RM's training pair, confounded: chosen is right with n_c in [1, F]
                 filler chunks, rejected is wrong with n_r in [0, n_c - 1]; the preferred answer is
                 always also the longer one, as in preference data whose raters favour long answers.
  unconfounded   the held-out check of what the RM learned: chosen right and shorter than the
                 wrong rejected (n_c < n_r); an RM that learned correctness keeps its accuracy here,
                 one that learned length falls below chance.
  judge_item     the pairwise judge's training item: two responses whose fillers are drawn
                 independently of correctness (uniform in [0, F]), so length carries no preference;
                 decisive items (one right, one wrong, at a uniform position) for its RL, and for
                 its supervised warm-up also ties (both right or both wrong), which it meets in
                 BRPO whenever a rollout and the reference agree.

The judge is reference-guided (templates.GRM_PAIR_ARITH shows the gold answer): a 2-core CPU cannot
train a tiny judge to verify additions from scratch (the pointwise GRM toy stayed at chance,
BENCHMARKS.md), and the toy's question is what the policy does under each reward, not whether a
tiny judge can do arithmetic. It is shown each response from its answer on (the template's
answer_view: `R1: A: 625 ; sure ; sure`, the toy's one design change, BENCHMARKS.md). Its oracle
trajectory reads each response's answer against the reference and scores right 10 and wrong 1
(ties tie):

    ' R1: A: 625 ok ; R2: A: 635 bad ; Scores: [[10, 1]]'

F = the task's filler_max. Items are pure functions of (a, b, rng).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from critjax.data.arithmetic import ArithmeticTask
from critjax.data.grm_toy import BAD, OK, GRMToy
from critjax.rl.grm_scores import SCORE_MAX, SCORE_MIN, format_scores


@dataclasses.dataclass(frozen=True)
class PairToy:
  task: ArithmeticTask

  def __post_init__(self):
    if self.task.filler_max < 1:
      raise ValueError(f"task.filler_max={self.task.filler_max}: the length-hacking toy needs filler_max >= 1")
    if self.task.answer_first:
      raise ValueError("task.answer_first=True: the pair toy reads default-format solutions (steps, then A:)")

  def response(self, a: int, b: int, right: bool, filler: int, rng: np.random.Generator) -> str:
    """A worked solution of a + b (right, or 1..c columns slipped) ending in `filler` filler chunks."""
    if right:
      body = self.task._layout(self.task.solution_steps(a, b), a + b)
    else:
      c = len(self.task.solution_steps(a, b))
      wrong = int(rng.integers(1, c + 1))
      body = GRMToy(task=self.task).slipped_solution(a, b, set(rng.choice(c, wrong, replace=False).tolist()), rng)
    return body + self.task.filler(filler)

  def rm_pair(self, a: int, b: int, rng: np.random.Generator) -> tuple[str, str]:
    """(chosen, rejected), confounded: chosen right and strictly longer (module docstring)."""
    f = self.task.filler_max
    n_c = int(rng.integers(1, f + 1))
    n_r = int(rng.integers(0, n_c))
    return self.response(a, b, True, n_c, rng), self.response(a, b, False, n_r, rng)

  def unconfounded_pair(self, a: int, b: int, rng: np.random.Generator) -> tuple[str, str]:
    """(chosen, rejected) with the right answer strictly shorter than the wrong one."""
    f = self.task.filler_max
    n_r = int(rng.integers(1, f + 1))
    n_c = int(rng.integers(0, n_r))
    return self.response(a, b, True, n_c, rng), self.response(a, b, False, n_r, rng)

  def judge_item(self, a: int, b: int, rng: np.random.Generator, ties: bool = False):
    """(responses (2,), preferred: 0 | 1 | None for a tie). Decisive unless `ties`, when a quarter
    of the items are both right and a quarter both wrong."""
    u = rng.random() if ties else 0.0
    right = [True, False] if u < 0.5 else ([True, True] if u < 0.75 else [False, False])
    if right[0] != right[1] and rng.random() < 0.5:
      right = right[::-1]
    f = self.task.filler_max
    responses = tuple(self.response(a, b, r, int(rng.integers(0, f + 1)), rng) for r in right)
    preferred = None if right[0] == right[1] else right.index(True)
    return responses, preferred

  def oracle_trajectory(self, a: int, b: int, responses) -> str:
    """The reference-guided judgment of `responses` (any completions): each one's answer, marked
    against a + b, then the scores (right SCORE_MAX, wrong or unanswered SCORE_MIN)."""
    gold = str(a + b)
    chunks, scores = [], []
    for i, r in enumerate(responses):
      got = self.task.extract(r)
      right = got is not None and got.lstrip("0") == gold.lstrip("0")
      chunks.append(f"R{i + 1}: A: {got if got is not None else 'none'} {OK if right else BAD}")
      scores.append(SCORE_MAX if right else SCORE_MIN)
    return " " + " ; ".join(chunks) + " ; " + format_scores(scores)
