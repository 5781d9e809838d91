"""Tasks: deterministic problem streams, the toy reward, and the real datasets wired to their rewards."""
import numpy as np
import pytest

from critjax.config import TaskConfig
from critjax.data.arithmetic import ArithmeticTask
from critjax.data.tasks import make_task


def test_worked_solution_by_hand():
  assert ArithmeticTask().solution(358, 267) == " 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; A: 625"
  assert ArithmeticTask().solution(95, 7) == " 5+7=12 c1 ; 9+0+1=10 c1 ; A: 102"


def test_answer_first_format_by_hand():
  """Answer committed first, then the worked check; the reward reads the committed answer."""
  task = ArithmeticTask(answer_first=True)
  assert task.solution(358, 267) == " A: 625 ; check 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; = 625"
  # a hasty answer beside a correct check: the reward reads the committed answer, not the total
  assert task.reward(" A: 615 ; check 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; = 625", "625") == 0.0
  assert task.reward(task.solution(95, 7), "102") == 1.0
  no_total = ArithmeticTask(answer_first=True, check_total=False)
  assert no_total.solution(95, 7) == " A: 102 ; check 5+7=12 c1 ; 9+0+1=10 c1"
  cfg_task = make_task(TaskConfig(answer_first=True))
  p = cfg_task.problems(0, 0, 1)[0]
  assert p.solution.startswith(f" A: {p.answer} ; check ")


@pytest.mark.parametrize("check_total", [True, False])
def test_hasty_solutions_pair_a_wrong_answer_with_the_right_check(check_total):
  task = ArithmeticTask(1, 3, answer_first=True, check_total=check_total)
  rng = np.random.default_rng(0)
  for i in range(200):
    a, b = task.problem(0, i)
    head, check = task.hasty_solution(a, b, rng)
    digits = head.removeprefix(" A: ")
    assert int(digits) != a + b and len(digits) == len(str(a + b)) and (digits == "0" or digits[0] != "0")
    assert head + check != task.solution(a, b) and check == task.solution(a, b).split(str(a + b), 1)[1]
  assert ArithmeticTask().hasty_solution(12, 34, rng) is None      # only the answer-first format has one


def test_carryless_solutions_by_hand():
  """The misconception (every carry dropped) is deterministic and absent where nothing carries."""
  task = ArithmeticTask(1, 3, answer_first=True, check_total=False)
  assert task.carryless_solution(358, 267) == " A: 515 ; check 8+7=15 c0 ; 5+6=11 c0 ; 3+2=5 c0"
  assert task.carryless_solution(95, 7) == " A: 92 ; check 5+7=12 c0 ; 9+0=9 c0"
  assert task.carryless_solution(12, 34) is None                   # no carry: nothing to get wrong
  assert ArithmeticTask().carryless_solution(58, 7) == " 8+7=15 c0 ; 5+0=5 c0 ; A: 55"
  # the toy warm-up builder (critjax/data/toy_warmup.py) revises with exactly this rework
  import numpy as np
  from critjax.data.toy_warmup import make_builder
  task_api = make_task(TaskConfig(min_digits=1, max_digits=3, answer_first=True, check_total=False))
  build = make_builder("toy_mix", dict(revise_fraction=1.0, revise_error="misconception"))
  for p in task_api.problems(0, 0, 20):
    a, b = map(int, p.problem.split("+"))
    attempts, hasty = build(task_api, p, np.random.default_rng(0), 2)
    assert hasty is None and attempts[0] == p.solution
    assert attempts[1] == (task.carryless_solution(a, b) or p.solution)


def test_arithmetic_stream_is_a_function_of_seed_and_index():
  task = make_task(TaskConfig())
  a = task.problems(0, 10, 5)
  assert [p.id for p in a] == [p.id for p in task.problems(0, 10, 5)]
  assert task.problems(0, 12, 1)[0] == a[2]
  assert [p.problem for p in task.eval_problems(0, 20)] != [p.problem for p in task.problems(0, 0, 20)]
  p = a[0]
  x, y = map(int, p.problem.split("+"))
  assert task.score([p, p, p], [p.solution, f" junk ; A: {x + y + 1}", "no answer"]).tolist() == [1.0, 0.0, 0.0]


def test_gsm8k_task_scores_with_math_verify():
  task = make_task(TaskConfig(name="gsm8k"))
  try:
    probs = task.eval_problems(0, 2)
    assert len(task.train_set) == 7473 and len(task.eval_set) == 1319
    comps = [f"The answer is #### {probs[0].answer}", "#### 123456789"]
    np.testing.assert_array_equal(task.score(probs, comps), [1.0, 0.0])
  finally:
    task.close()


@pytest.mark.parametrize("answer_first", [False, True])
def test_flawed_solutions_are_wrong_and_well_formed(answer_first):
  rng = np.random.default_rng(0)
  task = ArithmeticTask(answer_first=answer_first)
  for i in range(200):
    a, b = task.problem(0, i)
    text = task.flawed_solution(a, b, rng)
    got = task.extract(text)
    assert got is not None and int(got) != a + b, (a, b, text)
    assert text.count(";") == task.solution(a, b).count(";")
