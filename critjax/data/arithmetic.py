"""The toy task: multi-digit addition with a short worked solution, verifiable and learnable on a CPU.

A problem `358+267` is answered column by column, least significant digit first, carrying explicitly:

    prompt      Q: 358+267 =
    completion   8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; A: 625

A small model makes the errors a larger one makes on real math (a dropped carry, a slipped digit),
and each is detectable by re-checking a column, which is what a second attempt can learn to do.
The reward is exact match of the number after `A:`.

Problems are a pure function of (seed, index), so the data position is just an integer: a resumed
run draws the same prompts as an uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np

_ANSWER_RE = re.compile(r"A:\s*(-?\d+)")
FILLER = "sure"                  # one redundant chunk after the answer (filler_max)
_FILLER_SALT = 0xF11E


@dataclasses.dataclass(frozen=True)
class ArithmeticTask:
  min_digits: int = 2
  max_digits: int = 3
  # "Answer, then check" format: ` A: 625 ; check 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; = 625`.
  # The answer is committed before the columns are worked, so a first attempt's answer is often
  # wrong while its own check (ending in the total it computes) is right: an error the attempt
  # itself exposes, fixable by reading the check's total.
  answer_first: bool = False
  # Answer-first only: end the check with the total it computes (`; = 625`). Without it, reading
  # the right answer off a check means assembling it from the columns' last digits.
  check_total: bool = True
  # Redundant words after the answer (` ; A: 625 ; sure ; sure`): the worked solution of a + b ends
  # in filler_count(a, b) in [0, filler_max] chunks of FILLER. They change neither the answer nor
  # the reward, only the length: the length-hacking toy of BRPO (critjax/data/pair_toy.py).
  filler_max: int = 0

  def __post_init__(self):
    if not 1 <= self.min_digits <= self.max_digits:
      raise ValueError(f"task.min_digits={self.min_digits} / task.max_digits={self.max_digits} must satisfy "
                       "1 <= min_digits <= max_digits")
    if self.filler_max < 0 or (self.filler_max and self.answer_first):
      raise ValueError(f"task.filler_max={self.filler_max} must be >= 0, and 0 with task.answer_first=True")

  def problem(self, seed: int, index: int) -> tuple[int, int]:
    rng = np.random.default_rng([seed, index])
    da, db = rng.integers(self.min_digits, self.max_digits + 1, size=2)
    a = int(rng.integers(10 ** (da - 1), 10 ** da))
    b = int(rng.integers(10 ** (db - 1), 10 ** db))
    return a, b

  @staticmethod
  def prompt(a: int, b: int) -> str:
    return f"Q: {a}+{b} ="

  @staticmethod
  def answer(a: int, b: int) -> str:
    return str(a + b)

  def solution(self, a: int, b: int) -> str:
    """The correct worked solution (the completion after the prompt), with its filler if any."""
    return self._layout(self.solution_steps(a, b), a + b) + self.filler(self.filler_count(a, b))

  def filler_count(self, a: int, b: int) -> int:
    """The number of filler chunks in a + b's worked solution: uniform in [0, filler_max], a pure
    function of the problem."""
    return int(np.random.default_rng([a, b, _FILLER_SALT]).integers(0, self.filler_max + 1)) if self.filler_max else 0

  @staticmethod
  def filler(n: int) -> str:
    return f" ; {FILLER}" * n

  @staticmethod
  def solution_steps(a: int, b: int) -> list[str]:
    """The columns, least significant first: ['8+7=15 c1', '5+6+1=12 c1', '3+2+1=6 c0']."""
    da, db = str(a)[::-1], str(b)[::-1]
    carry, steps = 0, []
    for i in range(max(len(da), len(db))):
      x = int(da[i]) if i < len(da) else 0
      y = int(db[i]) if i < len(db) else 0
      s = x + y + carry
      terms = f"{x}+{y}" + (f"+{carry}" if carry else "")
      carry = s // 10
      steps.append(f"{terms}={s} c{carry}")
    return steps

  def _layout(self, steps: list[str], answer: int) -> str:
    if self.answer_first:
      return f" A: {answer} ; check " + " ; ".join(steps) + (f" ; = {answer}" if self.check_total else "")
    return " " + " ; ".join(steps) + f" ; A: {answer}"

  def flawed_solution(self, a: int, b: int, rng: np.random.Generator) -> str:
    """A worked solution with one realistic slip: a dropped carry, or one column's sum off by one.

    Used only for correction demonstrations in the self-correction warm-up (see configs/score.py)."""
    da, db = str(a)[::-1], str(b)[::-1]
    n = max(len(da), len(db))
    col = int(rng.integers(n))
    drop_carry = rng.random() < 0.5
    carry, steps, digits = 0, [], []
    for i in range(n):
      x = int(da[i]) if i < len(da) else 0
      y = int(db[i]) if i < len(db) else 0
      s = x + y + carry
      if i == col and not drop_carry:
        s = s + 1 if (s % 10 != 9 and rng.random() < 0.5) or s == 0 else s - 1
      terms = f"{x}+{y}" + (f"+{carry}" if carry else "")
      carry = s // 10
      if i == col and drop_carry and carry:
        carry = 0
      steps.append(f"{terms}={s} c{carry}")
      digits.append(str(s % 10))
    answer = (str(carry) if carry else "") + "".join(reversed(digits))
    if int(answer) == a + b:  # the slip cancelled out (no carry to drop): shift the last digit
      answer = str(a + b + 1)
    return self._layout(steps, int(answer))

  def misread_solution(self, a: int, b: int, rng: np.random.Generator) -> str:
    """A worked solution that misreads one operand digit of one column (the slip the tiny actor
    makes most: `3+6=9` for the column 3 and 1) and works every column right from there, so the
    answer is wrong. A critic that copies the attempt's columns instead of re-reading the problem
    cannot see it. Critique-RL's toy warm-up can add these (recipe_args.warmup_slips)."""
    da, db = str(a)[::-1], str(b)[::-1]
    n = max(len(da), len(db))
    col, first = int(rng.integers(n)), rng.random() < 0.5
    carry, steps, digits = 0, [], []
    for i in range(n):
      x = int(da[i]) if i < len(da) else 0
      y = int(db[i]) if i < len(db) else 0
      if i == col:
        shift = int(rng.integers(1, 10))
        x, y = ((x + shift) % 10, y) if first else (x, (y + shift) % 10)
      s = x + y + carry
      terms = f"{x}+{y}" + (f"+{carry}" if carry else "")
      carry = s // 10
      steps.append(f"{terms}={s} c{carry}")
      digits.append(str(s % 10))
    answer = int((str(carry) if carry else "") + "".join(reversed(digits)))
    return self._layout(steps, answer)

  def carryless_solution(self, a: int, b: int):
    """The worked solution under one systematic misconception, every carry dropped, or None when the
    sum has no carry (the misconception changes nothing). Deterministic, unlike flawed_solution, so a
    model taught it reproduces it under greedy decoding: ` A: 515 ; check 8+7=15 c0 ; 5+6=11 c0 ; 3+2=5 c0`
    for 358+267. Used for "revise" warm-up episodes (configs/score.py:tiny_premise)."""
    da, db = str(a)[::-1], str(b)[::-1]
    steps, digits = [], []
    for i in range(max(len(da), len(db))):
      x = int(da[i]) if i < len(da) else 0
      y = int(db[i]) if i < len(db) else 0
      steps.append(f"{x}+{y}={x + y} c0")
      digits.append(str((x + y) % 10))
    answer = int("".join(reversed(digits)))
    return None if answer == a + b else self._layout(steps, answer)

  def hasty_solution(self, a: int, b: int, rng: np.random.Generator):
    """Answer-first only: a wrong committed answer followed by a correct check, as (head, check).

    ` A: 615` + ` ; check 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; = 625`. The warm-up trains on the
    check alone (see MultiTurn.warmup_batch): the model learns that a check is worked from the
    digits, not copied from the answer above it, without ever being shown what to do next."""
    if not self.answer_first:
      return None
    total = a + b
    digits = list(str(total))
    i = int(rng.integers(len(digits)))
    d = int(digits[i])
    new = (d + int(rng.choice([-1, 1]))) % 10
    if i == 0 and new == 0 and len(digits) > 1:   # keep the leading digit non-zero
      new = 2 if d == 1 else 1
    digits[i] = str(new)
    _, check = self._layout(self.solution_steps(a, b), total).split(" ; check ", 1)
    return f" A: {''.join(digits)}", " ; check " + check

  @staticmethod
  def extract(completion: str):
    """The final answer string, or None when the completion has no `A: <number>`."""
    m = _ANSWER_RE.search(completion)
    return m.group(1) if m else None

  def reward(self, completion: str, answer: str) -> float:
    """Verifiable reward in {0, 1}: the extracted answer equals the gold answer exactly."""
    got = self.extract(completion)
    return float(got is not None and got.lstrip("0") == answer.lstrip("0"))

  def corpus(self, seed: int, n: int) -> list[str]:
    """Prompt + solution lines: the tokenizer's training text and the supervised warm-up data."""
    return [self.prompt(a, b) + self.solution(a, b) for a, b in (self.problem(seed, i) for i in range(n))]

  @staticmethod
  def steps_of(completion: str) -> list[str]:
    """The column steps of a default-format completion, stripped, without the `A: ...` chunk or
    empty chunks: ' 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; A: 625' -> ['8+7=15 c1', '5+6+1=12 c1', '3+2+1=6 c0']."""
    chunks = (c.strip() for c in completion.split(";"))
    return [c for c in chunks if c and not c.startswith("A:")]

  def first_wrong_step(self, a: int, b: int, completion: str) -> int:
    """ProcessBench's label (arXiv 2412.06559): the index of the completion's first step that differs
    from solution_steps(a, b), -1 when every step matches and none is missing or extra.

    A missing step (the completion stops early) is wrong at the first missing index; an extra step
    beyond the correct count is wrong at its own index."""
    got, want = self.steps_of(completion), self.solution_steps(a, b)
    for i in range(max(len(got), len(want))):
      if i >= len(got) or i >= len(want) or got[i] != want[i]:
        return i
    return -1

  def critique(self, a: int, b: int, completion: str) -> str:
    """The oracle step-level critique, in the terse form VERDICTS['step_level'] parses
    (critjax/rl/verdicts.py): ' 8+7=15 c1 Correct ; 5+6+1=12 c1 Wrong ; 3+2+1=6 c0 Correct ; Final Wrong'
    for 358+267 and the attempt ' 8+7=15 c1 ; 5+6=11 c1 ; 3+2+1=6 c0 ; A: 615'.

    The critic re-works each column (the step's "explanation" in Critique-RL's format, arXiv
    2510.24320, is the re-worked column) and judges the attempt's step against it; a refinement can
    follow the re-worked columns, which is what makes a critique helpful on this task. Step i is
    judged by exact match with the right working (a missing step is Wrong), so after a wrong carry the
    later steps are Wrong too; ProcessBench labels only the first wrong step, which is what
    first_wrong_step returns. Steps beyond the right working's count are not listed, so an attempt
    whose only fault is an extra step parses to first_wrong_step -1 while first_wrong_step says
    otherwise. The final verdict is the reward: the attempt's extracted answer against a + b."""
    got = self.steps_of(completion)
    chunks = [f"{step} {'Correct' if i < len(got) and got[i] == step else 'Wrong'}"
              for i, step in enumerate(self.solution_steps(a, b))]
    chunks.append("Final Correct" if self.reward(completion, self.answer(a, b)) == 1.0 else "Final Wrong")
    return " " + " ; ".join(chunks)

  # --- SPC's step game (critjax/rl/recipes/spc.py): a step is one column of the worked solution ----

  @staticmethod
  def column(a: int, b: int, k: int) -> tuple[int, int, int]:
    """Column k's operand digits and the carry into it (k = 0 the least significant column)."""
    da, db = str(a)[::-1], str(b)[::-1]
    x = int(da[k]) if k < len(da) else 0
    y = int(db[k]) if k < len(db) else 0
    return x, y, ((a % 10 ** k) + (b % 10 ** k)) // 10 ** k

  @staticmethod
  def format_step(x: int, y: int, carry_in: int, total: int, carry_out: int) -> str:
    return f"{x}+{y}" + (f"+{carry_in}" if carry_in else "") + f"={total} c{carry_out}"

  def sneaky_step(self, a: int, b: int, k: int, kind: str, rng: np.random.Generator) -> str:
    """Column k rewritten into a subtly wrong step of one error type (SPC's taxonomy on the toy):

      digit  one operand digit misread (shifted by 1..9) and the column worked right from it: the
             step agrees with itself, only the problem shows the error (`3+5+1=9 c0` for 3+2+1)
      carry  the carry into the column toggled (dropped, or added where none is due) and worked
             right from there: only the previous step shows the error (`3+2=5 c0`)
      sum    the column's sum off by one, its carry following the wrong sum (`3+2+1=7 c0`)

    Every kind moves the final answer by a non-zero multiple of 10^k (|shift| < 10^(k+1)), so a
    completion that trusts the step never recovers a + b: each is a real error by construction."""
    x, y, c = self.column(a, b, k)
    if kind == "digit":
      shift = int(rng.integers(1, 10))
      if rng.random() < 0.5:
        x = (x + shift) % 10
      else:
        y = (y + shift) % 10
    elif kind == "carry":
      c = 1 - c
    elif kind != "sum":
      raise ValueError(f"unknown sneaky error type {kind!r}; expected one of {SNEAKY_KINDS}")
    s = x + y + c
    if kind == "sum":
      s = s + 1 if (s % 10 != 9 and rng.random() < 0.5) or s == 0 else s - 1
    return self.format_step(x, y, c, s, s // 10)

  @staticmethod
  def parse_step(text: str):
    """(stated sum, stated carry) of a column step `x+y[+c]=s cC`, or None when it is not one."""
    m = _STEP_RE.fullmatch(text.strip())
    return None if m is None else (int(m.group(1)), int(m.group(2)))

  def step_success(self, a: int, b: int, k: int, step: str, n: int, slip: float, seed) -> float:
    """Share of n completions that reach a + b from the right steps before column k and `step` as
    column k: the toy's solver for SPC's validity check. A completion trusts the prefix (the stated
    sum's last digit is the answer's digit, the stated carry goes into column k + 1), works the
    remaining columns right except that each slips (sum off by one) with probability `slip`, and
    assembles the answer. Completion i draws its slips from default_rng([*seed, i]), so two calls with
    one seed (the original and the sneaky step) see the same slips. An unparseable step stops the
    solution: no completion succeeds."""
    parsed = self.parse_step(step)
    if parsed is None:
      return 0.0
    stated, carry_k = parsed
    cols = max(len(str(a)), len(str(b)))
    hits = 0
    for i in range(n):
      rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), i])
      value, carry = (a + b) % 10 ** k + (stated % 10) * 10 ** k, carry_k
      for j in range(k + 1, cols):
        x, y, _ = self.column(a, b, j)
        s = x + y + carry
        if rng.random() < slip:
          s = s + 1 if s % 10 != 9 else s - 1
        value += (s % 10) * 10 ** j
        carry = s // 10
      hits += value + carry * 10 ** cols == a + b
    return hits / n


SNEAKY_KINDS = ("digit", "carry", "sum")      # ArithmeticTask.sneaky_step's error types
_STEP_RE = re.compile(r"\d\+\d(?:\+\d)?=(\d+) c(\d)")
