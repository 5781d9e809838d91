"""Rewards that see the whole critique episode: problem, the actor's attempt, the critique, the refinement.

Dimension key: N episodes (attempt, critique[, refinement]).

Critique-RL (Xi et al., arXiv 2510.24320; ALGORITHMS.md §4, from the official reward_func.py /
reward_with_discrimination.py):
  Stage I   r = +1 if the critique's final verdict equals the attempt's oracle correctness,
            -1 if it does not or the verdict is missing. (The paper's text may state r_dis in {0, 1};
            the code's +-1 only rescales RLOO advantages by 2. We follow the code.)
  Stage II  r = r_help + 0.2 if the verdict is right, -1 otherwise (code: `s + d if d != -1 else -1`),
            with r_help one of
              refine   1[y' correct]                                    (the default)
              correct  c->c 0.2, c->i 0, i->c 1, i->i 0
              delta    c->c 0,   c->i -1, i->c 1, i->i 0
A missing verdict is never a crash: it scores as a wrong verdict and is counted in the metrics.
"""
from __future__ import annotations

import numpy as np

from critjax.registry import Registry

HELP_REWARDS: Registry = Registry("helpfulness reward")
VERDICT_BONUS = 0.2     # Critique-RL Stage II: added to r_help when the verdict is right


@HELP_REWARDS.register("refine")
def r_refine(before: np.ndarray, after: np.ndarray) -> np.ndarray:
  return after.astype(np.float32)


@HELP_REWARDS.register("correct")
def r_correct(before: np.ndarray, after: np.ndarray) -> np.ndarray:
  return np.where(before, np.where(after, 0.2, 0.0), np.where(after, 1.0, 0.0)).astype(np.float32)


@HELP_REWARDS.register("delta")
def r_delta(before: np.ndarray, after: np.ndarray) -> np.ndarray:
  return after.astype(np.float32) - before.astype(np.float32)


def verdict_right(attempt_correct, verdict_final) -> np.ndarray:
  """(N,) bool: the verdict (True / False / None = missing) equals the attempt's correctness."""
  return np.array([v is not None and bool(v) == bool(c) for c, v in zip(attempt_correct, verdict_final)])


def discrimination_reward(attempt_correct, verdict_final) -> np.ndarray:
  """Critique-RL Stage I: +1 for a right verdict, -1 for a wrong or missing one."""
  return np.where(verdict_right(attempt_correct, verdict_final), 1.0, -1.0).astype(np.float32)


def helpfulness_reward(attempt_correct, verdict_final, refined_correct, r_help: str = "refine",
                       bonus: float = VERDICT_BONUS) -> np.ndarray:
  """Critique-RL Stage II: r_help + bonus when the verdict is right, -1 otherwise."""
  before, after = np.asarray(attempt_correct, bool), np.asarray(refined_correct, bool)
  help_ = HELP_REWARDS.get(r_help)(before, after)
  return np.where(verdict_right(before, verdict_final), help_ + bonus, -1.0).astype(np.float32)
