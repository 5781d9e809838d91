"""Warm-up data for multi-attempt episodes on the toy task: which attempts each episode shows.

A builder is chosen by `config.warmup.data` with its own `config.warmup.data_args`; it maps a
problem to the completion texts of the episode's K attempts (or to a "hasty" single attempt), and
MultiTurn.warmup_batch (critjax/rl/recipes/multi_turn.py) lays them out as the sampler would.

  repeat       every attempt is the correct worked solution (the default; any task with solutions)
  toy_mix      the toy arithmetic task's designed warm-ups (BENCHMARKS.md, configs/score.py):
                 correction_fraction  first attempt a task-made slip (a dropped carry, a column off
                                      by one), corrected in the next: correction shown on synthetic
                                      slips, never on the model's own errors
                 hasty_fraction       one attempt, a wrong committed answer then a correct check
                                      (answer-first format), trained on the check only
                 revise_fraction      a right first attempt "revised" into a wrong one: a random slip
                                      (revise_error "slip") or the systematic misconception of every
                                      carry dropped ("misconception", reproduced under greedy
                                      decoding), for a base that breaks right answers when asked to
                                      correct them, as the SCoRe paper's bases do
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

from critjax.registry import Registry

# builder(task, problem, rng, turns) -> (attempt texts [K], hasty (head, check) or None)
WARMUP_DATA: Registry[Callable] = Registry("warm-up data builder")


@dataclasses.dataclass(frozen=True)
class ToyMix:
  correction_fraction: float = 0.0
  hasty_fraction: float = 0.0
  revise_fraction: float = 0.0
  revise_error: str = "slip"

  def __post_init__(self):
    names = ("correction_fraction", "hasty_fraction", "revise_fraction")
    for name in names:
      if not 0.0 <= getattr(self, name) <= 1.0:
        raise ValueError(f"warmup.data_args.{name} must be in [0, 1], got {getattr(self, name)}")
    if sum(getattr(self, n) for n in names) > 1.0:
      raise ValueError("warmup.data_args.correction_fraction + hasty_fraction + revise_fraction must be <= 1, got "
                       + " + ".join(str(getattr(self, n)) for n in names))
    if self.revise_error not in ("slip", "misconception"):
      raise ValueError(f"warmup.data_args.revise_error must be 'slip' or 'misconception', got {self.revise_error!r}")


def make_builder(name: str, args: dict):
  """The builder `name` with its args checked (each unknown or out-of-range field named)."""
  if name == "repeat":
    if args:
      raise ValueError(f"warmup.data='repeat' takes no warmup.data_args, got {sorted(args)}")
    return lambda task, problem, rng, turns: ([problem.solution] * turns, None)
  known = {f.name for f in dataclasses.fields(ToyMix)}
  unknown = sorted(set(args) - known)
  if unknown:
    raise ValueError(f"unknown field(s) {', '.join('warmup.data_args.' + u for u in unknown)}; known: {sorted(known)}")
  mix = ToyMix(**args)
  return lambda task, problem, rng, turns: WARMUP_DATA.get(name)(mix, task, problem, rng, turns)


def _arithmetic(task, problem):
  gen = getattr(task, "gen", None)
  if gen is None or not hasattr(gen, "carryless_solution"):
    raise ValueError("warmup.data='toy_mix' builds arithmetic-task episodes; config.task.name must be 'arithmetic'")
  a, b = map(int, problem.problem.split("+"))
  return gen, a, b


@WARMUP_DATA.register("toy_mix")
def toy_mix(mix: ToyMix, task, problem, rng: np.random.Generator, turns: int) -> tuple[list, Optional[tuple]]:
  gen, a, b = _arithmetic(task, problem)
  attempts = [problem.solution] * turns
  u = rng.random()
  if u < mix.correction_fraction:
    attempts[0] = gen.flawed_solution(a, b, rng)
  elif u < mix.correction_fraction + mix.hasty_fraction:
    hasty = gen.hasty_solution(a, b, rng)
    if hasty is not None:
      return attempts, hasty
  elif u < mix.correction_fraction + mix.hasty_fraction + mix.revise_fraction:
    flawed = gen.flawed_solution(a, b, rng) if mix.revise_error == "slip" else gen.carryless_solution(a, b)
    if flawed is not None:     # a right first attempt "revised" into a wrong one, every later turn
      attempts[1:] = [flawed] * (turns - 1)
  return attempts, None
