"""math-verify reward: equivalent forms, wrong and unparseable answers, soft and hard timeouts."""
import jax  # noqa: F401  (the pool must work with JAX already imported in the parent)
import numpy as np
import pytest

from critjax.data.datasets import Example
from critjax.rewards import REWARDS
from critjax.rewards.math_reward import MathVerifier, completion_answer_text, gold_to_latex

HUGE = "\\boxed{10^{10^{10}}}"  # sympy evaluates this power for ages (measured: > 10 s)


@pytest.fixture(scope="module")
def verifier():
  with MathVerifier(num_workers=2, timeout_s=2) as v:
    yield v


def test_preprocessing():
  assert gold_to_latex("Natalia sold 48/2 = 24 clips.\n#### 72") == "\\boxed{72}"
  assert gold_to_latex("1,234") == "\\boxed{1234}"
  assert gold_to_latex("(1,2)") == "\\boxed{(1,2)}"  # a tuple, not a thousands separator
  assert gold_to_latex("\\frac{1}{2}") == "\\boxed{\\frac{1}{2}}"
  assert gold_to_latex("$5$") == "\\boxed{5}"
  assert completion_answer_text("x = 72 first.\n#### 18\nextra") == "18"
  assert completion_answer_text("The final answer is $3$.") == "The final answer is $3$."


CASES = [  # (gold, completion, expected reward), worked out by hand
    ("0.5", "The final answer is $\\frac{1}{2}$", 1),
    ("\\frac{1}{2}", "so $x = \\boxed{0.5}$", 1),
    ("1/2", "#### 0.5", 1),
    ("\\frac{1}{2}", "The answer is 1/2.", 1),
    ("\\frac{1}{2}", "\\boxed{\\dfrac{2}{4}}", 1),
    ("Natalia ... #### 1,234", "She has 1234 in all.\n#### 1,234", 1),
    ("1234", "\\boxed{1,234}", 1),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "The point is \\boxed{(3, \\pi/2)}.", 1),
    ("2\\sqrt{2}", "\\boxed{\\sqrt{8}}", 1),
    ("x^2+2x+1", "\\boxed{(x+1)^2}", 1),
    ("0.5", "\\boxed{0.6}", 0),
    ("18", "I first got 18 but then\n#### 17", 0),
    ("18", "#### 72\nor maybe 18", 0),     # only the line after '####' counts
    ("18", "I got 72 first.\n#### 18", 1),
    ("\\frac{1}{2}", "\\boxed{2}", 0),
    ("x^2+2x+1", "\\boxed{(x+2)^2}", 0),
    ("5", "I don't know.", 0),             # unparseable: nothing to compare
    ("5", "", 0),
    ("5", "\\boxed{\\frac{}{", 0),
]


def test_hand_picked_cases(verifier):
  golds, preds, want = zip(*CASES)
  scores, stats = verifier.score(list(golds), list(preds))
  assert scores.dtype == np.float32 and scores.shape == (len(CASES),)
  np.testing.assert_array_equal(scores, np.array(want, np.float32))
  assert stats["n"] == len(CASES) and stats["timeouts"] == 0 and stats["killed"] == 0


def test_soft_timeout_scores_zero_and_is_counted(verifier):
  scores, stats = verifier.score(["3", "3"], [HUGE, "\\boxed{3}"])
  # The 2 s soft timer interrupts the huge power; the other item is unaffected.
  assert scores.tolist() == [0.0, 1.0] and stats["timeouts"] == 1 and stats["killed"] == 0
  with MathVerifier(num_workers=1, timeout_s=1e-4) as tiny:
    scores, stats = tiny.score(["\\frac{7}{13}"] * 3, ["\\boxed{\\frac{14}{26}}"] * 3)
  assert scores.tolist() == [0.0] * 3 and stats["timeouts"] == 3


def test_hard_timeout_kills_the_worker_and_carries_on():
  # kill_after_s below timeout_s: the parent's kill fires before the soft timer can.
  with MathVerifier(num_workers=1, timeout_s=30, kill_after_s=1.0) as v:
    scores, stats = v.score(["3", "3", "4"], [HUGE, "\\boxed{3}", "\\boxed{5}"])
  assert scores.tolist() == [0.0, 1.0, 0.0]
  assert stats["timeouts"] == 1 and stats["killed"] == 1 and stats["seconds"] < 20


def test_bad_arguments(verifier):
  with pytest.raises(ValueError, match="completions"):
    verifier.score(["1"], [])
  with pytest.raises(ValueError, match="start_method"):
    MathVerifier(start_method="fork")
  v = MathVerifier(num_workers=1)
  v.close()
  with pytest.raises(RuntimeError, match="closed"):
    v.score(["1"], ["1"])


def test_registered_reward_on_examples():
  exs = [Example(id="a", prompt="1+1?", answer="2"), Example(id="b", prompt="2+2?", answer="4")]
  with REWARDS.get("math_verify")(num_workers=1, timeout_s=5) as reward:
    out = reward(exs, ["The final answer is $2$", "\\boxed{5}"])
  assert out.dtype == np.float32 and out.tolist() == [1.0, 0.0]
