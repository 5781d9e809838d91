"""Loaders for the critique benchmarks' data in `../shared/data`, and PCBench-style premise items.

Every loader returns a list of small frozen dataclass records with typed fields, an `id`, and
`source` = "<file>:<line>" (the file relative to the data folder when it lies inside it; for a
JSON array the line is where the record starts). Files are read from `../shared/data` (or
`$CRITJAX_DATA_DIR`, see `critjax.data.paths`) unless `root=` names another data folder or
`path=` one file. A bad record -- unparsable JSON line, missing field, wrong type -- raises
ValueError "<path>:<line>: [record <i>: ]field '<name>' ..." (the record index is given for JSON
arrays, 0-based, whose line numbers alone are hard to map back to an element).

  load_processbench     ProcessBench (Zheng et al. 2024), 4 subsets, `label` = first wrong step or -1
  load_realcritic       RealCritic (Tang et al. 2025), 8 tasks: a question, one model's solution
                        (`reasoning`) and whether it is right (`previous_score`)
  load_gsm8k_solutions  CriticBench-style (query, response, judgment) triplets from OpenAI's
                        `example_model_solutions.jsonl`: 4 GPT-3 solutions per GSM8K test problem
  load_judgebench       JudgeBench (Tan et al. 2024) response pairs, `label` 'A>B' / 'B>A'
  load_rmbench          RM-Bench (Liu et al. 2024): 3 chosen and 3 rejected responses per prompt
  load_strategyqa       StrategyQA dev (CritiCal's calibration input), boolean answers
  load_math_perturb     MATH-Perturb simple / hard (CritiCal's input)
  load_gsm8k_problems   GSM8K test problems with their numeric gold (the premise builder's input)
  build_pcbench_style   flawed-premise variants of GSM8K problems (construction below)
  take                  the first `limit` records, refusing limit <= 0, flagging limit > len

PCBench-style premise items (`build_pcbench_style`)
--------------------------------------------------
PCBench (Li et al. 2025, EVALUATION.md §6) is not available offline, so these items are *built*
from the GSM8K test set by fixed rules, one per PCBench error type. They are "PCBench-style"
items, not PCBench: PCBench's flaws were written with an LLM and its three difficulty levels are
three source datasets (Normal = GSM8K, Medium = OlympiadBench / gaokao, Difficult = Omni-MATH),
whereas here every item is a GSM8K problem.

Parsing a problem. The question is split into sentences (at ., ! or ? followed by white space and
an upper-case letter or digit, not after Mr/Mrs/Ms/Dr/St/Jr); the last sentence containing '?'
(else the last sentence) is the *query*, the sentences before it the *premises*. Each line of the
gold worked solution (the text before '####') is a *step*. A step's calculation
`D = <<E=R>>R'` is *usable* when: D, the expression displayed before the calculator annotation,
holds an operator and evaluates (commas, '$' and '%' dropped, x/× as *, ÷ as /) to R; R is a whole
number; and R' is the displayed result right after the annotation. Integers in the text are the
digit tokens not part of a decimal, a fraction or a word ("3", "1,000", "$20"; not "1.5", "1/2",
"3rd").

Wrong values. Every altered number v' is derived from the true value v with a generator seeded by
(seed, error type, problem index): v' = v ± d with d uniform in [1, max(2, |v| // 2)], redrawn
until v' > 0, v' != v, and (for a premise number) v' does not already occur in the question.
Thousands separators and trailing decimals ('$15.00') are kept as the original wrote them.

The four constructions (PCBench's code names):

  contra_premise_insert  A premise sentence holding an integer N is copied with N replaced by N'
      and the copy is inserted at a seeded position among the premises (after the first, before
      the query). Premises that state a quantity (containing is/are/was/were/has/have/had/cost(s)/
      per/each/every) are preferred over event sentences ("He buys 3 ...", which a second
      purchase could explain). flaw_text = the inserted sentence; the flaw: it says N' where the
      original premise says N.
  contra_infer_insert    The first usable step (in solution order) that is not the final step
      gives a fact derivable from the premises: "<text> D = R <rest>". The displayed calculation
      D = R is replaced by a wrong R' ("<text> R' <rest>"), leading 'So'/'Thus'/'Therefore'/
      'Then'/'Hence'/'This means'/'That means' is dropped, and the sentence is inserted like the
      one above (steps whose sentence still holds '=', has under 3 words, or speaks as the solver
      -- let's/we/I/calculate/compute/find/first/next -- are skipped). flaw_text = the inserted sentence; the flaw: the premises give E = R, not R'.
  flawed_solution_completion  A seeded usable step k that is not the final step has its displayed
      result changed to R' ("D = R'", an arithmetic slip); the gold steps 1..k (annotations
      removed) are shown as a partial solution after the question, and the model is asked to
      continue it. flaw_text = the flawed step; the flaw: D is R, not R'.
  irr_query_distraction  The whole gold solution (annotations removed) with one seeded usable
      step's result changed the same way, followed by a seeded question about the solution that
      does not target the error (how many steps / which operations / what unit).
      flaw_text = the flawed step.

Difficulty. PCBench's levels are by source dataset; here they are by reasoning length within
GSM8K: the given problems are ranked by (number of solution steps, number of calculator
annotations, length of the worked solution, problem index) and cut into three equal-as-possible
consecutive thirds, Normal < Medium < Difficult. (So a level is a property of the problem,
relative to the set of problems given.)

Selection. Within a level the problems are shuffled with a generator seeded by (seed, level), and
the four types take turns (the type with fewest eligible problems first) claiming the next
eligible unclaimed problem until each has `per_cell` items, so no base problem is used twice
(PCBench's 100 per cell x 4 types x 3 levels = 1,200 distinct base problems). A cell that cannot
be filled logs a warning and keeps what it has. Same inputs and seed -> the same items, in the same
order (type, level, then the shuffled order).

Each `PremiseItem` has the flawed question, the original question and gold answer, the error type,
the difficulty, a one-line description of the flaw and its location (`flaw_text`, the inserted
sentence or the flawed step verbatim, as PCBench gives its judge `conflict_reason` / the flawed
step), and `instructed_question`, the flawed question with an explicit instruction to check the
premises (PCBench's third variant, used for APCR).
"""
from __future__ import annotations

import ast
import dataclasses
import logging
import operator
import random
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence, TypeVar, Union

from critjax.data.datasets import iter_json_array, iter_jsonl
from critjax.data.paths import data_dir

log = logging.getLogger(__name__)

PathLike = Union[str, Path]
T = TypeVar("T")

PROCESSBENCH_SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
REALCRITIC_TASKS = ("arc-challenge", "college_math", "gpqa", "gsm8k", "math", "minerva_math",
                    "mmlu_stem", "olympiadbench")
REALCRITIC_MULTIPLE_CHOICE = ("arc-challenge", "gpqa", "mmlu_stem")
GSM8K_GENERATORS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
JUDGEBENCH_MODELS = ("gpt-4o-2024-05-13", "claude-3-5-sonnet-20240620")
JUDGEBENCH_LABELS = ("A>B", "B>A")
RMBENCH_DOMAINS = ("chat", "code", "safety-refuse", "safety-response")
RMBENCH_STYLES = ("concise", "detailed_plain", "detailed_markdown")  # order of chosen / rejected
MATH_PERTURB_VARIANTS = ("simple", "hard")

# Every file each loader reads by default, relative to the data folder.
BENCH_FILES: dict[str, tuple[str, ...]] = {
    "processbench": tuple(f"processbench/{s}.json" for s in PROCESSBENCH_SUBSETS),
    "realcritic": tuple(f"realcritic/{t}/test.jsonl" for t in REALCRITIC_TASKS),
    "gsm8k_solutions": ("gsm8k/example_model_solutions.jsonl",),
    "judgebench": tuple(f"judgebench/{m}.jsonl" for m in JUDGEBENCH_MODELS),
    "rmbench": tuple(f"rmbench/{d}_filtered.json" for d in RMBENCH_DOMAINS),
    "strategyqa": ("strategyqa/dev.json",),
    "math_perturb": tuple(f"math_perturb/math_perturb_{v}.jsonl" for v in MATH_PERTURB_VARIANTS),
    "gsm8k_problems": ("gsm8k/test.jsonl",),
}


# ---------------------------------------------------------------------------------------------
# Records


@dataclasses.dataclass(frozen=True)
class ProcessBenchItem:
  id: str
  subset: str
  generator: str
  problem: str
  steps: tuple[str, ...]
  label: int  # 0-based index of the earliest wrong step; -1 = every step is right
  final_answer_correct: bool
  source: str


@dataclasses.dataclass(frozen=True)
class RealCriticItem:
  id: str
  idx: int
  task: str
  question: str
  gold: str  # `gt`
  choices: tuple[str, ...]  # "(A) ..." options for the multiple-choice tasks, else ()
  solution: str  # `reasoning`: the model solution to critique
  solution_answer: str  # `pred`: the final answer extracted from it
  solution_correct: bool  # `previous_score[0]`
  model: str  # the model that wrote the solution
  source: str


@dataclasses.dataclass(frozen=True)
class GSM8KSolutionItem:
  id: str
  problem_index: int  # 0-based line of the problem in the file
  question: str
  gold: str  # after the 'A:' that ends `ground_truth` (equal to gsm8k/test's '####' gold)
  solution: str
  correct: bool  # OpenAI's `is_correct`
  generator: str  # one of GSM8K_GENERATORS
  source: str


@dataclasses.dataclass(frozen=True)
class JudgeBenchItem:
  id: str  # = pair_id
  pair_id: str
  source_dataset: str  # JudgeBench's `source`, e.g. 'mmlu-pro-law', 'livebench-math'
  question: str
  response_A: str
  response_B: str
  label: str  # 'A>B' or 'B>A'
  response_model: str
  source: str


@dataclasses.dataclass(frozen=True)
class RMBenchItem:
  id: str  # '<domain>/<id>' (ids repeat across domains)
  domain: str  # file: chat, code, safety-refuse, safety-response
  subset: str
  prompt: str
  chosen: tuple[str, str, str]  # in RMBENCH_STYLES order
  rejected: tuple[str, str, str]
  source: str


@dataclasses.dataclass(frozen=True)
class StrategyQAItem:
  id: str  # = qid
  qid: str
  question: str
  answer: bool
  facts: tuple[str, ...]
  decomposition: tuple[str, ...]
  source: str


@dataclasses.dataclass(frozen=True)
class MathPerturbItem:
  id: str  # '<variant>/<problem_id>'
  problem_id: int  # shared by the simple and hard perturbation of one MATH problem
  variant: str  # 'simple' or 'hard'
  problem: str
  answer: str  # the file's gold (int / float / str) as text
  level: str
  type: str  # MATH subject
  source: str


@dataclasses.dataclass(frozen=True)
class GSM8KProblem:
  id: str  # 'gsm8k/test/<index>'
  index: int
  question: str
  answer: str  # numeric gold: after the last '####', commas removed
  solution: str  # the worked solution before '####'
  source: str


# ---------------------------------------------------------------------------------------------
# Checked field access


class _Where:
  """A record's location, for error messages and `source`."""

  def __init__(self, path: Path, rel: str, line: int, index: Optional[int] = None):
    self.path, self.rel, self.line, self.index = path, rel, line, index

  def __str__(self):
    rec = f" record {self.index}:" if self.index is not None else ""
    return f"{self.path}:{self.line}:{rec}"

  @property
  def source(self) -> str:
    return f"{self.rel}:{self.line}"


def _tname(v: Any) -> str:
  return "null" if v is None else type(v).__name__


def _fail(where: _Where, name: str, msg: str):
  raise ValueError(f"{where} field {name!r} {msg}")


def _get(rec: dict, name: str, where: _Where) -> Any:
  if name not in rec:
    _fail(where, name, f"is missing (fields: {sorted(rec)})")
  return rec[name]


def _str(rec: dict, name: str, where: _Where) -> str:
  v = _get(rec, name, where)
  if not isinstance(v, str):
    _fail(where, name, f"must be a string, got {_tname(v)}")
  return v


def _int(rec: dict, name: str, where: _Where) -> int:
  v = _get(rec, name, where)
  if not isinstance(v, int) or isinstance(v, bool):
    _fail(where, name, f"must be an integer, got {_tname(v)}")
  return v


def _bool(rec: dict, name: str, where: _Where) -> bool:
  v = _get(rec, name, where)
  if not isinstance(v, bool):
    _fail(where, name, f"must be a boolean, got {_tname(v)}")
  return v


def _str_list(rec: dict, name: str, where: _Where, length: Optional[int] = None) -> tuple[str, ...]:
  return _as_str_list(_get(rec, name, where), name, where, length)


def _as_str_list(v: Any, name: str, where: _Where, length: Optional[int] = None) -> tuple[str, ...]:
  if not isinstance(v, list):
    _fail(where, name, f"must be a list of strings, got {_tname(v)}")
  for i, x in enumerate(v):
    if not isinstance(x, str):
      _fail(where, name, f"must be a list of strings, element {i} is {_tname(x)}")
  if length is not None and len(v) != length:
    _fail(where, name, f"must hold {length} strings, got {len(v)}")
  return tuple(v)


def _root(root: Optional[PathLike]) -> Path:
  return Path(root).expanduser().resolve() if root is not None else data_dir()


def _rel(path: Path, root: Path) -> str:
  try:
    return path.resolve().relative_to(root).as_posix()
  except ValueError:
    return str(path)


def _jsonl(path: Path, root: Path) -> Iterator[tuple[_Where, dict]]:
  rel = _rel(path, root)
  for lineno, rec in iter_jsonl(path):  # names path:line for a line that is not a JSON object
    yield _Where(path, rel, lineno), rec


def _json_array(path: Path, root: Path) -> Iterator[tuple[_Where, dict]]:
  rel = _rel(path, root)
  try:
    for i, (lineno, rec) in enumerate(iter_json_array(path)):
      yield _Where(path, rel, lineno, i), rec
  except ValueError as e:
    if str(e).startswith(str(path)):
      raise
    raise ValueError(f"{path}: {e}") from None


def _select(kind: str, chosen: Optional[Union[str, Sequence[str]]], known: Sequence[str]) -> tuple[str, ...]:
  if chosen is None:
    return tuple(known)
  chosen = (chosen,) if isinstance(chosen, str) else tuple(chosen)
  bad = [c for c in chosen if c not in known]
  if bad or not chosen:
    raise ValueError(f"unknown {kind} {bad or chosen!r}; choose from {tuple(known)}")
  return chosen


def _files(root: Path, path: Optional[PathLike], names: Sequence[str],
           pattern: Callable[[str], str]) -> list[tuple[str, Path]]:
  """(name, file) pairs: the one `path` (its name from `pattern`'s slot) or each default file."""
  if path is not None:
    return [("", Path(path))]
  return [(n, root / pattern(n)) for n in names]


# ---------------------------------------------------------------------------------------------
# Loaders


def load_processbench(subsets: Optional[Union[str, Sequence[str]]] = None, *,
                      path: Optional[PathLike] = None,
                      root: Optional[PathLike] = None) -> list[ProcessBenchItem]:
  """ProcessBench (`processbench/<subset>.json`, JSON arrays): 400 + 1000 + 1000 + 1000 items.
  With `path`, reads that one file; its subset is `subsets` (one name) or the file's stem."""
  root = _root(root)
  names = _select("ProcessBench subset", subsets, PROCESSBENCH_SUBSETS) if path is None else ()
  out = []
  for name, f in _files(root, path, names, lambda s: f"processbench/{s}.json"):
    subset = name or (subsets if isinstance(subsets, str) else Path(f).stem)
    for w, rec in _json_array(f, root):
      steps = _str_list(rec, "steps", w)
      label = _int(rec, "label", w)
      if not -1 <= label < len(steps):
        _fail(w, "label", f"must be -1 or a step index below {len(steps)}, got {label}")
      out.append(ProcessBenchItem(
          id=_str(rec, "id", w), subset=subset, generator=_str(rec, "generator", w),
          problem=_str(rec, "problem", w), steps=steps, label=label,
          final_answer_correct=_bool(rec, "final_answer_correct", w), source=w.source))
  return out


_CHOICE_MARK = re.compile(r"\(([A-J])\)\s")


def _parse_choices(question: str) -> tuple[str, ...]:
  """The "(A) ... (B) ..." options after the last 'Answer Choices:' of a question, or ()."""
  i = question.rfind("Answer Choices:")
  if i < 0:
    return ()
  tail = question[i + len("Answer Choices:"):]
  marks = list(_CHOICE_MARK.finditer(tail))
  letters = [m.group(1) for m in marks]
  if not letters or letters != [chr(ord("A") + k) for k in range(len(letters))]:
    return ()
  ends = [m.start() for m in marks[1:]] + [len(tail)]
  return tuple(tail[m.start():e].strip() for m, e in zip(marks, ends))


def load_realcritic(tasks: Optional[Union[str, Sequence[str]]] = None, *,
                    path: Optional[PathLike] = None,
                    root: Optional[PathLike] = None) -> list[RealCriticItem]:
  """RealCritic (`realcritic/<task>/test.jsonl`): 2,093 items over 8 tasks.

  The solution to critique is `reasoning` (its extracted final answer `pred`), and its label is
  `previous_score` (a one-element list of bools): about half the solutions are right, so a critic
  that changes nothing scores ~50% (EVALUATION.md §2). `choices` is filled for the multiple-choice
  tasks: ARC's {'text','label'} dict and MMLU-STEM's list become "(A) ..." strings; GPQA has no
  `choices` field, so its options are parsed from the question's 'Answer Choices:' line. With
  `path`, the task is `tasks` (one name) or the file's folder name."""
  root = _root(root)
  names = _select("RealCritic task", tasks, REALCRITIC_TASKS) if path is None else ()
  out = []
  for name, f in _files(root, path, names, lambda t: f"realcritic/{t}/test.jsonl"):
    task = name or (tasks if isinstance(tasks, str) else Path(f).parent.name)
    for w, rec in _jsonl(f, root):
      question = _str(rec, "question", w)
      choices: tuple[str, ...] = ()
      if task in REALCRITIC_MULTIPLE_CHOICE:
        raw = rec.get("choices")
        if isinstance(raw, dict):
          texts = _as_str_list(raw.get("text"), "choices.text", w)
          labels = _as_str_list(raw.get("label"), "choices.label", w)
          if len(texts) != len(labels):
            _fail(w, "choices", f"has {len(texts)} texts but {len(labels)} labels")
          choices = tuple(f"({l}) {t}" for l, t in zip(labels, texts))
        elif isinstance(raw, list):
          choices = _str_list(rec, "choices", w)
        elif raw is None:
          choices = _parse_choices(question)
        else:
          _fail(w, "choices", f"must be a dict, a list or absent, got {_tname(raw)}")
        if not choices:
          _fail(w, "choices", "is absent and the question has no '(A) ... (B) ...' options")
      score = _get(rec, "previous_score", w)
      if isinstance(score, list) and len(score) == 1:
        score = score[0]
      if not isinstance(score, bool):
        _fail(w, "previous_score", f"must be a boolean or a one-element list of one, got {score!r}")
      idx = _int(rec, "idx", w)
      out.append(RealCriticItem(
          id=f"realcritic/{task}/{idx}", idx=idx, task=task, question=question,
          gold=_str(rec, "gt", w), choices=choices, solution=_str(rec, "reasoning", w),
          solution_answer=_str(rec, "pred", w), solution_correct=score,
          model=_str(rec, "model", w), source=w.source))
  return out


def _final_after(text: str, mark: str) -> Optional[str]:
  if mark not in text:
    return None
  gold = text.rsplit(mark, 1)[1].strip().replace(",", "")
  return gold or None


def load_gsm8k_solutions(generators: Optional[Union[str, Sequence[str]]] = None, *,
                         path: Optional[PathLike] = None,
                         root: Optional[PathLike] = None) -> list[GSM8KSolutionItem]:
  """CriticBench-style (query, response, judgment) items from `gsm8k/example_model_solutions.jsonl`:
  each line is a GSM8K test problem with `ground_truth` (a worked solution ending 'A: <gold>') and
  four GPT-3 solutions {`is_correct`, `solution`} under 6b_/175b_ finetuning/verification. One
  record per (problem, generator): 1,319 x 4 = 5,276 by default, problem by problem."""
  root = _root(root)
  gens = _select("generator", generators, GSM8K_GENERATORS)
  f = Path(path) if path is not None else root / BENCH_FILES["gsm8k_solutions"][0]
  out = []
  for n, (w, rec) in enumerate(_jsonl(f, root)):
    question = _str(rec, "question", w)
    gold = _final_after(_str(rec, "ground_truth", w), "A:")
    if gold is None:
      _fail(w, "ground_truth", "does not end with 'A: <answer>'")
    for g in gens:
      sol = _get(rec, g, w)
      if not isinstance(sol, dict):
        _fail(w, g, f"must be an object {{is_correct, solution}}, got {_tname(sol)}")
      for k, typ in (("solution", str), ("is_correct", bool)):
        if not isinstance(sol.get(k), typ):
          _fail(w, f"{g}.{k}", "is missing" if k not in sol else
                f"must be a {'string' if typ is str else 'boolean'}, got {_tname(sol[k])}")
      out.append(GSM8KSolutionItem(
          id=f"gsm8k_solutions/{n}/{g}", problem_index=n, question=question, gold=gold,
          solution=sol["solution"], correct=sol["is_correct"], generator=g, source=w.source))
  return out


def load_judgebench(models: Optional[Union[str, Sequence[str]]] = None, *,
                    path: Optional[PathLike] = None,
                    root: Optional[PathLike] = None) -> list[JudgeBenchItem]:
  """JudgeBench (`judgebench/<response model>.jsonl`): 350 GPT-4o pairs + 270 Claude-3.5 pairs;
  `label` is 'A>B' or 'B>A', the objectively correct response winning."""
  root = _root(root)
  names = _select("JudgeBench response model", models, JUDGEBENCH_MODELS) if path is None else ()
  out = []
  for _, f in _files(root, path, names, lambda m: f"judgebench/{m}.jsonl"):
    for w, rec in _jsonl(f, root):
      label = _str(rec, "label", w)
      if label not in JUDGEBENCH_LABELS:
        _fail(w, "label", f"must be one of {JUDGEBENCH_LABELS}, got {label!r}")
      pid = _str(rec, "pair_id", w)
      out.append(JudgeBenchItem(
          id=pid, pair_id=pid, source_dataset=_str(rec, "source", w),
          question=_str(rec, "question", w), response_A=_str(rec, "response_A", w),
          response_B=_str(rec, "response_B", w), label=label,
          response_model=_str(rec, "response_model", w), source=w.source))
  return out


def load_rmbench(domains: Optional[Union[str, Sequence[str]]] = None, *,
                 path: Optional[PathLike] = None,
                 root: Optional[PathLike] = None) -> list[RMBenchItem]:
  """RM-Bench (`rmbench/<domain>_filtered.json`, JSON arrays): 129 chat + 228 code + 284
  safety-refuse + 157 safety-response prompts, each with three `chosen` and three `rejected`
  responses in the order concise, detailed plain text, detailed markdown (RMBENCH_STYLES). The math
  domain is not in the shared data. With `path`, the domain is `domains` (one name) or the stem
  without '_filtered'."""
  root = _root(root)
  names = _select("RM-Bench domain", domains, RMBENCH_DOMAINS) if path is None else ()
  out = []
  for name, f in _files(root, path, names, lambda d: f"rmbench/{d}_filtered.json"):
    domain = name or (domains if isinstance(domains, str) else Path(f).stem.removesuffix("_filtered"))
    for w, rec in _json_array(f, root):
      rid = _int(rec, "id", w)
      out.append(RMBenchItem(
          id=f"{domain}/{rid}", domain=domain, subset=_str(rec, "subset", w),
          prompt=_str(rec, "prompt", w), chosen=_str_list(rec, "chosen", w, 3),
          rejected=_str_list(rec, "rejected", w, 3), source=w.source))
  return out


def load_strategyqa(*, path: Optional[PathLike] = None,
                    root: Optional[PathLike] = None) -> list[StrategyQAItem]:
  """StrategyQA dev (`strategyqa/dev.json`, a JSON array): 229 yes/no questions, `answer` a bool."""
  root = _root(root)
  f = Path(path) if path is not None else root / BENCH_FILES["strategyqa"][0]
  out = []
  for w, rec in _json_array(f, root):
    qid = _str(rec, "qid", w)
    out.append(StrategyQAItem(
        id=qid, qid=qid, question=_str(rec, "question", w), answer=_bool(rec, "answer", w),
        facts=_str_list(rec, "facts", w), decomposition=_str_list(rec, "decomposition", w),
        source=w.source))
  return out


def load_math_perturb(variants: Optional[Union[str, Sequence[str]]] = None, *,
                      path: Optional[PathLike] = None,
                      root: Optional[PathLike] = None) -> list[MathPerturbItem]:
  """MATH-Perturb (`math_perturb/math_perturb_<variant>.jsonl`): 279 simple + 279 hard. The file's
  `answer` is a JSON string, integer or float; it is kept as text (str(int), repr(float)). With
  `path`, the variant is `variants` (one name) or the stem's last '_' part."""
  root = _root(root)
  names = _select("MATH-Perturb variant", variants, MATH_PERTURB_VARIANTS) if path is None else ()
  out = []
  for name, f in _files(root, path, names, lambda v: f"math_perturb/math_perturb_{v}.jsonl"):
    variant = name or (variants if isinstance(variants, str) else Path(f).stem.rsplit("_", 1)[-1])
    for w, rec in _jsonl(f, root):
      ans = _get(rec, "answer", w)
      if isinstance(ans, bool) or not isinstance(ans, (str, int, float)):
        _fail(w, "answer", f"must be a string or a number, got {_tname(ans)}")
      pid = _int(rec, "problem_id", w)
      out.append(MathPerturbItem(
          id=f"{variant}/{pid}", problem_id=pid, variant=variant,
          problem=_str(rec, "problem", w), answer=ans if isinstance(ans, str) else repr(ans),
          level=_str(rec, "level", w), type=_str(rec, "type", w), source=w.source))
  return out


def load_gsm8k_problems(*, path: Optional[PathLike] = None,
                        root: Optional[PathLike] = None) -> list[GSM8KProblem]:
  """GSM8K test (`gsm8k/test.jsonl`): 1,319 problems; `answer` is the text after the last '####'
  with commas removed, `solution` the worked solution before it."""
  root = _root(root)
  f = Path(path) if path is not None else root / BENCH_FILES["gsm8k_problems"][0]
  out = []
  for n, (w, rec) in enumerate(_jsonl(f, root)):
    question = _str(rec, "question", w)
    text = _str(rec, "answer", w)
    gold = _final_after(text, "####")
    if gold is None:
      _fail(w, "answer", "has no '#### <answer>' after its worked solution")
    out.append(GSM8KProblem(
        id=f"gsm8k/test/{n}", index=n, question=question, answer=gold,
        solution=text.rsplit("####", 1)[0].strip(), source=w.source))
  return out


# ---------------------------------------------------------------------------------------------
# Limits


class Taken(list):
  """The records `take` kept (a plain list) plus what was asked: `requested` (None = all),
  `available`, and `short` = True when more were asked for than exist (the caller reports it)."""

  def __init__(self, items: Iterable, requested: Optional[int], available: int):
    super().__init__(items)
    self.requested = requested
    self.available = available
    self.short = requested is not None and requested > available


def take(records: Sequence[T], limit: Optional[int], *, name: str = "records") -> Taken:
  """The first `limit` records (all when `limit` is None). limit <= 0 (or not an integer) raises
  ValueError; limit > len(records) returns all of them with `.short` set and a logged warning."""
  if limit is None:
    return Taken(records, None, len(records))
  if isinstance(limit, bool) or not isinstance(limit, int):
    raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
  if limit <= 0:
    raise ValueError(f"limit must be a positive integer (or None for all), got {limit}")
  out = Taken(records[:limit], limit, len(records))
  if out.short:
    log.warning("limit %d is more than the %d %s available; using all %d", limit, len(records),
                name, len(records))
  return out


# ---------------------------------------------------------------------------------------------
# PCBench-style premise items (construction in the module docstring)

ERROR_TYPES = ("contra_premise_insert", "contra_infer_insert", "flawed_solution_completion",
               "irr_query_distraction")
DIFFICULTIES = ("normal", "medium", "difficult")
CHECK_INSTRUCTION = ("Before answering, check whether the problem's premises (and any solution "
                     "steps given) are consistent and correct; if you find an error or a "
                     "contradiction, point it out explicitly.")
CONTINUE_INSTRUCTION = "Continue this solution from where it stops and give the final answer."
IRRELEVANT_QUERIES = (
    "How many steps does the solution above have?",
    "Which arithmetic operations (addition, subtraction, multiplication, division) does the "
    "solution above use?",
    "In what unit, if any, is the final result of the solution above expressed?",
)


@dataclasses.dataclass(frozen=True)
class PremiseItem:
  id: str  # 'pcbench_style/<error type>/<difficulty>/<gsm8k index>'
  error_type: str  # one of ERROR_TYPES
  difficulty: str  # one of DIFFICULTIES (by reasoning length within GSM8K, not PCBench's)
  flawed_question: str
  flaw: str  # what is wrong, in one line
  flaw_text: str  # the inserted sentence or the flawed step, verbatim in flawed_question
  original_question: str
  original_answer: str  # GSM8K gold of the original problem
  base_id: str  # the GSM8KProblem id
  source: str  # the GSM8K line

  @property
  def instructed_question(self) -> str:
    """The flawed question with the explicit premise-check instruction (PCBench's APCR variant)."""
    return f"{self.flawed_question}\n\n{CHECK_INSTRUCTION}"


_ABBREV = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|vs)\.$")
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9$\"'])")
_INT = re.compile(r"(?<![\w.,/])(\d{1,3}(?:,\d{3})+|\d+)(?![\w/]|[.,]\d)")
_STATE = re.compile(r"\b(?:is|are|was|were|has|have|had|costs?|per|each|every)\b", re.I)
_ANNOT = re.compile(r"<<([^<>]*)>>")
_DISPLAY = re.compile(r"((?:[\d$%(),.\s+\-*/×÷]|(?<=[\d\s)])x(?=[\s\d($]))+)=\s*(\$?)$")
_RESULT = re.compile(r"\d[\d,]*(?:\.\d+)?")
_SOLVER_VOICE = re.compile(r"\b(?:let's|let us|we|I|calculate|compute|find|first|next)\b", re.I)
_LEAD = re.compile(r"^(?:So|Thus|Therefore|Then|Hence|This means|That means)\b,?\s*", re.I)


def _sentences(text: str) -> list[str]:
  parts = _SPLIT.split(text.strip())
  out: list[str] = []
  for p in parts:
    if out and _ABBREV.search(out[-1]):
      out[-1] = f"{out[-1]} {p}"
    else:
      out.append(p)
  return out


def _split_question(question: str) -> tuple[list[str], str]:
  sents = _sentences(question)
  q = max((i for i, s in enumerate(sents) if "?" in s), default=len(sents) - 1)
  return sents[:q], " ".join(sents[q:])


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}


def safe_eval(expr: str) -> Optional[float]:
  """The value of a + - * / arithmetic expression with parentheses, or None if it is not one."""
  try:
    tree = ast.parse(expr, mode="eval")
  except SyntaxError:
    return None

  def ev(node):
    if isinstance(node, ast.Expression):
      return ev(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
        and not isinstance(node.value, bool):
      return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
      return _OPS[type(node.op)](ev(node.left), ev(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
      v = ev(node.operand)
      return -v if isinstance(node.op, ast.USub) else v
    raise ValueError("not arithmetic")

  try:
    return ev(tree)
  except (ValueError, ZeroDivisionError, OverflowError):
    return None


def display_value(display: str) -> Optional[float]:
  """A displayed calculation ('80,000 + 50,000', '3 x 4', '$9 * 2') evaluated, or None."""
  e = display.replace(",", "").replace("$", "").replace("%", "").replace("×", "*") \
      .replace("÷", "/")
  e = re.sub(r"(?<=[\d\s)])x(?=[\s\d(])", "*", e).strip()
  if not re.search(r"\d", e) or not re.search(r"[-+*/]", e):
    return None
  return safe_eval(e)


@dataclasses.dataclass(frozen=True)
class _Calc:
  """A usable calculation in solution line `line`: text[a:b] is 'D = [$]<<E=R>>R''."""
  line: int
  a: int  # start of the displayed expression D
  eq: int  # end of D (where '=' starts)
  b: int  # end of the displayed result R'
  dollar: str
  value: int  # R
  result_text: str  # R' as displayed


def _usable_calcs(lines: Sequence[str]) -> list[_Calc]:
  out = []
  for li, line in enumerate(lines):
    for m in _ANNOT.finditer(line):
      if "=" not in m.group(1):
        continue
      r = _RESULT.match(line, m.end())
      d = _DISPLAY.search(line[:m.start()])
      if r is None or d is None:
        continue
      try:
        value = float(m.group(1).rsplit("=", 1)[1].replace(",", ""))
      except ValueError:
        continue
      if not value.is_integer() or value < 1 or float(r.group().replace(",", "")) != value:
        continue
      lead = len(d.group(1)) - len(d.group(1).lstrip())
      shown = display_value(d.group(1))
      if shown is None or abs(shown - value) > 1e-6:
        continue
      out.append(_Calc(li, d.start(1) + lead, d.start(1) + len(d.group(1).rstrip()), r.end(),
                       d.group(2), int(value), r.group()))
  return out


def _fmt(v: int, like: str) -> str:
  """`v` written like the number `like`: thousands separators and decimals ('15.00') kept."""
  dec = len(like.split(".", 1)[1]) if "." in like else 0
  return f"{v:,.{dec}f}" if "," in like else f"{v:.{dec}f}"


def _wrong(rng: random.Random, v: int, avoid: str = "") -> int:
  span = max(2, abs(v) // 2)
  for _ in range(100):
    w = v + rng.choice((-1, 1)) * rng.randint(1, span)
    if w > 0 and w != v and not re.search(rf"(?<![\d,.]){w}(?![\d])", avoid.replace(",", "")):
      return w
  return v + span + 1  # only reached when every draw was taken; still positive and != v


def _strip_annotations(line: str) -> str:
  return _ANNOT.sub("", line)


def _flawed_line(line: str, c: _Calc, wrong: int) -> str:
  """The step with its displayed result replaced by `wrong` and its annotations removed."""
  new = line[:c.b - len(c.result_text)] + _fmt(wrong, c.result_text) + line[c.b:]
  return _strip_annotations(new).strip()


def _insert(premises: list[str], query: str, sentence: str, rng: random.Random) -> str:
  pos = rng.randint(1, len(premises)) if premises else 0
  return " ".join(premises[:pos] + [sentence] + premises[pos:] + [query])


def _step_block(lines: Sequence[str]) -> str:
  return "\n".join(f"Step {i + 1}: {l}" for i, l in enumerate(lines))


def _make_contra_premise(p: GSM8KProblem, rng: random.Random) -> Optional[tuple[str, str, str]]:
  premises, query = _split_question(p.question)
  cands = [(i, m) for i, s in enumerate(premises) for m in _INT.finditer(s)]
  if not cands:
    return None
  stated = [(i, m) for i, m in cands if _STATE.search(premises[i])]
  i, m = rng.choice(stated or cands)
  n = int(m.group(1).replace(",", ""))
  w = _wrong(rng, n, p.question)
  s = premises[i]
  inserted = s[:m.start(1)] + _fmt(w, m.group(1)) + s[m.end(1):]
  flawed = _insert(premises, query, inserted, rng)
  flaw = (f"The inserted premise {inserted!r} says {_fmt(w, m.group(1))} where the premise "
          f"{s!r} says {m.group(1)}.")
  return flawed, flaw, inserted


def _make_contra_infer(p: GSM8KProblem, rng: random.Random) -> Optional[tuple[str, str, str]]:
  lines = p.solution.split("\n")
  premises, query = _split_question(p.question)
  for c in _usable_calcs(lines):
    if c.line == len(lines) - 1:
      continue
    line = lines[c.line]
    w = _wrong(rng, c.value)
    text = line[:c.a] + c.dollar + str(w) + line[c.b:]
    text = _LEAD.sub("", _strip_annotations(text).strip())
    if "=" in text or "<<" in text or len(re.findall(r"[A-Za-z]+", text)) < 3 \
        or _SOLVER_VOICE.search(text):
      continue
    text = text[0].upper() + text[1:]
    if text[-1] not in ".!?":
      text += "."
    expr = line[c.a:c.eq].strip()
    flawed = _insert(premises, query, text, rng)
    flaw = (f"The inserted statement {text!r} gives {w}, but the premises give "
            f"{expr} = {c.value}.")
    return flawed, flaw, text
  return None


def _solution_flaw(p: GSM8KProblem, rng: random.Random, final_ok: bool):
  lines = p.solution.split("\n")
  cands = [c for c in _usable_calcs(lines) if final_ok or c.line < len(lines) - 1]
  if not cands:
    return None
  c = rng.choice(cands)
  w = _wrong(rng, c.value)
  flawed_step = _flawed_line(lines[c.line], c, w)
  expr = lines[c.line][c.a:c.eq].strip()
  shown = [_strip_annotations(l).strip() for l in lines]
  shown[c.line] = flawed_step
  flaw = (f"Step {c.line + 1} computes {expr} = {c.dollar}{_fmt(w, c.result_text)}; "
          f"it is {c.dollar}{c.result_text}.")
  return c, shown, flawed_step, flaw


def _make_flawed_completion(p: GSM8KProblem, rng: random.Random) -> Optional[tuple[str, str, str]]:
  got = _solution_flaw(p, rng, final_ok=False)
  if got is None:
    return None
  c, shown, step, flaw = got
  flawed = f"{p.question}\n\nPartial solution:\n{_step_block(shown[:c.line + 1])}\n\n" \
           f"{CONTINUE_INSTRUCTION}"
  return flawed, flaw, step


def _make_irrelevant_query(p: GSM8KProblem, rng: random.Random) -> Optional[tuple[str, str, str]]:
  got = _solution_flaw(p, rng, final_ok=True)
  if got is None:
    return None
  _, shown, step, flaw = got
  query = rng.choice(IRRELEVANT_QUERIES)
  flawed = f"{p.question}\n\nSolution:\n{_step_block(shown)}\n\n{query}"
  return flawed, flaw + f" The question asked ({query!r}) does not concern this step.", step


_MAKERS = {
    "contra_premise_insert": _make_contra_premise,
    "contra_infer_insert": _make_contra_infer,
    "flawed_solution_completion": _make_flawed_completion,
    "irr_query_distraction": _make_irrelevant_query,
}


def difficulty_levels(problems: Sequence[GSM8KProblem]) -> dict[str, str]:
  """Problem id -> 'normal' / 'medium' / 'difficult': thirds of the ranking by (solution steps,
  calculator annotations, solution length, index)."""
  def key(p):
    return (p.solution.count("\n") + 1, len(_ANNOT.findall(p.solution)), len(p.solution), p.index)
  ranked = sorted(problems, key=key)
  n = len(ranked)
  return {p.id: DIFFICULTIES[min(2, (3 * r) // n)] for r, p in enumerate(ranked)} if n else {}


def build_pcbench_style(problems: Optional[Sequence[GSM8KProblem]] = None, *,
                        per_cell: int = 100, seed: int = 0,
                        error_types: Sequence[str] = ERROR_TYPES) -> list[PremiseItem]:
  """PCBench-style flawed-premise items from GSM8K test problems (the construction is in the
  module docstring): up to `per_cell` items per (error type, difficulty), distinct base problems,
  deterministic in (problems, per_cell, seed). `problems` defaults to `load_gsm8k_problems()`."""
  if isinstance(per_cell, bool) or not isinstance(per_cell, int) or per_cell <= 0:
    raise ValueError(f"per_cell must be a positive integer, got {per_cell!r}")
  types = _select("error type", list(error_types), ERROR_TYPES)
  problems = list(problems) if problems is not None else load_gsm8k_problems()
  levels = difficulty_levels(problems)

  def make(t: str, p: GSM8KProblem):
    return _MAKERS[t](p, random.Random(f"{seed}:{t}:{p.index}"))

  cells: dict[tuple[str, str], list[PremiseItem]] = {}
  for level in DIFFICULTIES:
    pool = [p for p in problems if levels[p.id] == level]
    random.Random(f"{seed}:{level}").shuffle(pool)
    built = {t: {p.id: make(t, p) for p in pool} for t in types}
    order = sorted(types, key=lambda t: (sum(v is not None for v in built[t].values()),
                                         ERROR_TYPES.index(t)))
    cursor = {t: 0 for t in types}
    used: set[str] = set()
    got: dict[str, list[PremiseItem]] = {t: [] for t in types}
    active = [t for t in order]
    while active:
      for t in list(active):
        while cursor[t] < len(pool):
          p = pool[cursor[t]]
          cursor[t] += 1
          r = built[t][p.id]
          if r is None or p.id in used:
            continue
          used.add(p.id)
          flawed, flaw, flaw_text = r
          got[t].append(PremiseItem(
              id=f"pcbench_style/{t}/{level}/{p.index}", error_type=t, difficulty=level,
              flawed_question=flawed, flaw=flaw, flaw_text=flaw_text,
              original_question=p.question, original_answer=p.answer, base_id=p.id,
              source=p.source))
          break
        if len(got[t]) >= per_cell or cursor[t] >= len(pool):
          active.remove(t)
    for t in types:
      if len(got[t]) < per_cell:
        log.warning("PCBench-style cell (%s, %s): %d of %d items (not enough eligible problems)",
                    t, level, len(got[t]), per_cell)
      cells[t, level] = got[t]
  return [it for t in types for level in DIFFICULTIES for it in cells[t, level]]
