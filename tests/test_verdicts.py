"""Verdict parsers (critjax/rl/verdicts.py) on hand-written critiques, well-formed and malformed."""
from __future__ import annotations

import pytest

from critjax.rl.verdicts import VERDICTS, Verdict

step_level = VERDICTS.get("step_level")
conclusion = VERDICTS.get("conclusion")
answer_tag = VERDICTS.get("answer_tag")

LONG = """Step 1: 8+7=15, write 5 carry 1.
Explanation: 8 plus 7 is 15, so the digit is 5 and the carry is 1; this is correct.
Correctness of the step: Correct
Step 2: 5+6=11.
Explanation: the carry from the first column was dropped; it should be 5+6+1=12. The final sum changes.
Correctness of the step: Wrong
Step 3: 3+2+1=6.
Explanation: uses a carry of 1, which is right given the previous column's 12.
Correctness of the step: correct
Correctness of the final answer: Wrong
"""


def test_registry_names():
  assert {"step_level", "conclusion", "answer_tag"} <= set(VERDICTS.names())


def test_verdict_first_wrong_step():
  assert Verdict(True, (True, True)).first_wrong_step == -1
  assert Verdict(False, (True, False, False)).first_wrong_step == 1
  assert Verdict(None).first_wrong_step == -1


def test_step_level_long_form():
  v = step_level(LONG)
  # "correct" / "final" inside the explanations are not verdicts.
  assert v == Verdict(False, (True, False, True))
  assert v.first_wrong_step == 1


def test_step_level_long_form_variants():
  text = ("**Correctness of the step 1:** Correct\n**Correctness of the step 2:** CORRECT\n"
          "**Correctness of the final answer:** correct")
  assert step_level(text) == Verdict(True, (True, True))
  # No final line: steps still parsed.
  assert step_level("Correctness of the step: Wrong\nCorrectness of the step: Correct") == Verdict(None, (False, True))
  # Truncated final word.
  assert step_level("Correctness of the step: Correct\nCorrectness of the final answer: Wro").final is None
  # Two final lines: the last wins; steps come only from before it.
  text = ("Correctness of the step: Correct\nCorrectness of the final answer: Wrong\n"
          "Correctness of the step: Wrong\nCorrectness of the final answer: Correct")
  assert step_level(text) == Verdict(True, (True, False))
  # A step marker with no clean word contributes no judgment.
  assert step_level("Correctness of the step: unclear\nCorrectness of the step: Wrong") == Verdict(None, (False,))


def test_step_level_terse_form():
  text = " 8+7=15 c1 Correct ; 5+6+1=12 c1 Wrong ; 3+2+1=6 c0 Correct ; Final Wrong"
  v = step_level(text)
  assert v == Verdict(False, (True, False, True))
  assert v.first_wrong_step == 1
  assert step_level(" 8+7=15 c1 Correct ; 5+6+1=12 c1 Correct ; Final Correct") == Verdict(True, (True, True))
  assert step_level(" 8+7=15 c1 Wrong ; Final: correct").final is True


def test_step_level_terse_malformed():
  # Truncated mid-word: no final, steps so far kept.
  assert step_level(" 8+7=15 c1 Correct ; 5+6+1=12 c1 Wrong ; Final Wro") == Verdict(None, (True, False))
  # Truncated before the final marker.
  assert step_level(" 8+7=15 c1 Correct ; 5+6+1=12 c1 Corr") == Verdict(None, (True,))
  # Final marker followed by something else.
  assert step_level(" 8+7=15 c1 Correct ; Final maybe").final is None
  assert step_level(" 8+7=15 c1 Correct ; Final").final is None
  assert step_level(" 8+7=15 c1 Correct ; Final Correctly").final is None
  # Two finals: the last wins; the first final's word is not a step.
  assert step_level(" 8+7=15 c1 Correct ; Final Wrong ; Final Correct") == Verdict(True, (True,))
  # Trailing text after a clean final does not add steps.
  assert step_level(" 8+7=15 c1 Wrong ; Final Wrong ; Correct Correct") == Verdict(False, (False,))
  # "Finally" is not the marker; "Correctness" is not the word Correct.
  assert step_level("Finally Correctness Wrongly").final is None
  assert step_level("Finally Correctness Wrongly").steps == ()


@pytest.mark.parametrize("text", ["", "   ", "garbage !@#$ {}<>", "\\conclusion{True}", ";;;;"])
def test_step_level_garbage(text):
  assert step_level(text) == Verdict(None, ())


def test_conclusion():
  assert conclusion("The code handles n=0. \\conclusion{True}") == Verdict(True)
  assert conclusion("Off by one in the loop.\n\\conclusion{False}") == Verdict(False)
  assert conclusion("\\conclusion{ True }").final is True
  assert conclusion("\\conclusion {\n false\n}").final is False
  # The last occurrence wins.
  assert conclusion("\\conclusion{True} wait, no: \\conclusion{False}").final is False
  assert conclusion("\\conclusion{False} ... \\conclusion{True}").final is True


@pytest.mark.parametrize("text", [
    "", "no verdict here", "\\conclusion{}", "\\conclusion{maybe}", "\\conclusion{Tru",
    "\\conclusion{True} then \\conclusion{Fals",      # a truncated last conclusion: ambiguous
    "\\conclusion{True} then \\conclusion{unsure}",
    "\\conclusion{\\text{True}}", "conclusion{True}", "\\conclusion True",
])
def test_conclusion_malformed(text):
  assert conclusion(text) == Verdict(None)


def test_answer_tag():
  assert answer_tag("Step 2 is wrong.\n<Answer>Incorrect</Answer>") == Verdict(False)
  assert answer_tag("<Answer>Correct</Answer>") == Verdict(True)
  assert answer_tag("<answer> correct </answer>").final is True
  assert answer_tag("< ANSWER >\nIncorrect\n</ Answer >").final is False
  assert answer_tag("<Answer>Correct</Answer> on reflection <Answer>Incorrect</Answer>").final is False


@pytest.mark.parametrize("text", [
    "", "Correct", "<Answer></Answer>", "<Answer>Maybe</Answer>", "<Answer>Corr",
    "<Answer>Correct</Answer> <Answer>Incorr",   # a truncated last answer: ambiguous
    "<Answer>Correct", "Answer: Correct", "<Answer>Correct or Incorrect</Answer>",
])
def test_answer_tag_malformed(text):
  assert answer_tag(text) == Verdict(None)
