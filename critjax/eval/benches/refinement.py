"""Test-time scaling by sequential refinement on GSM8K: accuracy against the refinement round.

Two loops, one model playing every part. Dimension key: N problems, R rounds (`--subset`, default
3), T = R + 1 attempts; attempt t1 is round 0, the first answer, and attempt t(r+1) is the answer
after round r. Round 0 is the scaling bench's greedy answer (scaling.py: the same PROMPT, stage
name "scaling_greedy" and sampling, so the two benches share those generations); answers are
read with scaling.final_answer (the number after the last "answer is", else the last number) and
scored by math-verify against the gold; an answer with no number is wrong, its rate reported as
`no_answer_t{t}`.

"self_refine": the untargeted self-critique-and-refine loop of "Democratizing LLMs" (Shashidhar
et al., EMNLP Findings 2023, arXiv 2310.07611: iterative self-critique and self-refinement with no
external feedback). READING (the paper's prompts and round count are not in our specs; we know its
abstract): each round the model reviews its previous solution with no hint whether it is right or
wrong (untargeted), then writes a new solution given that review; every problem runs all R rounds.

"rubric_verify": DeepVerifier's loop (Wan et al. 2026, arXiv 2601.15808: a verifier guided by
rubrics checks the agent's answer and feeds its feedback back for refinement, round after round).
READING for single-turn math (the paper verifies web-agent trajectories with rubrics derived from
its failure taxonomy and decomposed sub-questions, none of which exists here): the model writes a
checklist (rubric) for the problem once; each round it verifies the current solution against the
checklist, writing "Feedback: ..." and "Verdict: PASS" or "Verdict: FAIL". A PASS keeps the answer
and ends that problem's loop (later rounds carry it unchanged); a FAIL, or a verdict that does not
parse (counted as FAIL, its rate reported), leads to a refinement told that the checker found the
solution wrong, given the feedback. Only problems still in the loop are generated for.

Metrics (percent), from self_correction.py's SCoRe definitions (EVALUATION.md §9):
  acc_t{t}                          accuracy of attempt t (the curve "accuracy" against t)
  delta_i2c_t{t}_t{t+1}, delta_c2i  Δ^{i→c} / Δ^{c→i} between consecutive attempts, as fractions of
                                    all N (the curves "i→c", "c→i" at x = t + 1)
  delta, delta_i2c, delta_c2i       the same from t1 to tT (the whole loop)
  changed_t{t}_t{t+1}               share of problems whose normalised answer changed
rubric_verify adds the verifier's figures over every (problem, round) it verified, the verdict
against the verified answer's true correctness: verifier_acc (a PASS on a right answer, a FAIL on
a wrong one), verifier_acc_on_correct / _on_incorrect, verdict_unparsed_rate (unparsed = FAIL),
and per round in_loop_r{r} (problems verified that round) and pass_rate_r{r} (PASS among them).
Chance: accuracy has none for open answers (acc_t1, the model's own first answer, is the
reference); verifier_acc is 50 for a coin and the majority-class rate of the verified answers for
a constant verdict (always FAIL = refine every round), both in `chance`.
The curves' x is the attempt t (1..T) rather than the round (0..R): the plot's log2 axis would
drop a point at 0.
"""
from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np

from critjax.eval import bench_data, bench_metrics
from critjax.eval.benches.base import BENCHES, Bench, Result
from critjax.eval.benches.scaling import PROMPT, final_answer, normalize
from critjax.eval.generation import Sampling
from critjax.eval.self_correction import transitions

DEFAULT_ROUNDS = 3
RUBRIC_TOKENS = 256      # a checklist needs few tokens; a longer one crowds every verify prompt

# The refinement prompts put the problem and the instruction last: a prompt over max_prompt_len
# loses its start, which is then part of the old solution rather than the question.
CRITIQUE_PROMPT = """Read the math problem and the solution below. Review the solution step by \
step: check every calculation, and whether the reasoning answers the question that was asked. \
List any problems you find. Do not write a new solution.

Problem: {question}

Solution:
{solution}"""

REFINE_PROMPT = """Below are a solution to a math problem and a review of that solution.

Solution:
{solution}

Review:
{critique}

Problem: {question}

Taking the review into account where it is right, write a complete solution to the problem step \
by step. End with "The answer is N." where N is a number."""

RUBRIC_PROMPT = """Write a short checklist (3 to 5 numbered items) that a grader could use to \
check a solution to the math problem below: which given quantities must be used, which steps are \
needed, and what the final number must describe (what it counts, its unit). Do not solve the \
problem.

Problem: {question}"""

VERIFY_PROMPT = """You are checking a proposed solution to a math problem against a checklist.

Problem: {question}

Checklist:
{rubric}

Proposed solution:
{solution}

Go through the checklist item by item and recompute the key steps. Then write "Feedback:" followed \
by what is wrong and how to fix it (or "none"). On the last line write "Verdict: PASS" if the \
solution meets every item and its final answer is right, or "Verdict: FAIL" if it does not."""

FIX_PROMPT = """A checker judged the following solution to a math problem wrong and gave feedback.

Solution:
{solution}

Feedback:
{feedback}

Problem: {question}

Using the feedback, write a corrected, complete solution to the problem step by step. End with \
"The answer is N." where N is a number."""

VERDICT = re.compile(r"\**verdict\s*\**\s*[:：]\s*\**\s*(pass|fail)", re.IGNORECASE)
FEEDBACK = re.compile(r"feedback\s*\**\s*[:：]", re.IGNORECASE)


def parse_verdict(text: str) -> Optional[bool]:
  """True (PASS), False (FAIL) or None: the last `Verdict: PASS|FAIL` in the text (markdown bold
  and "PASSED" / "FAILED" allowed)."""
  found = VERDICT.findall(text)
  return None if not found else found[-1].lower() == "pass"


def split_verification(text: str) -> tuple[Optional[bool], str]:
  """(verdict, feedback): the feedback is the text after the last "Feedback:" up to the last
  verdict; without a "Feedback:" label, the whole text less its verdict lines."""
  verdict = parse_verdict(text)
  marks = list(VERDICT.finditer(text))
  end = marks[-1].start() if marks else len(text)
  fb = list(FEEDBACK.finditer(text[:end]))
  if fb:
    feedback = text[fb[-1].end():end]
  else:
    feedback = "\n".join(line for line in text.splitlines() if not VERDICT.search(line))
  return verdict, feedback.strip()


def _user(content: str) -> list[dict]:
  return [{"role": "user", "content": content}]


def first_answers(gen, items, max_new: int) -> dict:
  """id -> the greedy round-0 solution (the scaling bench's stage, shared with it)."""
  reqs = [(it.id, _user(PROMPT.format(question=it.question))) for it in items]
  out = gen.generate("scaling_greedy", reqs, Sampling(max_new_tokens=max_new))
  return {it.id: out[it.id][0] for it in items}


def self_refine_loop(gen, items, rounds: int, max_new: int) -> dict:
  """texts (N, T) solutions, critiques (N, R): R untargeted critique -> refine rounds."""
  s = Sampling(max_new_tokens=max_new)
  first = first_answers(gen, items, max_new)
  texts = [[first[it.id]] for it in items]
  critiques = [[] for _ in items]
  for r in range(1, rounds + 1):
    crit = gen.generate(f"self_refine_critique_{r}", [
        (it.id, _user(CRITIQUE_PROMPT.format(question=it.question, solution=row[-1])))
        for it, row in zip(items, texts)], s)
    new = gen.generate(f"self_refine_refine_{r}", [
        (it.id, _user(REFINE_PROMPT.format(question=it.question, solution=row[-1], critique=crit[it.id][0])))
        for it, row in zip(items, texts)], s)
    for it, row, cs in zip(items, texts, critiques):
      cs.append(crit[it.id][0])
      row.append(new[it.id][0])
  return {"texts": texts, "critiques": critiques}


def rubric_verify_loop(gen, items, rounds: int, max_new: int) -> dict:
  """texts (N, T) solutions (a problem out of the loop carries its last one); rubrics (N,);
  verdicts and feedback: per problem one entry per round it was verified (round j + 1 verified
  texts[n][j]), so a list stops after its first PASS."""
  s = Sampling(max_new_tokens=max_new)
  first = first_answers(gen, items, max_new)
  rub = gen.generate("rubric_verify_rubric", [(it.id, _user(RUBRIC_PROMPT.format(question=it.question)))
                                              for it in items], Sampling(max_new_tokens=min(max_new, RUBRIC_TOKENS)))
  rubrics = [rub[it.id][0] for it in items]
  texts = [[first[it.id]] for it in items]
  verdicts: list[list] = [[] for _ in items]
  feedback: list[list] = [[] for _ in items]
  active = list(range(len(items)))
  for r in range(1, rounds + 1):
    if active:
      out = gen.generate(f"rubric_verify_verify_{r}", [
          (items[i].id, _user(VERIFY_PROMPT.format(question=items[i].question, rubric=rubrics[i],
                                                   solution=texts[i][-1]))) for i in active], s)
      for i in active:
        v, fb = split_verification(out[items[i].id][0])
        verdicts[i].append(v)
        feedback[i].append(fb)
      active = [i for i in active if verdicts[i][-1] is not True]      # unparsed counts as FAIL
    fixed = {}
    if active:
      fixed = gen.generate(f"rubric_verify_refine_{r}", [
          (items[i].id, _user(FIX_PROMPT.format(question=items[i].question, solution=texts[i][-1],
                                                feedback=feedback[i][-1] or "(none given)"))) for i in active], s)
    for i, row in enumerate(texts):
      row.append(fixed[items[i].id][0] if items[i].id in fixed else row[-1])
  return {"texts": texts, "rubrics": rubrics, "verdicts": verdicts, "feedback": feedback}


def refinement_metrics(correct_nt, answers_nt: Sequence[Sequence[str]]) -> dict[str, float]:
  """The per-attempt figures of the module docstring, in percent. correct_nt: (N, T) bool;
  answers_nt: (N, T) extracted answers ('' = none)."""
  c = np.asarray(correct_nt, bool)
  n, t_count = c.shape
  if len(answers_nt) != n or any(len(row) != t_count for row in answers_nt):
    raise ValueError(f"answers must have shape (N, T) = {c.shape}")
  out: dict[str, float] = {}
  for t in range(t_count):
    out[f"acc_t{t + 1}"] = 100 * float(c[:, t].mean())
  for t in range(t_count):
    out[f"no_answer_t{t + 1}"] = 100 * float(np.mean([row[t] == "" for row in answers_nt]))
  for t in range(t_count - 1):
    tr = transitions(c, t, t + 1)
    s = f"_t{t + 1}_t{t + 2}"
    out["delta_i2c" + s], out["delta_c2i" + s] = 100 * tr["delta_i2c"], 100 * tr["delta_c2i"]
    out["changed" + s] = 100 * float(np.mean([normalize(row[t]) != normalize(row[t + 1]) for row in answers_nt]))
  if t_count > 1:
    out.update({k: 100 * v for k, v in transitions(c, 0, t_count - 1).items()})
  return out


def verifier_metrics(verdicts: Sequence[Sequence[Optional[bool]]], correct_nt, rounds: int) -> dict[str, float]:
  """The verifier's figures (percent) over every (problem n, round j + 1) verified: verdicts[n][j]
  (True PASS, False FAIL, None unparsed = FAIL) against correct_nt[n, j], the verified answer."""
  c = np.asarray(correct_nt, bool)
  said = [v is True for row in verdicts for v in row]
  labels = [bool(c[n, j]) for n, row in enumerate(verdicts) for j in range(len(row))]
  m = bench_metrics.criticbench_accuracy(said, labels)
  out = {"verifier_acc": 100 * m["acc"], "verifier_acc_on_correct": 100 * m["acc_on_correct"],
         "verifier_acc_on_incorrect": 100 * m["acc_on_incorrect"],
         "verdict_unparsed_rate": 100 * float(np.mean([v is None for row in verdicts for v in row]))}
  for j in range(rounds):
    here = [row[j] for row in verdicts if len(row) > j]
    out[f"in_loop_r{j + 1}"] = 100 * len(here) / len(verdicts)
    out[f"pass_rate_r{j + 1}"] = 100 * float(np.mean([v is True for v in here])) if here else float("nan")
  return out


def verifier_chance(verdicts, correct_nt) -> dict[str, float]:
  c = np.asarray(correct_nt, bool)
  labels = np.array([c[n, j] for n, row in enumerate(verdicts) for j in range(len(row))], bool)
  p = float(labels.mean())
  return {"verifier_acc": 50.0, "verifier_acc_majority_class": 100 * max(p, 1 - p)}


def score_attempts(items, texts_nt) -> tuple[list[list[str]], np.ndarray]:
  """(answers (N, T), correct (N, T) bool) by math-verify against each problem's gold."""
  from critjax.rewards.math_reward import MathVerifier
  answers = [[final_answer(t) for t in row] for row in texts_nt]
  t_count = len(texts_nt[0])
  with MathVerifier(num_workers=1) as mv:
    ok, _ = mv.score([it.answer for it in items for _ in range(t_count)],
                     ["\\boxed{" + a + "}" for row in answers for a in row])
  return answers, np.asarray(ok).reshape(len(items), t_count) > 0


def _curves(metrics: dict, t_count: int) -> dict:
  later = list(range(2, t_count + 1))
  return {"accuracy": {"x": list(range(1, t_count + 1)), "y": [metrics[f"acc_t{t}"] for t in range(1, t_count + 1)]},
          "i→c": {"x": later, "y": [metrics[f"delta_i2c_t{t - 1}_t{t}"] for t in later]},
          "c→i": {"x": later, "y": [metrics[f"delta_c2i_t{t - 1}_t{t}"] for t in later]}}


class _Refinement(Bench):
  def load(self, limit, subset):
    self.rounds = DEFAULT_ROUNDS if subset in (None, "all") else _rounds(subset)
    return self.take(bench_data.load_gsm8k_problems(), limit, "gsm8k test problems")


def _rounds(subset: str) -> int:
  try:
    r = int(subset)
  except ValueError:
    r = 0
  if r < 1:
    raise ValueError(f"--subset={subset!r}: the number of refinement rounds must be an integer >= 1")
  return r


@BENCHES.register("self_refine")
class SelfRefine(_Refinement):
  name = "self_refine"
  description = "GSM8K accuracy against rounds of untargeted self-critique and refinement (curve)"

  def run(self, gen, items, opts) -> Result:
    loop = self_refine_loop(gen, items, self.rounds, opts.get("max_new_tokens", 384))
    answers, c = score_attempts(items, loop["texts"])
    metrics = refinement_metrics(c, answers)
    rows = [{"id": it.id, "gold": it.answer, "answers": a, "correct": ok.tolist(), "texts": t, "critiques": cr}
            for it, a, ok, t, cr in zip(items, answers, c, loop["texts"], loop["critiques"])]
    return Result(metrics=metrics, chance={}, items=rows, curves=_curves(metrics, self.rounds + 1))


@BENCHES.register("rubric_verify")
class RubricVerify(_Refinement):
  name = "rubric_verify"
  description = "GSM8K accuracy against rounds of rubric-guided self-verification and refinement (curve)"

  def run(self, gen, items, opts) -> Result:
    loop = rubric_verify_loop(gen, items, self.rounds, opts.get("max_new_tokens", 384))
    answers, c = score_attempts(items, loop["texts"])
    metrics = refinement_metrics(c, answers)
    metrics.update(verifier_metrics(loop["verdicts"], c, self.rounds))
    name = {True: "PASS", False: "FAIL", None: "unparsed"}
    rows = [{"id": it.id, "gold": it.answer, "answers": a, "correct": ok.tolist(), "rubric": rb,
             "verdicts": [name[v] for v in vs], "feedback": fb, "texts": t}
            for it, a, ok, rb, vs, fb, t in zip(items, answers, c, loop["rubrics"], loop["verdicts"],
                                                loop["feedback"], loop["texts"])]
    return Result(metrics=metrics, chance=verifier_chance(loop["verdicts"], c), items=rows,
                  curves=_curves(metrics, self.rounds + 1))
