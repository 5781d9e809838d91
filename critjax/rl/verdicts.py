"""Verdict parsers for critiques: text -> `Verdict(final, steps)`, one registry for every format.

Formats (register more with `@VERDICTS.register(name)`; look one up with `VERDICTS.get(name)`):
  step_level   Critique-RL (Xi et al., arXiv 2510.24320) and AutoMathCritique (Xi et al., arXiv
               2411.16579): one "Correctness of the step: Correct|Wrong" line per step, then
               "Correctness of the final answer: Correct|Wrong". Also the terse form of our arithmetic
               task (critjax/data/arithmetic.py, ArithmeticTask.critique):
               ` 8+7=15 c1 Correct ; 5+6+1=12 c1 Wrong ; 3+2+1=6 c0 Correct ; Final Wrong`.
  conclusion   Critique-Coder (arXiv 2509.22824): `\\conclusion{True}` / `\\conclusion{False}`.
  answer_tag   SPC (Chen et al., arXiv 2504.19162): `<Answer>Correct</Answer>` / `<Answer>Incorrect</Answer>`.

Every parser is total: malformed, truncated or empty text gives `final=None`, never an exception.
`Verdict.first_wrong_step` follows ProcessBench's label (Zheng et al., arXiv 2412.06559): the index
of the earliest wrong step, -1 when no step is judged wrong.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Callable, Optional

from critjax.registry import Registry


@dataclasses.dataclass(frozen=True)
class Verdict:
  """A parsed critique. `final`: True = the solution is judged correct, False = wrong, None = no
  (or an ambiguous) verdict. `steps`: per-step judgments in order (True = step correct)."""
  final: Optional[bool]
  steps: tuple[bool, ...] = ()

  @property
  def first_wrong_step(self) -> int:
    """Index of the first step judged wrong; -1 when every judged step is correct (or none judged)."""
    for i, ok in enumerate(self.steps):
      if not ok:
        return i
    return -1


VERDICTS: Registry[Callable[[str], Verdict]] = Registry("verdict parser")

_WORDS = {"correct": True, "wrong": False}

# Long (Critique-RL / AutoMathCritique) markers; `[\s*:]*` tolerates markdown bold and a missing colon.
_LONG_ANY_RE = re.compile(r"correctness\s+of\s+the\s+(?:step|final\s+answer)", re.I)
_LONG_STEP_RE = re.compile(r"correctness\s+of\s+the\s+step(?:\s*\d+)?[\s*:]*(\w*)", re.I)
_LONG_FINAL_RE = re.compile(r"correctness\s+of\s+the\s+final\s+answer[\s*:]*(\w*)", re.I)
# Terse toy markers: the word `Final` and the word after it, or a bare Correct/Wrong word.
_TERSE_FINAL_RE = re.compile(r"\bfinal\b\s*:?\s*(\w*)", re.I)
_TERSE_WORD_RE = re.compile(r"\b(correct|wrong)\b", re.I)

_CONCLUSION_OPEN_RE = re.compile(r"\\conclusion\s*\{")
_ANSWER_OPEN_RE = re.compile(r"<\s*answer\s*>", re.I)
_ANSWER_CLOSE_RE = re.compile(r"<\s*/\s*answer\s*>", re.I)


def _word_verdict(word: str) -> Optional[bool]:
  """Correct -> True, Wrong -> False (any case); anything else (a truncated 'Wro', 'maybe') -> None."""
  return _WORDS.get(word.lower())


def _last_final(matches: list) -> tuple[Optional[bool], int]:
  """(verdict of the last final-marker match, its start offset), or (None, -1) when there is none."""
  if not matches:
    return None, -1
  last = matches[-1]
  return _word_verdict(last.group(1)), last.start()


def _parse_long(text: str) -> Verdict:
  """Critique-RL / AutoMathCritique lines: step markers before the last final-answer marker.

  A step marker followed by anything other than Correct/Wrong contributes no step judgment."""
  final, cut = _last_final(list(_LONG_FINAL_RE.finditer(text)))
  steps = []
  for m in _LONG_STEP_RE.finditer(text):
    if cut >= 0 and m.start() >= cut:
      break
    ok = _word_verdict(m.group(1))
    if ok is not None:
      steps.append(ok)
  return Verdict(final, tuple(steps))


def _parse_terse(text: str) -> Verdict:
  """Toy form: the last `Final <word>` is the verdict; bare Correct/Wrong words before it are steps.

  The word right after an earlier `Final` belongs to that marker, not to the steps."""
  finals = list(_TERSE_FINAL_RE.finditer(text))
  final, cut = _last_final(finals)
  consumed = [(m.start(), m.end()) for m in finals]
  steps = []
  for m in _TERSE_WORD_RE.finditer(text):
    if cut >= 0 and m.start() >= cut:
      break
    if any(s <= m.start() < e for s, e in consumed):
      continue
    steps.append(_WORDS[m.group(1).lower()])
  return Verdict(final, tuple(steps))


@VERDICTS.register("step_level")
def parse_step_level(text: str) -> Verdict:
  """Step-level critique, long (Critique-RL) or terse (toy) form; the long form wins if any long
  marker ("Correctness of the step" / "... of the final answer") is present, so a stray "final" or
  "correct" in a long critique's explanations is not read as a verdict."""
  if not isinstance(text, str):
    return Verdict(None)
  return _parse_long(text) if _LONG_ANY_RE.search(text) else _parse_terse(text)


def _bool_word(word: str, true_word: str, false_word: str) -> Optional[bool]:
  """true_word -> True, false_word -> False (case- and whitespace-insensitive), else None."""
  w = word.strip().lower()
  return True if w == true_word else False if w == false_word else None


@VERDICTS.register("conclusion")
def parse_conclusion(text: str) -> Verdict:
  """Critique-Coder's `\\conclusion{True|False}`; the last `\\conclusion{` decides, so a truncated
  (unclosed) or non-boolean last conclusion gives None."""
  if not isinstance(text, str):
    return Verdict(None)
  opens = list(_CONCLUSION_OPEN_RE.finditer(text))
  if not opens:
    return Verdict(None)
  rest = text[opens[-1].end():]
  close = rest.find("}")
  if close < 0 or "{" in rest[:close]:
    return Verdict(None)
  return Verdict(_bool_word(rest[:close], "true", "false"))


@VERDICTS.register("answer_tag")
def parse_answer_tag(text: str) -> Verdict:
  """SPC's `<Answer>Correct|Incorrect</Answer>`; the last opening tag decides, so an unclosed or
  non-verdict last answer gives None."""
  if not isinstance(text, str):
    return Verdict(None)
  opens = list(_ANSWER_OPEN_RE.finditer(text))
  if not opens:
    return Verdict(None)
  rest = text[opens[-1].end():]
  close = _ANSWER_CLOSE_RE.search(rest)
  if close is None:
    return Verdict(None)
  return Verdict(_bool_word(rest[:close.start()], "correct", "incorrect"))
