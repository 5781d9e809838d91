"""Tasks: a stream of problems plus a verifiable, host-side scorer. Chosen by `config.task.name`.

A task hands out `Problem`s as a pure function of (seed, index) so the data position is an integer
kept in the train state, and scores completions with a reward in {0, 1} (HumanEval with
task.code_reward="fraction": in [0, 1], 1 iff every test passes). Prompt wording lives in
`critjax.data.templates`, not here.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from critjax.data.arithmetic import ArithmeticTask
from critjax.registry import Registry

# Held-out problems are drawn from a disjoint seed stream, so they never appear in training.
EVAL_SEED_OFFSET = 1_000_003


@dataclasses.dataclass(frozen=True)
class Problem:
  id: str
  problem: str            # the text that fills the template's {problem}
  answer: str             # gold final answer
  solution: Optional[str] = None   # a correct worked completion (supervised warm-up), if known


class Task:
  """Interface every task implements."""
  template: str = "toy"

  def problems(self, seed: int, start: int, n: int) -> list[Problem]:
    raise NotImplementedError

  def eval_problems(self, seed: int, n: int) -> list[Problem]:
    raise NotImplementedError

  def score(self, problems: Sequence[Problem], completions: Sequence[str]) -> np.ndarray:
    """(N,) float32 rewards in {0, 1}; 1 = right (a fractional code reward is < 1 unless right)."""
    raise NotImplementedError

  def extract(self, completion: str) -> Optional[str]:
    """Normalised final answer (for majority voting), or None."""
    raise NotImplementedError

  def corpus(self, seed: int, n: int) -> list[str]:
    """Text to train a task-specific tokenizer on (tasks with a real tokenizer need none)."""
    return []

  def flawed_solution(self, problem: Problem, rng: np.random.Generator) -> Optional[str]:
    """A plausible wrong worked solution (correction demonstrations), if the task can make one."""
    return None


  def oracle_critique(self, problem: Problem, completion: str) -> Optional[str]:
    """A step-level critique of `completion` built from the gold working (critic warm-up), if the
    task can make one."""
    return None

  def first_wrong_step(self, problem: Problem, completion: str) -> Optional[int]:
    """Index of the completion's first wrong step (-1: none), ProcessBench's label; None if unknown."""
    return None

  def close(self):
    pass


TASKS: Registry[Callable[..., Task]] = Registry("task")


@TASKS.register("arithmetic")
class Arithmetic(Task):
  template = "toy"

  def __init__(self, cfg):
    self.gen = ArithmeticTask(cfg.min_digits, cfg.max_digits, cfg.answer_first, cfg.check_total, cfg.filler_max)

  def _problem(self, seed: int, index: int) -> Problem:
    a, b = self.gen.problem(seed, index)
    return Problem(id=f"{seed}:{index}", problem=f"{a}+{b}", answer=self.gen.answer(a, b),
                   solution=self.gen.solution(a, b))

  def problems(self, seed, start, n):
    return [self._problem(seed, i) for i in range(start, start + n)]

  def eval_problems(self, seed, n):
    return self.problems(seed + EVAL_SEED_OFFSET, 0, n)

  def score(self, problems, completions):
    return np.array([self.gen.reward(c, p.answer) for p, c in zip(problems, completions)], np.float32)

  def extract(self, completion):
    return self.gen.extract(completion)

  def corpus(self, seed, n):
    return [f"Q: {p.problem} ={p.solution}" for p in self.problems(seed, 0, n)]

  def flawed_solution(self, problem, rng):
    a, b = map(int, problem.problem.split("+"))
    return self.gen.flawed_solution(a, b, rng)


  def oracle_critique(self, problem, completion):
    a, b = map(int, problem.problem.split("+"))
    return None if self.gen.answer_first else self.gen.critique(a, b, completion)

  def first_wrong_step(self, problem, completion):
    a, b = map(int, problem.problem.split("+"))
    return None if self.gen.answer_first else self.gen.first_wrong_step(a, b, completion)

  # --- SPC's step game (critjax/rl/recipes/spc.py) -------------------------------------------------

  def error_types(self) -> tuple[str, ...]:
    """The sneaky generator's error taxonomy (ArithmeticTask.sneaky_step)."""
    from critjax.data.arithmetic import SNEAKY_KINDS
    return SNEAKY_KINDS

  def worked_steps(self, problem) -> list[str]:
    """The correct solution's steps (columns, least significant first)."""
    return self.gen.solution_steps(*map(int, problem.problem.split("+")))

  def sneaky_step(self, problem, k: int, kind: str, rng) -> str:
    """Step k rewritten into a wrong one of error type `kind` (ArithmeticTask.sneaky_step)."""
    return self.gen.sneaky_step(*map(int, problem.problem.split("+")), k, kind, rng)

  def step_success(self, problem, k: int, step: str, n: int, slip: float, seed) -> float:
    """Share of n solver completions from the right steps before k and `step` that are right."""
    return self.gen.step_success(*map(int, problem.problem.split("+")), k, step, n, slip, seed)

  def real_error_step(self, problem, kind: str, rng) -> tuple[int, str]:
    """(k, step): the first wrong step of a task-made flawed solution, whose steps before k are the
    right ones. kind 'slip': Task.flawed_solution (a dropped carry or a sum off by one); 'misread':
    ArithmeticTask.misread_solution (an operand digit misread). A slip that leaves every step right
    (a dropped carry where none was due) is drawn again; after 10 draws a sum off by one stands in."""
    a, b = map(int, problem.problem.split("+"))
    for _ in range(10):
      text = self.gen.flawed_solution(a, b, rng) if kind == "slip" else self.gen.misread_solution(a, b, rng)
      k = self.gen.first_wrong_step(a, b, text)
      steps = self.gen.steps_of(text)
      if 0 <= k < len(steps):
        return k, steps[k]
    k = int(rng.integers(len(self.worked_steps(problem))))
    return k, self.gen.sneaky_step(a, b, k, "sum", rng)


def make_task(cfg) -> Task:
  if cfg.path is not None and not Path(cfg.path).exists():
    raise FileNotFoundError(f"config.task.path={cfg.path!r}: no such file or directory")
  return TASKS.get(cfg.name)(cfg)


class _DatasetTask(Task):
  """A fixed dataset: training prompts cycle through a seed-dependent permutation; held-out problems
  are the first n of the evaluation split. Scoring runs in the reward's worker processes."""
  eval_split: Optional[str] = None

  def __init__(self, cfg):
    self.cfg = cfg
    self.train_set = self.load(cfg.split)
    self.eval_set = self.load(self.eval_split or cfg.split)
    if not self.train_set:
      raise ValueError(f"task {cfg.name!r}: no problems in split {cfg.split!r} ({cfg.path or 'shared data'})")
    self._reward = None

  @property
  def reward(self):
    if self._reward is None:  # workers start on first use, not at import or config time
      self._reward = self.make_reward()
    return self._reward

  def _to_problem(self, ex) -> Problem:
    return Problem(id=ex.id, problem=ex.prompt, answer=ex.answer)

  def problems(self, seed, start, n):
    perm = np.random.default_rng(seed).permutation(len(self.train_set))
    return [self._to_problem(self.train_set[perm[i % len(perm)]]) for i in range(start, start + n)]

  def eval_problems(self, seed, n):
    return [self._to_problem(ex) for ex in self.eval_set[:n]]

  def score(self, problems, completions):
    from critjax.data.datasets import Example
    examples = [Example(id=p.id, prompt=p.problem, answer=p.answer) for p in problems]
    return np.asarray(self.reward(examples, completions), np.float32)

  def close(self):
    if self._reward is not None:
      self._reward.close()


class _MathTask(_DatasetTask):
  template = "math"

  def make_reward(self):
    from critjax.rewards import REWARDS
    return REWARDS.get("math_verify")()

  def extract(self, completion):
    from critjax.rewards.math_reward import completion_answer_text
    return completion_answer_text(completion).strip() or None


@TASKS.register("gsm8k")
class GSM8K(_MathTask):
  eval_split = "test"

  def load(self, split):
    from critjax.data.datasets import load_gsm8k
    return load_gsm8k(split, path=self.cfg.path)


@TASKS.register("math500")
class MATH500(_MathTask):
  def load(self, split):
    from critjax.data.datasets import load_math500
    return load_math500(path=self.cfg.path)


@TASKS.register("humaneval")
class HumanEval(_DatasetTask):
  template = "code"

  def load(self, split):
    from critjax.data.datasets import load_humaneval
    return load_humaneval(path=self.cfg.path)

  def make_reward(self):
    """All tests pass (1 or 0), or with task.code_reward="fraction" the share of test cases
    passed (1 still iff all pass); registry.HumanEvalReward."""
    from critjax.rewards import REWARDS
    return REWARDS.get("humaneval_tests")(partial_credit=self.cfg.code_reward == "fraction")

  def score(self, problems, completions):
    by_id = {ex.id: ex for ex in self.train_set}
    return np.asarray(self.reward([by_id[p.id] for p in problems], completions), np.float32)

  def extract(self, completion):
    return completion.strip() or None
