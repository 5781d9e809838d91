"""Oracle step-level critiques on the arithmetic task (ArithmeticTask.steps_of / first_wrong_step /
critique) against hand-written strings, and their agreement with VERDICTS['step_level']."""
from __future__ import annotations

import numpy as np
import pytest

from critjax.data.arithmetic import ArithmeticTask
from critjax.rl.verdicts import VERDICTS

TASK = ArithmeticTask()
parse = VERDICTS.get("step_level")

# 358 + 267 = 625; right working: 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0
CASES = [
    # (name, completion, expected critique, expected first_wrong_step, expected final)
    ("correct", " 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; A: 625",
     " 8+7=15 c1 Correct ; 5+6+1=12 c1 Correct ; 3+2+1=6 c0 Correct ; Final Correct", -1, True),
    ("carry dropped in column 1", " 8+7=15 c1 ; 5+6=11 c1 ; 3+2+1=6 c0 ; A: 615",
     " 8+7=15 c1 Correct ; 5+6+1=12 c1 Wrong ; 3+2+1=6 c0 Correct ; Final Wrong", 1, False),
    ("carry dropped in column 0", " 8+7=15 c0 ; 5+6=11 c1 ; 3+2+1=6 c0 ; A: 615",
     " 8+7=15 c1 Wrong ; 5+6+1=12 c1 Wrong ; 3+2+1=6 c0 Correct ; Final Wrong", 0, False),
    ("wrong last column", " 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=7 c0 ; A: 725",
     " 8+7=15 c1 Correct ; 5+6+1=12 c1 Correct ; 3+2+1=6 c0 Wrong ; Final Wrong", 2, False),
    ("right columns, wrong last digit of the answer", " 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; A: 624",
     " 8+7=15 c1 Correct ; 5+6+1=12 c1 Correct ; 3+2+1=6 c0 Correct ; Final Wrong", -1, False),
    ("truncated mid-step, no A:", " 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2",
     " 8+7=15 c1 Correct ; 5+6+1=12 c1 Correct ; 3+2+1=6 c0 Wrong ; Final Wrong", 2, False),
    ("truncated after a step, no A:", " 8+7=15 c1 ;",
     " 8+7=15 c1 Correct ; 5+6+1=12 c1 Wrong ; 3+2+1=6 c0 Wrong ; Final Wrong", 1, False),
    ("empty", "",
     " 8+7=15 c1 Wrong ; 5+6+1=12 c1 Wrong ; 3+2+1=6 c0 Wrong ; Final Wrong", 0, False),
]


def test_steps_of():
  assert ArithmeticTask.steps_of(" 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; A: 625") == [
      "8+7=15 c1", "5+6+1=12 c1", "3+2+1=6 c0"]
  assert ArithmeticTask.steps_of(" 8+7=15 c1 ;  ; 5+6 ") == ["8+7=15 c1", "5+6"]
  assert ArithmeticTask.steps_of(" A: 625") == []
  assert ArithmeticTask.steps_of("") == []
  assert ArithmeticTask.steps_of(" ; ; A: 3") == []


@pytest.mark.parametrize("name,completion,critique,first_wrong,final", CASES, ids=[c[0] for c in CASES])
def test_oracle_critique_and_parse(name, completion, critique, first_wrong, final):
  assert TASK.critique(358, 267, completion) == critique
  assert TASK.first_wrong_step(358, 267, completion) == first_wrong
  v = parse(critique)
  assert v.final is final
  assert v.first_wrong_step == first_wrong
  assert v.final == (TASK.reward(completion, "625") == 1.0)


def test_uneven_digits_and_final_carry():
  # 95 + 17 = 112: 5+7=12 c1 ; 9+1+1=11 c1 (the final carry is the answer's leading digit, no step).
  assert TASK.critique(95, 17, " 5+7=12 c1 ; 9+1+1=11 c1 ; A: 112") == \
      " 5+7=12 c1 Correct ; 9+1+1=11 c1 Correct ; Final Correct"
  # 45 + 7 = 52: 5+7=12 c1 ; 4+0+1=5 c0
  assert TASK.critique(45, 7, " 5+7=12 c1 ; 4+0=4 c0 ; A: 42") == \
      " 5+7=12 c1 Correct ; 4+0+1=5 c0 Wrong ; Final Wrong"
  assert TASK.first_wrong_step(45, 7, " 5+7=12 c1 ; 4+0=4 c0 ; A: 42") == 1


def test_extra_step():
  # An extra step is wrong at its own index; the critique lists only the right working's steps,
  # so its parse says -1 here (documented in ArithmeticTask.critique).
  completion = " 5+7=12 c1 ; 9+1+1=11 c1 ; 0+0+1=1 c0 ; A: 112"
  assert TASK.first_wrong_step(95, 17, completion) == 2
  critique = TASK.critique(95, 17, completion)
  assert critique == " 5+7=12 c1 Correct ; 9+1+1=11 c1 Correct ; Final Correct"
  assert parse(critique).first_wrong_step == -1


def test_parse_agrees_with_oracle_on_generated_attempts():
  rng = np.random.default_rng(0)
  for i in range(40):
    a, b = TASK.problem(0, i)
    for completion in (TASK.solution(a, b), TASK.flawed_solution(a, b, rng)):
      v = parse(TASK.critique(a, b, completion))
      assert v.final == (TASK.reward(completion, TASK.answer(a, b)) == 1.0)
      assert v.first_wrong_step == TASK.first_wrong_step(a, b, completion)
      assert len(v.steps) == len(TASK.solution_steps(a, b))


def test_misread_solution_misreads_one_digit_and_works_the_rest():
  """358+267 with the first operand's tens digit misread: every column worked right from the misread
  digits, so the answer is wrong and the oracle marks the misread column and what follows it."""
  import numpy as np
  from critjax.data.arithmetic import ArithmeticTask
  task = ArithmeticTask()
  for seed in range(30):
    got = task.misread_solution(358, 267, np.random.default_rng(seed))
    steps = ArithmeticTask.steps_of(got)
    assert len(steps) == 3 and task.extract(got) != "625"
    wrong = task.first_wrong_step(358, 267, got)
    assert wrong >= 0 and all(s == r for s, r in zip(steps[:wrong], task.solution_steps(358, 267)))
    x, y = (int(t) for t in steps[wrong].split("=")[0].split("+")[:2])   # the misread column's operands
    assert (x, y) != (int("853"[wrong]), int("762"[wrong]))
    assert "Wrong" in task.critique(358, 267, got) and task.critique(358, 267, got).endswith("Final Wrong")
