"""A GRM toy with ground truth: an addition problem and n worked solutions with known wrong steps.

Pointwise GRM examples (DeepSeek-GRM / SPCT, arXiv 2504.02495, ALGORITHMS.md §6) on the arithmetic
task (critjax/data/arithmetic.py, default format only). Each response is the task's own worked
solution with `wrong` of its columns slipped: the column's sum off by one, its carry kept, so the
next column is worked right and exactly those steps differ from solution_steps (first_wrong_step
style: position by position); the answer is read off the stated digits, so it is wrong whenever a
step is. Example for 358+267, n = 2:

    responses  ' 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; A: 625'    wrong 0
               ' 8+7=15 c1 ; 5+6+1=13 c1 ; 3+2+1=6 c0 ; A: 635'    wrong 1
    best       0 (fewest wrong steps; unique by construction: the others have more)

Wrong counts: the best response is right with probability `right_fraction`, else it has 1..c-1 wrong
steps (c columns); every other response has more than the best, up to c. For n = 1 the response is
right with probability `right_fraction`, else it has 1..c wrong steps, and `label` is its score.

Scores (the label for n = 1, and the oracle's score for every response): label_score(w, c) =
10 - (9 * w) // c, so 10 when right, 1 when every column is wrong, and strictly decreasing in w for
c <= 9 (for c = 3: 10, 7, 4, 1). The best response's oracle score is therefore strictly highest.

Oracle trajectory (the supervised warm-up target; `principles=False` drops the principles, the
paper's "no principle generation" ablation):

    ' P: check 3 columns ; 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; R1: ok ok ok ; R2: ok bad ok ;
      Scores: [[10, 7]]'

The principle is query-specific (the column count that sets the score scale); the critique re-works
each column once (the same right working judges every response) and marks each response's steps
against it, in order; the scores line is critjax.rl.grm_scores's format. Written once instead of per
response to fit the tiny model's context.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from critjax.data.arithmetic import ArithmeticTask
from critjax.rl.grm_scores import SCORE_MAX, SCORE_MIN, format_scores

MAX_RESPONSES = 4
OK, BAD = "ok", "bad"              # the oracle critique's marks for a step
_SALT = 0x6752                     # keeps the GRM draws apart from the task's problem draws


def label_score(wrong: int, columns: int) -> int:
  """The score of a response with `wrong` of `columns` steps wrong: 10 - (9 * wrong) // columns."""
  if not 1 <= columns <= SCORE_MAX - SCORE_MIN:
    raise ValueError(f"columns={columns} must be in [1, 9] for distinct scores per wrong-step count")
  wrong = min(max(wrong, 0), columns)
  return SCORE_MAX - ((SCORE_MAX - SCORE_MIN) * wrong) // columns


def wrong_steps(task: ArithmeticTask, a: int, b: int, completion: str) -> int:
  """How many of the completion's steps differ from solution_steps(a, b), position by position; a
  missing or extra step counts as wrong (first_wrong_step's comparison, counted instead of located)."""
  got, want = task.steps_of(completion), task.solution_steps(a, b)
  return sum(i >= len(got) or i >= len(want) or got[i] != want[i] for i in range(max(len(got), len(want))))


@dataclasses.dataclass(frozen=True)
class GRMExample:
  """One GRM item. `responses` in shown order; `wrong[i]` its wrong steps; `best` the 0-based index
  of the unique fewest-wrong response (None for n = 1); `label` the n = 1 label score (else None)."""
  a: int
  b: int
  responses: tuple[str, ...]
  wrong: tuple[int, ...]
  best: Optional[int]
  label: Optional[int]

  @property
  def problem(self) -> str:
    return f"{self.a}+{self.b}"


@dataclasses.dataclass(frozen=True)
class GRMToy:
  """GRM examples and oracle trajectories on `task`; an example is a pure function of (seed, index)."""
  task: ArithmeticTask = ArithmeticTask()
  n_responses: int = 2
  right_fraction: float = 0.5

  def __post_init__(self):
    if not 1 <= self.n_responses <= MAX_RESPONSES:
      raise ValueError(f"n_responses={self.n_responses} must be in [1, {MAX_RESPONSES}]")
    if not 0.0 <= self.right_fraction <= 1.0:
      raise ValueError(f"right_fraction={self.right_fraction} must be in [0, 1]")
    if self.task.answer_first:
      raise ValueError("task.answer_first=True: the GRM toy reads default-format solutions (steps, then A:)")
    if self.task.max_digits > SCORE_MAX - SCORE_MIN:
      raise ValueError(f"task.max_digits={self.task.max_digits} must be <= 9 for distinct label scores")

  def slipped_solution(self, a: int, b: int, columns, rng: np.random.Generator) -> str:
    """The worked solution with each column in `columns` slipped: its sum off by one (up or down,
    never across a ten, so its carry is right), the answer read off the stated digits."""
    steps, digits, carry = [], [], 0
    for k in range(max(len(str(a)), len(str(b)))):
      x, y, c = self.task.column(a, b, k)
      s = x + y + c
      if k in columns:
        s += int(rng.choice([d for d in (-1, 1) if (s + d) // 10 == s // 10 and s + d >= 0]))
      carry = (x + y + c) // 10
      steps.append(self.task.format_step(x, y, c, s, carry))
      digits.append(str(s % 10))
    answer = int((str(carry) if carry else "") + "".join(reversed(digits)))
    return self.task._layout(steps, answer)     # the actor's own layout: ' 8+7=15 c1 ; ... ; A: 625'

  def example(self, seed: int, index: int) -> GRMExample:
    a, b = self.task.problem(seed, index)
    return self.example_for(a, b, np.random.default_rng([seed, index, _SALT]))

  def example_for(self, a: int, b: int, rng: np.random.Generator) -> GRMExample:
    """The GRM item of problem a + b, its responses drawn from `rng`."""
    c, n = max(len(str(a)), len(str(b))), self.n_responses
    right = rng.random() < self.right_fraction
    if n == 1:
      wrong = [0 if right else int(rng.integers(1, c + 1))]
    else:
      w0 = 0 if right or c == 1 else int(rng.integers(1, c))
      wrong = [w0] + [int(rng.integers(w0 + 1, c + 1)) for _ in range(n - 1)]
    order = rng.permutation(n)                  # the best shown at a random position
    wrong = [wrong[i] for i in order]
    responses = [self.slipped_solution(a, b, set(rng.choice(c, w, replace=False).tolist()), rng) for w in wrong]
    if n >= 2 and sorted(wrong)[0] == sorted(wrong)[1]:
      raise AssertionError(f"GRM toy example ({seed}, {index}): tied fewest wrong steps {wrong}")
    return GRMExample(a=a, b=b, responses=tuple(responses), wrong=tuple(wrong),
                      best=int(np.argmin(wrong)) if n >= 2 else None,
                      label=label_score(wrong[0], c) if n == 1 else None)

  def examples(self, seed: int, start: int, count: int) -> list[GRMExample]:
    return [self.example(seed, i) for i in range(start, start + count)]

  def oracle_trajectory(self, a: int, b: int, responses, principles: bool = True) -> str:
    """The task-made GRM trajectory for (a, b) and any default-format `responses` (module docstring).
    Scores are label_score of each response's wrong_steps, so on a toy example the best response
    scores strictly highest; on arbitrary responses two may tie."""
    want = self.task.solution_steps(a, b)
    c = len(want)
    chunks = [f"P: check {c} columns"] if principles else []
    chunks += want
    for i, response in enumerate(responses):
      got = self.task.steps_of(response)
      marks = [OK if j < len(got) and j < c and got[j] == want[j] else BAD for j in range(max(len(got), c))]
      chunks.append(f"R{i + 1}: " + " ".join(marks))
    scores = [label_score(wrong_steps(self.task, a, b, r), c) for r in responses]
    return " " + " ; ".join(chunks) + " ; " + format_scores(scores)
