"""Reward functions chosen by name: `REWARDS.get(config.reward.name)(**config.reward.kwargs)`.

Dimension key: B completions (one per example).

Each entry is a factory: it builds a reward object that owns its worker processes (math-verify
pool, sandbox concurrency) so they start once per run, not per batch. The object is called as
`reward(examples, completions) -> (B,) float32` on the host, `reward.score(...)` also returns the
stats (timeouts, statuses) for logging, and `close()` / `with` releases the workers.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from critjax.data.datasets import Example
from critjax.registry import Registry
from critjax.rewards.code_sandbox import CodeSandbox, SandboxConfig
from critjax.rewards.math_reward import MathVerifier

REWARDS: Registry[type] = Registry("reward")

_FENCE_RE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


def _check_lengths(examples: Sequence[Example], completions: Sequence[str]) -> None:
  if len(examples) != len(completions):
    raise ValueError(f"{len(examples)} examples but {len(completions)} completions")


class _Closing:
  def __call__(self, examples: Sequence[Example], completions: Sequence[str]) -> np.ndarray:
    return self.score(examples, completions)[0]

  def __enter__(self):
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    pass


@REWARDS.register("math_verify")
class MathVerifyReward(_Closing):
  """1 if the completion's final answer is equivalent to `example.answer` (see math_reward)."""

  def __init__(self, num_workers: int = 2, timeout_s: float = 5.0, start_method: str = "spawn"):
    self.verifier = MathVerifier(num_workers=num_workers, timeout_s=timeout_s,
                                 start_method=start_method)

  def score(self, examples: Sequence[Example], completions: Sequence[str]):
    _check_lengths(examples, completions)
    return self.verifier.score([e.answer for e in examples], list(completions))

  def close(self) -> None:
    self.verifier.close()


def humaneval_program(prompt: str, completion: str) -> str:
  """The program a HumanEval completion stands for. A base model continues the prompt's function
  body; an instruct model often answers with a fenced block holding the whole function, which is
  appended after the prompt (whose imports it may rely on) and redefines the entry point."""
  blocks = _FENCE_RE.findall(completion)
  if blocks:
    return prompt + "\n" + "\n".join(blocks)
  return prompt + completion


@REWARDS.register("humaneval_tests")
class HumanEvalReward(_Closing):
  """1 if `check(entry_point)` from `example.meta['test']` passes in the sandbox (code_sandbox),
  else 0.

  With `partial_credit`, the score is the fraction of check's test cases that pass,
  `info['tests_passed'] / info['tests']`: Critique-Coder (arXiv 2509.22824) rewards a code RL item
  with the fraction of its test cases passed. HumanEval has no separate test cases; its asserts
  stand in for them (each top-level assert statement of `check` one case, a loop of asserts one,
  `assert True` none; see sandbox_child). The score is 1 exactly when the whole check passes, so
  `score == 1` still means "all tests pass"; a timeout fails the cases not yet run, a syntax
  error or a sandbox failure scores 0.
  """

  def __init__(self, partial_credit: bool = False, max_concurrency: int = 2, **sandbox_kwargs):
    if not isinstance(partial_credit, bool):
      raise TypeError(f"partial_credit must be True or False, got {partial_credit!r}")
    self.partial_credit = partial_credit
    self.sandbox = CodeSandbox(SandboxConfig(**sandbox_kwargs), max_concurrency=max_concurrency)

  def score(self, examples: Sequence[Example], completions: Sequence[str]):
    _check_lengths(examples, completions)
    results = self.sandbox.run_batch(
        [humaneval_program(e.prompt, c) for e, c in zip(examples, completions)],
        [e.meta["test"] for e in examples], [e.meta["entry_point"] for e in examples])
    if self.partial_credit:  # tests_passed == tests iff ok (code_sandbox), so 1.0 iff ok
      scores = np.array([1.0 if ok else info["tests_passed"] / info["tests"]
                         for ok, info in results], np.float32)
    else:
      scores = np.array([float(ok) for ok, _ in results], np.float32)
    statuses = [info["status"] for _, info in results]
    stats = {"n": len(results), **{s: statuses.count(s) for s in sorted(set(statuses))}}
    return scores, stats
