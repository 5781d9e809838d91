"""PCBench-style premise critique (after PCBench, Li et al. 2025, "Don't Take the Premise for
Granted", arXiv 2505.23715): does a model, asked a question with a flawed premise, say so?

Items. PCBench itself is not available offline; the items are the flawed-premise variants of GSM8K
test problems built by critjax/eval/bench_data.py::build_pcbench_style (four error types x three
difficulty levels; read its docstring for how each flaw is made). These are PCBench-*style* items
and the figures are not PCBench's.

Protocol. Each item is asked three times, each prompt being the bare question as the user message
(no answer-format wrapper: an instruction to "solve and give the number" would itself discourage
questioning the premise, and an irrelevant-query item has no numeric answer; UNVERIFIED that
PCBench sends the bare question too). Greedy decoding; stages premise_<variant> and
premise_judge_<variant>, each cached apart.
  normal      the original GSM8K question
  flawed      `flawed_question`
  instructed  `instructed_question` (the flawed question + an explicit instruction to check premises)

Judging whether a response critiques the premise. PCBench's judge is o3-mini, given the flaw's
location, answering JSON {"if_find_contradiction": "True"/"False", "basis": ...}; "True" needs
the response to question the premise explicitly AND pinpoint the specific flaw (solving the problem,
or a vague "this seems off", is False). Offline there is no strong judge, so two judges are
reported side by side:
  rule  a deterministic STAND-IN for PCBench's o3-mini judge, not a reproduction of it. True when
        an un-negated doubt cue (contradiction, inconsistent, conflict, discrepancy, error, mistake,
        incorrect, wrong, typo, miscalculation, doesn't make sense / add up, not correct, ...; "no
        error" and "isn't wrong" do not count) sits in a sentence of the response that names the
        wrong number the item introduced, or in the sentence before or after it (the number:
        contra_premise_insert, the inserted sentence's number absent from the original question;
        contra_infer_insert, the altered derived value; the two solution types, the flawed step's
        wrong result); or, for the two solution types, a doubt cue shares a sentence with the
        flawed step's number ("step 2 is wrong", "the second step has an error"). "..., not 35" /
        "instead of 35" with 35 the wrong number counts as both. Reading chosen: the number (or
        step) is the offline proxy for "pinpoints the specific flaw"; a critique that names the
        flaw only in words is missed (a false negative), so the rule judge is a lower bound in
        that respect and must not be read as PCBench's figure.
  llm   the evaluated model itself, through the same Generator, shown the flawed question, the
        response, the flaw's location (`flaw_text`) and description (`flaw`), and asked for the JSON
        verdict (prompt in our own words). The last "if_find_contradiction": true/false in the reply
        is the verdict; an unparsed reply counts False and its rate is reported. Greedy, at most
        128 new tokens. A small model is a weak judge: read it beside its own false-positive rate.
  Both judges see the flawed question and its flaw for every variant, the normal one included.
  The wrong number also occurs in the original question for ~7% of the contra_infer_insert and
  solution-type items (the builder does not avoid it there); those raise the rule judge's base rate.

Metrics (PCBench's acronyms), in percent:
  PPCR   proactive premise critique rate: judged True on the flawed variant, over the items.
  APCR   the same on the instructed variant.
  *_no_fsc  the same excluding flawed_solution_completion; also per error type and per difficulty.
  normal_false_positive_rate  the judge applied to the normal-variant responses with the same
         item's flaw (for the llm judge, the same prompt with the normal response in it): how often
         a response to the unflawed question is taken for a critique. Chance for PPCR / APCR is 0 (a
         model that never questions a premise, under a judge that needs the flaw pinpointed); this
         rate is the base rate of spurious "critiques" to read PPCR and APCR against.
  normal_acc  final answer on the normal variant (critjax/eval/benches/scaling.py::final_answer,
         checked with math-verify against the GSM8K gold); no answer found = wrong, rate reported.
  PPCCR / APCCR  cost ratios (names from EVALUATION.md §6, UNVERIFIED against the paper): mean
         response length in tokens (the model's tokenizer) on the flawed / instructed variant over
         the mean on the normal variant (PCBench computes it on its easy level; every level here is
         GSM8K, so it is over all items). Reference 1.0: a model that answers the flawed question
         as it answers the original one.

`--limit N`: build_pcbench_style with ceil(N / cells) items per (type, difficulty) cell, taken in an
interleaved order of cells (the first min(N, types) items cover every type, the first min(N, 3)
every level) and rounds, first N; no --limit: 100 per cell, 1,200 items (PCBench's size).
`--subset`: error types, comma-separated (default all four).
"""
from __future__ import annotations

import math
import re
from typing import Optional, Sequence

import numpy as np

from critjax.eval import bench_data
from critjax.eval.benches.base import BENCHES, Bench, Result, pick_subsets, check_limit
from critjax.eval.benches.scaling import final_answer
from critjax.eval.generation import Sampling

ERROR_TYPES = bench_data.ERROR_TYPES
DIFFICULTIES = bench_data.DIFFICULTIES
FSC = "flawed_solution_completion"
SOLUTION_TYPES = ("flawed_solution_completion", "irr_query_distraction")
VARIANTS = ("normal", "flawed", "instructed")

# --- the flaw of an item, as numbers a critique would name -----------------------------------------

_NUM = re.compile(r"(?<![\d.])\d+(?:,\d{3})*(?:\.\d+)?")
_INFER_FLAW = re.compile(r"gives (\d+), but the premises give (.+) = (\d+)\.$")
_STEP_FLAW = re.compile(r"^Step (\d+) computes (.+?) = \$?([\d,]+(?:\.\d+)?); it is \$?([\d,]+(?:\.\d+)?)\.")
_PREMISE_TRUE = re.compile(r"says ([\d,]+(?:\.\d+)?)\.$")


def numbers(text: str) -> list[float]:
  """The numbers written in `text` ('1,000' -> 1000.0; no sign: '40-14' is 40 and 14)."""
  return [float(m.group().replace(",", "")) for m in _NUM.finditer(text)]


def flaw_values(item) -> tuple[set, set, Optional[int]]:
  """(wrong values, true values, flawed step number or None) of a PremiseItem, read from the
  fields build_pcbench_style writes (its `flaw` sentences have a fixed form)."""
  t = item.error_type
  if t == "contra_premise_insert":
    m = _PREMISE_TRUE.search(item.flaw)
    # the builder draws the inserted number so that it does not occur in the question
    wrong = set(numbers(item.flaw_text)) - set(numbers(item.original_question))
    if m is None or not wrong:
      raise ValueError(f"{item.id}: cannot read the inserted number from flaw {item.flaw!r}")
    return wrong, {float(m.group(1).replace(",", ""))}, None
  if t == "contra_infer_insert":
    m = _INFER_FLAW.search(item.flaw)
    if m is None:
      raise ValueError(f"{item.id}: flaw {item.flaw!r} is not 'gives W, but the premises give E = R.'")
    return {float(m.group(1))}, {float(m.group(3))}, None
  m = _STEP_FLAW.search(item.flaw)
  if t not in SOLUTION_TYPES or m is None:
    raise ValueError(f"{item.id}: flaw {item.flaw!r} of type {t!r} is not 'Step k computes E = W; it is R.'")
  return {float(m.group(3).replace(",", ""))}, {float(m.group(4).replace(",", ""))}, int(m.group(1))


# --- the rule judge ---------------------------------------------------------------------------

_DOUBT_WORD = re.compile(
    r"\b(?:contradict\w*|inconsisten\w*|conflict\w*|discrepanc\w*|errors?|erroneous\w*|mistake\w*|"
    r"mistaken|incorrect\w*|wrong\w*|typo\w*|miscalculat\w*|inaccura\w*|flaw\w*|invalid|impossible|"
    r"mismatch\w*)\b", re.I)
# Phrases that carry their own negation: never themselves negated.
_DOUBT_PHRASE = re.compile(
    r"(?:\bnot|n't)\s+(?:correct|right|accurate|consistent|possible|add\s+up|make\s+(?:any\s+)?sense|match)\b|"
    r"\bmakes?\s+no\s+sense\b|\bno\s+sense\b", re.I)
_NEGATION = re.compile(r"\b(?:no|not|never|without|none|nothing)\b|n't\b|\bfree\s+of\b", re.I)
_CLAUSE_END = re.compile(r"[,;:()]")
_RESPONSE_SENT = re.compile(r"(?<=[.!?])\s+|\n+")
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
_NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def has_doubt(text: str) -> bool:
  """An explicit doubt cue not negated within its clause ("no contradiction", "isn't an error" and
  "error-free" do not count; "does not make sense" does)."""
  if _DOUBT_PHRASE.search(text):
    return True
  for m in _DOUBT_WORD.finditer(text):
    if text[m.end():m.end() + 5].lower().startswith(("-free", " free")):
      continue
    before = _CLAUSE_END.split(text[:m.start()])[-1]
    if not _NEGATION.search(" ".join(before.split()[-3:])):
      return True
  return False


def _value_re(v: float) -> str:
  return f"{int(v):,}|{int(v)}" if float(v).is_integer() else re.escape(f"{v:g}")


def names_wrong_value(text: str, wrong: set) -> bool:
  return any(v in wrong for v in numbers(text))


def names_step(text: str, step: Optional[int]) -> bool:
  """'step 2', 'step #2', 'the second step', 'step two' for step 2."""
  if step is None:
    return False
  pat = rf"\bstep\s*(?:#\s*)?{step}\b"
  if step <= len(_ORDINALS):
    pat += rf"|\b{_ORDINALS[step - 1]}\s+step\b|\bstep\s+{_NUMBER_WORDS[step - 1]}\b"
  return re.search(pat, text, re.I) is not None


def rule_judge(response: str, item) -> bool:
  """True when the response questions the premise and names the item's flaw (module docstring).
  A wrong number may sit in the sentence before or after the doubt cue ("That's inconsistent. It
  says 173 and 200."); a step reference must share its sentence with the cue, since a response that
  checks every step names each of them."""
  wrong, _, step = flaw_values(item)
  sents = [s for s in _RESPONSE_SENT.split(response) if s.strip()]
  values = "|".join(_value_re(v) for v in sorted(wrong))
  denial = re.compile(rf"\b(?:not|instead\s+of|rather\s+than)\s+\$?(?:{values})(?![\d,]*\d|\.\d)", re.I)
  for i, s in enumerate(sents):
    if denial.search(s):
      return True
    if names_wrong_value(s, wrong) and any(has_doubt(w) for w in sents[max(0, i - 1):i + 2]):
      return True
    if names_step(s, step) and has_doubt(s):
      return True
  return False


# --- the LLM judge ----------------------------------------------------------------------------

JUDGE_PROMPT = """You are grading whether a response noticed a flaw planted in the problem it was \
given.

Problem:
{question}

Response:
{response}

The flaw planted in the problem is here: {flaw_text}
What is wrong with it: {flaw}

Did the response explicitly question the problem's premises (or the given solution steps) AND point \
to this specific flaw? Just solving the problem, or a vague remark that something may be off, does \
not count. Reply with only a JSON object of the form
{{"if_find_contradiction": "True", "basis": "one sentence"}} or \
{{"if_find_contradiction": "False", "basis": "one sentence"}}."""

_VERDICT = re.compile(
    r"""["']?if_find_contradiction["']?\s*[:=]\s*["']?\s*(true|false)\b"""
    r"""(?!["']?\s*(?:or|/|\|)\s*["']?(?:true|false))""", re.I)


def parse_verdict(text: str) -> Optional[bool]:
  """The last `"if_find_contradiction": "True"/"False"` (quotes optional, any case, a JSON boolean
  too) in the judge's reply; None when there is none. An echo of a template offering both values
  ('"True" or "False"') is not a verdict."""
  found = _VERDICT.findall(text)
  return None if not found else found[-1].lower() == "true"


# --- metrics ----------------------------------------------------------------------------------

def critique_rates(name: str, judged: Sequence[bool], types: Sequence[str], levels: Sequence[str]) -> dict:
  """`name` (PPCR or APCR) in percent: over all items, without flawed_solution_completion, per error
  type and per difficulty (groups with no item are left out)."""
  j, t, l = np.asarray(judged, bool), np.asarray(types), np.asarray(levels)
  if not (len(j) == len(t) == len(l)) or not len(j):
    raise ValueError(f"critique_rates: {len(j)} verdicts, {len(t)} types, {len(l)} levels")
  out = {name: 100 * float(j.mean())}
  if (t != FSC).any():
    out[f"{name}_no_fsc"] = 100 * float(j[t != FSC].mean())
  for col, values in ((t, ERROR_TYPES), (l, DIFFICULTIES)):
    for v in values:
      if (col == v).any():
        out[f"{name}/{v}"] = 100 * float(j[col == v].mean())
  return out


def cost_ratio(lengths_variant: Sequence[int], lengths_normal: Sequence[int]) -> float:
  """Mean response length on a flawed variant over the mean on the normal variant (tokens)."""
  a, b = np.asarray(lengths_variant, float), np.asarray(lengths_normal, float)
  if len(a) != len(b) or not len(a) or b.mean() == 0:
    raise ValueError(f"cost_ratio: {len(a)} and {len(b)} lengths, normal mean {b.mean() if len(b) else None}")
  return float(a.mean() / b.mean())


# --- items ------------------------------------------------------------------------------------

def cell_order(types: Sequence[str]) -> list[tuple[str, str]]:
  """Every (type, level) cell once, ordered so that each run of len(types) cells has every type and
  each run of 3 every level (possible together because the step also shifts the level once per
  lcm(len(types), 3) cells)."""
  n, k = len(types), len(DIFFICULTIES)
  lcm = n * k // math.gcd(n, k)
  order = [(types[j % n], DIFFICULTIES[(j + j // lcm) % k]) for j in range(n * k)]
  assert len(set(order)) == n * k, order
  return order


def interleave(items: Sequence, types: Sequence[str]) -> list:
  """`items` (build_pcbench_style's, grouped by cell) in rounds: one item of each cell per round,
  cells in `cell_order`."""
  cells: dict = {}
  for it in items:
    cells.setdefault((it.error_type, it.difficulty), []).append(it)
  rounds = max((len(v) for v in cells.values()), default=0)
  return [cells[c][r] for r in range(rounds) for c in cell_order(types) if r < len(cells.get(c, []))]


@BENCHES.register("premise")
class PremiseCritique(Bench):
  name = "premise"
  description = "PCBench-style premise critique on flawed GSM8K variants: PPCR, APCR, cost ratio (rule and LLM judge)"

  def load(self, limit, subset):
    check_limit(limit)
    types = pick_subsets(subset, ERROR_TYPES, "error type")
    per_cell = 100 if limit is None else math.ceil(limit / (len(types) * len(DIFFICULTIES)))
    built = bench_data.build_pcbench_style(per_cell=per_cell, error_types=types)
    return self.take(interleave(built, types), limit, "PCBench-style items")

  def run(self, gen, items, opts) -> Result:
    from critjax.rewards.math_reward import MathVerifier
    s = Sampling(max_new_tokens=opts.get("max_new_tokens", 1024))
    questions = {"normal": lambda it: it.original_question, "flawed": lambda it: it.flawed_question,
                 "instructed": lambda it: it.instructed_question}
    out = {v: gen.generate(f"premise_{v}", [(it.id, [{"role": "user", "content": q(it)}]) for it in items], s)
           for v, q in questions.items()}
    resp = {v: [out[v][it.id][0] for it in items] for v in VARIANTS}
    js = Sampling(max_new_tokens=min(128, s.max_new_tokens))
    judge_out = {v: gen.generate(f"premise_judge_{v}", [(it.id, [{"role": "user", "content": JUDGE_PROMPT.format(
        question=it.flawed_question, response=r, flaw_text=it.flaw_text, flaw=it.flaw)}])
        for it, r in zip(items, resp[v])], js) for v in VARIANTS}
    judge_text = {v: [judge_out[v][it.id][0] for it in items] for v in VARIANTS}
    llm_raw = {v: [parse_verdict(t) for t in judge_text[v]] for v in VARIANTS}
    verdicts = {"rule": {v: [rule_judge(r, it) for r, it in zip(resp[v], items)] for v in VARIANTS},
                "llm": {v: [x is True for x in llm_raw[v]] for v in VARIANTS}}

    answers = [final_answer(r) for r in resp["normal"]]
    with MathVerifier(num_workers=1) as mv:
      correct, _ = mv.score([it.original_answer for it in items], ["\\boxed{" + a + "}" for a in answers])
    correct = np.asarray(correct) > 0
    tok = gen.model.tokenizer
    lengths = {v: [len(tok.encode(r)) for r in resp[v]] for v in VARIANTS}

    types, levels = [it.error_type for it in items], [it.difficulty for it in items]
    metrics, chance = {}, {}
    for j in ("rule", "llm"):
      for acr, v in (("PPCR", "flawed"), ("APCR", "instructed")):
        for k, x in critique_rates(acr, verdicts[j][v], types, levels).items():
          metrics[f"{j}/{k}"], chance[f"{j}/{k}"] = x, 0.0
      metrics[f"{j}/normal_false_positive_rate"] = 100 * float(np.mean(verdicts[j]["normal"]))
    for v in VARIANTS:
      metrics[f"llm/judge_parse_failure_rate/{v}"] = 100 * float(np.mean([x is None for x in llm_raw[v]]))
    metrics["normal_acc"] = 100 * float(correct.mean())
    metrics["normal_answer_parse_failure_rate"] = 100 * float(np.mean([a == "" for a in answers]))
    for v in VARIANTS:
      metrics[f"mean_tokens/{v}"] = float(np.mean(lengths[v]))
    if np.mean(lengths["normal"]) > 0:
      metrics["PPCCR"] = cost_ratio(lengths["flawed"], lengths["normal"])
      metrics["APCCR"] = cost_ratio(lengths["instructed"], lengths["normal"])
      chance["PPCCR"] = chance["APCCR"] = 1.0

    rows = []
    for i, it in enumerate(items):
      row = {"id": it.id, "error_type": it.error_type, "difficulty": it.difficulty, "flaw": it.flaw,
             "flaw_text": it.flaw_text, "gold": it.original_answer, "normal_answer": answers[i],
             "normal_correct": bool(correct[i])}
      for v in VARIANTS:
        row[v] = {"output": resp[v][i], "tokens": lengths[v][i], "rule": verdicts["rule"][v][i],
                  "llm": llm_raw[v][i], "judge_output": judge_text[v][i]}
      rows.append(row)
    return Result(metrics=metrics, chance=chance, items=rows)
