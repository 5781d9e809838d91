"""Prompt templates for self-correction episodes, chosen by name (`config.template = 'math'`).

Episode protocol (SCoRe, Kumar et al., arXiv 2409.12917, §3): x1 = first_turn.format(problem=x);
the model writes y1; turn k+1 appends `correction_instruction` after y_k and the model writes
y_{k+1}. The instruction is fixed and the same for every turn k >= 2. Self-Refine (Madaan et al.,
arXiv 2303.17651) instead inserts a feedback turn: critique_instruction -> feedback, then
refine_instruction -> new answer.

Wording is our paraphrase of the outline in specs/ALGORITHMS.md §2 (the paper's exact prompts are
not reproduced). The toy template is terse on purpose: the toy model's context is short.
"""
from __future__ import annotations

import dataclasses
import string

from critjax.registry import Registry

TEMPLATES: Registry = Registry("self-correction template")

PLACEHOLDER = "problem"


def _fields(text: str) -> set[str]:
  """Names of the str.format fields in `text` (raises ValueError on malformed braces)."""
  return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _check(template: str, field: str, text: str, needs_problem: bool) -> None:
  try:
    fields = _fields(text)
  except ValueError as e:
    raise ValueError(f"template {template!r}: {field} has malformed braces ({e}); "
                     "write literal braces as '{{' and '}}'") from e
  allowed = {PLACEHOLDER} if needs_problem else set()
  if needs_problem and PLACEHOLDER not in fields:
    raise ValueError(f"template {template!r}: {field} is missing the '{{{PLACEHOLDER}}}' placeholder")
  extra = sorted(fields - allowed)
  if extra:
    raise ValueError(f"template {template!r}: {field} has unknown placeholders {extra}; "
                     f"allowed: {sorted(allowed)}")


@dataclasses.dataclass(frozen=True)
class SelfCorrectionTemplate:
  """Turn-1 prompt with '{problem}' and the fixed instruction appended before every later attempt."""
  name: str
  first_turn: str
  correction_instruction: str

  def __post_init__(self):
    if not self.name:
      raise ValueError("template name must be non-empty")
    _check(self.name, "first_turn", self.first_turn, needs_problem=True)
    _check(self.name, "correction_instruction", self.correction_instruction, needs_problem=False)
    if not self.correction_instruction.strip():
      raise ValueError(f"template {self.name!r}: correction_instruction is empty")

  def first_prompt(self, problem: str) -> str:
    return self.first_turn.format(problem=problem)

  def correction_prompt(self) -> str:
    """Text appended after attempt k to ask for attempt k+1 (the same for every k)."""
    return self.correction_instruction.format()

  def render(self, problem: str, attempts: list[str]) -> str:
    """Full text of an episode after `attempts` (for SFT baselines, logging): x1 y1 p y2 p y3 ..."""
    parts = [self.first_prompt(problem)]
    for i, attempt in enumerate(attempts):
      if i > 0:
        parts.append(self.correction_prompt())
      parts.append(attempt)
    return "".join(parts)


@dataclasses.dataclass(frozen=True)
class SelfRefineTemplate:
  """Self-Refine baseline: answer, then self-feedback, then a refined answer using that feedback."""
  name: str
  first_turn: str
  critique_instruction: str
  refine_instruction: str

  def __post_init__(self):
    if not self.name:
      raise ValueError("template name must be non-empty")
    _check(self.name, "first_turn", self.first_turn, needs_problem=True)
    for field in ("critique_instruction", "refine_instruction"):
      text = getattr(self, field)
      _check(self.name, field, text, needs_problem=False)
      if not text.strip():
        raise ValueError(f"template {self.name!r}: {field} is empty")

  def first_prompt(self, problem: str) -> str:
    return self.first_turn.format(problem=problem)

  def critique_prompt(self) -> str:
    return self.critique_instruction.format()

  def refine_prompt(self) -> str:
    return self.refine_instruction.format()


def _register(template):
  TEMPLATES.register(template.name)(template)
  return template


# Toy arithmetic task (critjax.data.arithmetic): problem "358+267", prompt "Q: 358+267 =", the
# completion is the column-by-column working ending "; A: 625". The tiny model sees few tokens, so
# the instruction is short; the second attempt redoes the working from the first column.
TOY = _register(SelfCorrectionTemplate(
    name="toy",
    first_turn="Q: {problem} =",
    correction_instruction="\nRecheck each column and fix any error:",
))

# MATH-style (SCoRe §3 outline): expert persona, step-by-step, a fixed final-answer line; the
# correction turn says the solution may contain a mistake and asks for the whole solution again.
MATH = _register(SelfCorrectionTemplate(
    name="math",
    first_turn=(
        "You are an expert in mathematics. Solve the problem below, reasoning step by step, and reply "
        "with the solution only. End with the line: \"Final Answer: The final answer is $ANSWER$. "
        "I hope it is correct.\"\n\nProblem:\n{problem}\n\nSolution:\n"),
    correction_instruction=(
        "\n\nThe solution above may contain a mistake, for example from misreading the problem. "
        "Find and fix the error if there is one, then write out the complete solution again. Reply "
        "with the final solution only, ending with the line: \"Final Answer: The final answer is "
        "$ANSWER$. I hope it is correct.\"\n\nSolution:\n"),
))

# Code-style (MBPP -> HumanEval): the correction turn asks for the whole corrected program.
CODE = _register(SelfCorrectionTemplate(
    name="code",
    first_turn=(
        "You are an expert Python programmer. Complete the function below. Reply with the full Python "
        "program only, in one ```python code block.\n\n{problem}\n"),
    correction_instruction=(
        "\n\nThe code above may contain a bug, for example from misreading the task. Find and fix the "
        "error if there is one and rewrite the program. Reply with the final, correct Python program "
        "only, in one ```python code block.\n"),
))

SELF_REFINE_MATH = _register(SelfRefineTemplate(
    name="self_refine_math",
    first_turn=MATH.first_turn,
    critique_instruction=(
        "\n\nReview the solution above step by step. For each step say whether it is correct, and "
        "point out any error and how to fix it. Do not write a new solution yet.\n\nFeedback:\n"),
    refine_instruction=(
        "\n\nUsing the feedback above, write an improved complete solution. Reply with the solution "
        "only, ending with the line: \"Final Answer: The final answer is $ANSWER$. I hope it is "
        "correct.\"\n\nSolution:\n"),
))

SELF_REFINE_CODE = _register(SelfRefineTemplate(
    name="self_refine_code",
    first_turn=CODE.first_turn,
    critique_instruction=(
        "\n\nReview the code above. Say whether it solves the task, and point out any bug and how "
        "to fix it. Do not write new code yet.\n\nFeedback:\n"),
    refine_instruction=(
        "\n\nUsing the feedback above, write the improved program. Reply with the full Python "
        "program only, in one ```python code block.\n"),
))

SELF_REFINE_TOY = _register(SelfRefineTemplate(
    name="self_refine_toy",
    first_turn=TOY.first_turn,
    critique_instruction="\nFeedback on each column:",
    refine_instruction="\nUse the feedback and redo the sum:",
))


@dataclasses.dataclass(frozen=True)
class CritiqueTemplate(SelfRefineTemplate):
  """Two-role critique episode (Critique-RL, arXiv 2510.24320, Fig. 2): the actor answers the first
  prompt; `critique_instruction` follows its answer and the critic writes a step-level critique
  ending in a verdict; `refine_instruction` follows the critique and the actor writes a refinement.
  The fields are Self-Refine's, with other writers; `vocabulary`: words the critic's format uses
  (so a tokenizer trained on the task sees them)."""
  vocabulary: str = ""


# Toy critique format (ArithmeticTask.critique): the critic re-works every column and judges the
# attempt's column against it, then the final answer: " 8+7=15 c1 Correct ; 5+6+1=12 c1 Wrong ; ...
# ; Final Wrong". Terse, like the toy template, for the tiny model's short context.
CRITIQUE_TOY = _register(CritiqueTemplate(
    name="critique_toy",
    first_turn=TOY.first_turn,
    critique_instruction="\nCritique:",
    refine_instruction="\nRefine:",
    vocabulary=" 8+7=15 c1 Correct ; 5+6+1=12 c1 Wrong ; Final Correct ; Final Wrong",
))

# Real models (our paraphrase of Critique-RL's prompt outline, ALGORITHMS.md §4): a step-by-step
# check with a correctness line per step and for the final answer; the refinement follows the critique.
CRITIQUE_MATH = _register(CritiqueTemplate(
    name="critique_math",
    first_turn=MATH.first_turn,
    critique_instruction=(
        "\n\nCheck the solution above step by step. For each step, repeat it, explain whether it is "
        "right, and end with the line \"Correctness of the step: Correct\" or \"Correctness of the step: "
        "Wrong\". Finally write \"Correctness of the final answer: Correct\" or \"Correctness of the "
        "final answer: Wrong\".\n\nCritique:\n"),
    refine_instruction=(
        "\n\nA step-by-step critique of your solution is above. Strictly follow it: keep what it "
        "confirms, fix what it finds wrong, and give a new step-by-step solution ending with the line "
        "\"Final Answer: The final answer is $ANSWER$. I hope it is correct.\"\n\nLet's break it down "
        "step by step, strictly following the critique:\n"),
))


@dataclasses.dataclass(frozen=True)
class CritiqueItemTemplate:
  """Critique-Coder's two tasks in one run (CRL, arXiv 2509.22824): `first_turn` asks to solve the
  problem; a critique item shows the problem (`critique_intro`) and a candidate solution, then
  `critique_instruction`, and the model writes a critique ending in \\conclusion{True|False}.
  `vocabulary`: words the critique format uses (so a tokenizer trained on the task sees them)."""
  name: str
  first_turn: str
  critique_intro: str
  critique_instruction: str
  vocabulary: str = ""

  def __post_init__(self):
    if not self.name:
      raise ValueError("template name must be non-empty")
    _check(self.name, "first_turn", self.first_turn, needs_problem=True)
    _check(self.name, "critique_intro", self.critique_intro, needs_problem=True)
    _check(self.name, "critique_instruction", self.critique_instruction, needs_problem=False)

  def first_prompt(self, problem: str) -> str:
    return self.first_turn.format(problem=problem)

  def critique_item_prompt(self, problem: str, candidate: str) -> str:
    return self.critique_intro.format(problem=problem) + candidate + self.critique_instruction.format()


# Toy: the candidate follows the question as an attempt would; the critique is the oracle's
# column-by-column check (ArithmeticTask.critique) with the verdict as \conclusion{...}.
CRL_ARITH = _register(CritiqueItemTemplate(
    name="crl_arith",
    first_turn=TOY.first_turn,
    critique_intro=TOY.first_turn,
    critique_instruction="\nCritique:",
    vocabulary=" 8+7=15 c1 Correct ; 5+6+1=12 c1 Wrong ; \\conclusion{True} ; \\conclusion{False}",
))

# Real models (our paraphrase of the CRL task: judge a candidate, end with the boxed-style verdict).
CRL_MATH = _register(CritiqueItemTemplate(
    name="crl_math",
    first_turn=MATH.first_turn,
    critique_intro=("You are given a math problem and a candidate solution. Judge whether the solution is "
                    "correct.\n\nProblem:\n{problem}\n\nCandidate solution:\n"),
    critique_instruction=("\n\nCritique the candidate solution step by step: check each step and the final "
                          "answer. End with \\conclusion{{True}} if the solution is correct or "
                          "\\conclusion{{False}} if it is not."),
))

CRL_CODE = _register(CritiqueItemTemplate(
    name="crl_code",
    first_turn=CODE.first_turn,
    critique_intro=("You are given a programming task and a candidate program. Judge whether the program "
                    "passes every test of the task.\n\nTask:\n{problem}\n\nCandidate program:\n"),
    critique_instruction=("\n\nCritique the program: trace it on the task's cases and look for bugs. End "
                          "with \\conclusion{{True}} if it is correct or \\conclusion{{False}} if it is not."),
))


@dataclasses.dataclass(frozen=True)
class CritiqueGRPOTemplate(CritiqueTemplate):
  """Critique-GRPO (arXiv 2506.03106, ALGORITHMS.md §3): a CritiqueTemplate (the CoT critic writes
  after `critique_instruction`, the refinement follows `refine_instruction`) plus the indicative
  critiques, which stand where the critic's turn would: `simple_critique` ('{verdict}') and
  `gt_critique` ('{verdict}', '{answer}'); `verdicts` = (word for correct, word for incorrect)."""
  simple_critique: str = ""
  gt_critique: str = ""
  verdicts: tuple = ("correct", "incorrect")

  def __post_init__(self):
    super().__post_init__()
    for field, need in (("simple_critique", {"verdict"}), ("gt_critique", {"verdict", "answer"})):
      if _fields(getattr(self, field)) != need:
        raise ValueError(f"template {self.name!r}: {field} must use exactly the placeholders {sorted(need)}")

  def indicative_critique(self, correct: bool, answer=None) -> str:
    """'simple' (answer None) or 'simple_gt': the released code's templated critique."""
    verdict = self.verdicts[0 if correct else 1]
    if answer is None:
      return self.simple_critique.format(verdict=verdict)
    return self.gt_critique.format(verdict=verdict, answer=answer)


# Toy: CRITIQUE_TOY's oracle critique format for the CoT critic; the indicative critiques are its
# final verdict alone, or with the gold answer in the toy's answer format ("Final Wrong ; A: 625"):
# the paper's "The generated solution is incorrect[, the ground truth is 625]." in the few tokens
# the toy's context affords (a 64-piece tokenizer spells English letter by letter).
CRITIQUE_GRPO_ARITH = _register(CritiqueGRPOTemplate(
    name="critique_grpo_arith",
    first_turn=TOY.first_turn,
    critique_instruction=CRITIQUE_TOY.critique_instruction,
    refine_instruction=CRITIQUE_TOY.refine_instruction,
    simple_critique=CRITIQUE_TOY.critique_instruction + " Final {verdict}",
    gt_critique=CRITIQUE_TOY.critique_instruction + " Final {verdict} ; A: {answer}",
    verdicts=("Correct", "Wrong"),
    vocabulary=CRITIQUE_TOY.vocabulary,
))

# Real models: the released code's indicative critiques verbatim; the critic's and refinement
# instructions paraphrase its prompts (critique_prompts.py, refinement_prompts.py).
CRITIQUE_GRPO_MATH = _register(CritiqueGRPOTemplate(
    name="critique_grpo_math",
    first_turn=MATH.first_turn,
    critique_instruction=(
        "\n\nAnalyze the solution above step by step. Identify any errors and explain each mistake in "
        "detail. End with \"Conclusion: right [END]\" if the solution is correct, otherwise with "
        "\"Conclusion: wrong [END]\".\n\nCritique:\n"),
    refine_instruction=(
        "\n\nPlease re-answer: correct the errors identified in the critique, if there are any, reason "
        "step by step, and make sure the new solution addresses every issue the critique raises. End "
        "with the line: \"Final Answer: The final answer is $ANSWER$. I hope it is correct.\"\n\nSolution:\n"),
    simple_critique="\n\nCritique: The generated solution is {verdict}.",
    gt_critique="\n\nCritique: The generated solution is {verdict}, the ground truth is {answer}.",
))


@dataclasses.dataclass(frozen=True)
class StepGameTemplate:
  """SPC's two prompts (Chen et al., arXiv 2504.19162, Sec. 3; our paraphrase): the sneaky generator
  reads the problem, the solution's steps so far, the correct next step and an error type, and
  rewrites that step; the step critic reads the problem and a partial solution and judges its last
  step, ending in SPC's verdict tag (critjax.rl.verdicts 'answer_tag'). `{steps}` is the steps so far,
  each rendered by `step_format`; `critique_format` is the critic's target in warm-up and SFT data.
  `vocabulary`: every word the prompts and outputs use (a tokenizer trained on the task sees them)."""
  name: str
  first_turn: str           # {problem}
  sneaky_turn: str          # {steps} {step} {error}, appended to the first turn
  critic_turn: str          # {steps} {last}, appended to the first turn
  step_format: str = " {step} ;"
  critique_format: str = " {analysis} ; <Answer>{verdict}</Answer>"
  vocabulary: str = ""

  def __post_init__(self):
    for field, allowed in (("first_turn", {"problem"}), ("sneaky_turn", {"steps", "step", "error"}),
                           ("critic_turn", {"steps", "last"}), ("step_format", {"step"}),
                           ("critique_format", {"analysis", "verdict"})):
      try:
        have = _fields(getattr(self, field))
      except ValueError as e:
        raise ValueError(f"template {self.name!r}: {field} has malformed braces ({e})") from e
      if have != allowed:
        raise ValueError(f"template {self.name!r}: {field} has placeholders {sorted(have)}; needs {sorted(allowed)}")

  def first_prompt(self, problem: str) -> str:
    """The task's own prompt (the base model's solving data: Recipe.warmup_batch)."""
    return self.first_turn.format(problem=problem)

  def steps_text(self, steps) -> str:
    return "".join(self.step_format.format(step=s) for s in steps)

  def sneaky_prompt(self, problem: str, steps, step: str, error: str) -> str:
    return self.first_turn.format(problem=problem) + self.sneaky_turn.format(
        steps=self.steps_text(steps), step=step, error=error)

  def critic_prompt(self, problem: str, steps, last: str) -> str:
    return self.first_turn.format(problem=problem) + self.critic_turn.format(steps=self.steps_text(steps), last=last)

  def critique(self, analysis: str, correct: bool) -> str:
    return self.critique_format.format(analysis=analysis, verdict="Correct" if correct else "Incorrect")


# Toy step game (critjax.rl.recipes.spc): a step is a column. The generator's target is the wrong
# column; the critic re-works the column (its "analysis") and gives the verdict:
#   sneaky  Q: 358+267 = 8+7=15 c1 ; Step: 5+6+1=12 c1 ; Error: sum ; Sneaky: 5+6+1=13 c1
#   critic  Q: 358+267 = 8+7=15 c1 ; 5+6+1=13 c1 ; Check: 5+6+1=12 c1 ; <Answer>Incorrect</Answer>
SPC_ARITH = _register(StepGameTemplate(
    name="spc_arith",
    first_turn="Q: {problem} =",
    sneaky_turn="{steps} Step: {step} ; Error: {error} ; Sneaky:",
    critic_turn="{steps} {last} ; Check:",
    vocabulary=("Q: 358+267 = 8+7=15 c1 ; Step: 5+6+1=12 c1 ; Error: digit ; Error: carry ; Error: sum ; "
                "Sneaky: 5+6+1=13 c1 ; Check: 5+6+1=12 c1 ; <Answer>Correct</Answer> ; <Answer>Incorrect</Answer>"),
))

# Real models (paraphrase of SPC's prompt outline, ALGORITHMS.md Sec. 8): steps one per paragraph.
SPC_MATH = _register(StepGameTemplate(
    name="spc_math",
    first_turn="Problem:\n{problem}\n\nSolution so far:\n",
    sneaky_turn=("{steps}\nThe next step of the solution is:\n{step}\n\nRewrite this step so that it contains a "
                 "subtle error of the type \"{error}\" that a careful reader could miss. Keep the style of the "
                 "solution and reply with the rewritten step only.\n\nRewritten step:\n"),
    critic_turn=("{steps}{last}\n\nAnalyse the idea of the partial solution above, then check its last step "
                 "carefully. Give a brief critique and end with <Answer>Correct</Answer> if the last step is "
                 "correct, or <Answer>Incorrect</Answer> if it is not.\n\nCritique:\n"),
    step_format="{step}\n\n",
    critique_format="{analysis}\n\n<Answer>{verdict}</Answer>",
))


@dataclasses.dataclass(frozen=True)
class GRMTemplate:
  """A pointwise GRM prompt (DeepSeek-GRM / SPCT, arXiv 2504.02495, ALGORITHMS.md §6; our wording):
  the query (`first_turn`, '{problem}'), each response (`response_format`, '{index}' 1-based and
  '{response}'), an optional hint naming the best response (`hint_format`, '{index}': SPCT's hinted
  sampling for rejective fine-tuning), then `instruction`. The GRM writes principles, a critique and
  the scores line critjax.rl.grm_scores parses (`Scores: [[7, 3]]`). `vocabulary`: every word the
  prompts and outputs use (a tokenizer trained on the task sees them)."""
  name: str
  first_turn: str           # {problem}
  response_format: str      # {index} {response}
  instruction: str
  hint_format: str = ""     # {index}; empty: this template has no hinted variant
  vocabulary: str = ""
  # {reference}: the gold answer after the query, for a reference-guided judge (BRPO's toy judge,
  # critjax/data/pair_toy.py); empty: the judge sees no reference (SPCT, Writing-Zero).
  reference_format: str = ""
  # True: each response is shown from its last 'A:' on (the answer and anything after it), for a
  # judge of final answers (BRPO's toy judge); False: whole.
  answer_view: bool = False

  def __post_init__(self):
    for field, allowed in (("first_turn", {"problem"}), ("response_format", {"index", "response"}),
                           ("instruction", set()), ("hint_format", {"index"}), ("reference_format", {"reference"})):
      text = getattr(self, field)
      try:
        have = _fields(text)
      except ValueError as e:
        raise ValueError(f"template {self.name!r}: {field} has malformed braces ({e})") from e
      if have != allowed and (text or field not in ("hint_format", "reference_format")):
        raise ValueError(f"template {self.name!r}: {field} has placeholders {sorted(have)}; needs {sorted(allowed)}")
    if not self.instruction.strip():
      raise ValueError(f"template {self.name!r}: instruction is empty")

  def prompt(self, problem: str, responses, hint_best=None, reference=None) -> str:
    """The GRM's prompt for `responses` in the order given; hint_best (0-based, in that order) adds
    the hint line; `reference` (the gold answer) is shown iff the template has a reference_format,
    which then needs it."""
    if not responses:
      raise ValueError(f"template {self.name!r}: a GRM prompt needs at least one response")
    text = self.first_turn.format(problem=problem)
    if self.reference_format:
      if reference is None:
        raise ValueError(f"template {self.name!r} is reference-guided: its prompt needs the gold answer")
      text += self.reference_format.format(reference=reference)
    if self.answer_view:
      responses = [r[r.rfind(" A:"):] if " A:" in r else r for r in responses]
    text += "".join(self.response_format.format(index=i + 1, response=r) for i, r in enumerate(responses))
    if hint_best is not None:
      if not self.hint_format:
        raise ValueError(f"template {self.name!r} has no hint_format for hinted sampling")
      if not 0 <= hint_best < len(responses):
        raise ValueError(f"hint_best={hint_best} must index one of the {len(responses)} responses")
      text += self.hint_format.format(index=hint_best + 1)
    return text + self.instruction.format()


# Toy GRM (critjax/data/grm_toy.py): the responses are the actor's worked solutions, one per line;
# the oracle trajectory re-works the columns and marks each response's steps, then the scores line:
#   Q: 358+267 =
#   R1: 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; A: 625
#   R2: 8+7=15 c1 ; 5+6+1=13 c1 ; 3+2+1=6 c0 ; A: 635
#   Judge: P: check 3 columns ; 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; R1: ok ok ok ; R2: ok bad ok ; Scores: [[10, 7]]
GRM_ARITH = _register(GRMTemplate(
    name="grm_arith",
    first_turn="Q: {problem} =",
    response_format="\nR{index}:{response}",
    instruction="\nJudge:",
    hint_format="\nBest: R{index}",
    vocabulary=("Q: 358+267 = \nR1: 8+7=15 c1 ; A: 625 \nR2: R3: R4: \nBest: R1 \nJudge: P: check 3 columns ; "
                "R1: ok bad ; R2: ok ok ; Scores: [[10, 7]] ; Scores: [[4, 1, 7, 10]]"),
))

# Toy pairwise judge with the reference answer (BRPO's length-hacking toy, critjax/data/pair_toy.py),
# each response shown from its answer on (answer_view; BENCHMARKS.md, the BRPO toy's design change):
#   Q: 358+267 = Ref: 625
#   R1: A: 625 ; sure ; sure
#   R2: A: 635
#   Judge: R1: A: 625 ok ; R2: A: 635 bad ; Scores: [[10, 1]]
GRM_PAIR_ARITH = _register(GRMTemplate(
    name="grm_pair_arith",
    first_turn="Q: {problem} =",
    reference_format=" Ref: {reference}",
    answer_view=True,
    response_format="\nR{index}:{response}",
    instruction="\nJudge:",
    vocabulary=("Q: 358+267 = Ref: 625 \nR1: 8+7=15 c1 ; A: 625 ; sure ; sure \nR2: A: 635 \nJudge: R1: A: 625 ok ; "
                "R2: A: none bad ; Scores: [[10, 1]] ; Scores: [[1, 10]] ; Scores: [[10, 10]] ; Scores: [[1, 1]]"),
))

# Real models (our paraphrase of SPCT's outline, ALGORITHMS.md §6: principles, then a critique of each
# response against them, then every response's integer score on one last line). The format line's
# letters are not numbers, so a model that echoes it writes no second scores block (grm_scores).
GRM_CHAT = _register(GRMTemplate(
    name="grm_chat",
    first_turn=("You are a careful judge of answers to a user's query. Read the query and the responses "
                "below.\n\nQuery:\n{problem}\n\n"),
    response_format="[Response {index}]\n{response}\n[End of Response {index}]\n\n",
    instruction=("First write a few principles, specific to this query, that a good response must meet, "
                 "and say how much each one matters. Then critique every response against those "
                 "principles, pointing out concrete errors. Finally score each response with an integer "
                 "from 1 (worst) to 10 (best) and end with one line holding all the scores, in the order "
                 "the responses appear: \"Scores: [[a, b, ...]]\", where a is the score of Response 1, b "
                 "that of Response 2, and so on.\n\n"
                 "Principles:\n"),
    hint_format="Hint: the best response is Response {index}.\n\n",
))


def check_grm_template(tpl, field: str, name) -> "GRMTemplate":
  """`tpl` (the template config.recipe_args.<field> = name resolved to), refused unless a GRMTemplate."""
  if not isinstance(tpl, GRMTemplate):
    grm = ", ".join(n for n in TEMPLATES.names() if isinstance(TEMPLATES.get(n), GRMTemplate))
    raise ValueError(f"config.recipe_args.{field}={name!r} is not a GRM template ({grm})")
  return tpl


def get_template(name: str):
  """The template registered under `name` (KeyError listing the known names otherwise)."""
  return TEMPLATES.get(name)
