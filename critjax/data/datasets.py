"""Dataset loaders: each returns a list of frozen `Example(id, prompt, answer, meta)` records.

A config names its dataset (`config.data.name = 'gsm8k'`) and `DATASETS.get(name)(**kwargs)` loads
it; every loader takes `path=` so the same format can be read from anywhere (the default is the
copy under `../shared/data`, see `critjax.data.paths`).

  gsm8k      question / answer; the gold is the text after the last '####' (Cobbe et al. 2021)
  math500    problem / solution / answer (Lightman et al. 2023, PRM800K test split of MATH)
  humaneval  task_id / prompt / entry_point / canonical_solution / test (Chen et al. 2021)
  jsonl      any JSON-lines file (optionally .gz), field names given by the caller
  json       any JSON file holding an array of records, same options
  tfds       a prepared TensorFlow Datasets dataset (see `critjax.data.tfds_loader`)

A record without its prompt or answer field raises ValueError naming the file and the line.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import types
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

from critjax.data.paths import data_path
from critjax.registry import Registry

DATASETS: Registry[Callable[..., list["Example"]]] = Registry("dataset")

GSM8K_SPLITS = ("train", "test", "test_socratic")
GSM8K_ANSWER_MARK = "####"  # the dataset's own separator between the worked solution and the gold


@dataclasses.dataclass(frozen=True)
class Example:
  """One task item. `answer` is the gold the reward compares against (a final answer for maths,
  the reference solution for code); `meta` holds everything else the reward or eval needs."""
  id: str
  prompt: str
  answer: str
  meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    for name in ("id", "prompt", "answer"):
      if not isinstance(getattr(self, name), str):
        raise TypeError(f"Example.{name} must be str, got {type(getattr(self, name)).__name__}")
    # A read-only view, so a record shared between episodes cannot be edited through `meta`.
    object.__setattr__(self, "meta", types.MappingProxyType(dict(self.meta)))


# ---------------------------------------------------------------------------------------------
# Reading records with their line numbers


def _open_text(path: Path):
  if path.suffix == ".gz":
    return gzip.open(path, "rt", encoding="utf-8")
  return open(path, "r", encoding="utf-8")


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
  """Yields (1-based line number, record) for each non-blank line of a .jsonl or .jsonl.gz file."""
  path = Path(path)
  with _open_text(path) as f:
    for lineno, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        rec = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
      if not isinstance(rec, dict):
        raise ValueError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
      yield lineno, rec


def iter_json_array(path: str | Path) -> Iterator[tuple[int, dict]]:
  """Yields (line where the record starts, record) for a file holding one JSON array of objects.

  The array is decoded element by element (`raw_decode`) so each record keeps its line number,
  which `json.load` would throw away.
  """
  path = Path(path)
  with _open_text(path) as f:
    text = f.read()
  dec = json.JSONDecoder()
  ws = " \t\r\n"

  def skip(i):
    while i < len(text) and text[i] in ws:
      i += 1
    return i

  def line_of(i):
    return text.count("\n", 0, i) + 1

  i = skip(0)
  if i >= len(text) or text[i] != "[":
    raise ValueError(f"{path}:{line_of(i)}: expected a JSON array of records")
  i = skip(i + 1)
  if i < len(text) and text[i] == "]":
    return
  while True:
    try:
      rec, end = dec.raw_decode(text, i)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(rec, dict):
      raise ValueError(f"{path}:{line_of(i)}: expected a JSON object, got {type(rec).__name__}")
    yield line_of(i), rec
    i = skip(end)
    if i < len(text) and text[i] == ",":
      i = skip(i + 1)
    elif i < len(text) and text[i] == "]":
      return
    else:
      raise ValueError(f"{path}:{line_of(i)}: expected ',' or ']' after a record")


def _field(rec: dict, name: str, path: Path, lineno: int) -> Any:
  if name not in rec or rec[name] is None:
    raise ValueError(f"{path}:{lineno}: record has no {name!r} field (fields: {sorted(rec)})")
  return rec[name]


def _records_to_examples(
    records: Iterator[tuple[int, dict]], path: Path, *, prompt_field: str, answer_field: str,
    id_field: Optional[str], meta_fields: Optional[Sequence[str]], id_prefix: str,
    answer_fn: Optional[Callable[[str], str]], limit: Optional[int]) -> list[Example]:
  out = []
  for n, (lineno, rec) in enumerate(records):
    if limit is not None and n >= limit:
      break
    prompt = str(_field(rec, prompt_field, path, lineno))
    answer = str(_field(rec, answer_field, path, lineno))
    if answer_fn is not None:
      try:
        answer = answer_fn(answer)
      except ValueError as e:
        raise ValueError(f"{path}:{lineno}: {e}") from None
    rid = str(_field(rec, id_field, path, lineno)) if id_field else f"{id_prefix}{n}"
    keep = (k for k in rec if k not in (prompt_field, answer_field)) if meta_fields is None \
        else meta_fields
    meta = {k: rec[k] for k in keep if k in rec}
    out.append(Example(id=rid, prompt=prompt, answer=answer, meta=meta))
  return out


# ---------------------------------------------------------------------------------------------
# Generic formats


@DATASETS.register("jsonl")
def load_jsonl(path: str | Path, *, prompt_field: str = "question", answer_field: str = "answer",
               id_field: Optional[str] = None, meta_fields: Optional[Sequence[str]] = None,
               limit: Optional[int] = None) -> list[Example]:
  """Any JSON-lines file (.jsonl or .jsonl.gz). Fields other than prompt/answer go to `meta`
  (all of them when `meta_fields` is None); ids are `<file stem>/<index>` unless `id_field`."""
  path = Path(path)
  return _records_to_examples(
      iter_jsonl(path), path, prompt_field=prompt_field, answer_field=answer_field,
      id_field=id_field, meta_fields=meta_fields, id_prefix=f"{path.stem}/", answer_fn=None,
      limit=limit)


@DATASETS.register("json")
def load_json(path: str | Path, *, prompt_field: str = "question", answer_field: str = "answer",
              id_field: Optional[str] = None, meta_fields: Optional[Sequence[str]] = None,
              limit: Optional[int] = None) -> list[Example]:
  """A JSON file holding one array of records; same options as `load_jsonl`."""
  path = Path(path)
  return _records_to_examples(
      iter_json_array(path), path, prompt_field=prompt_field, answer_field=answer_field,
      id_field=id_field, meta_fields=meta_fields, id_prefix=f"{path.stem}/", answer_fn=None,
      limit=limit)


# ---------------------------------------------------------------------------------------------
# Named datasets


def gsm8k_gold(solution: str) -> str:
  """The final answer of a GSM8K worked solution: the text after the last '####', with the
  thousands separators the dataset sometimes writes ('1,000') removed."""
  if GSM8K_ANSWER_MARK not in solution:
    raise ValueError(f"GSM8K answer has no {GSM8K_ANSWER_MARK!r} before its final answer")
  gold = solution.rsplit(GSM8K_ANSWER_MARK, 1)[1].strip().replace(",", "")
  if not gold:
    raise ValueError(f"GSM8K answer is empty after {GSM8K_ANSWER_MARK!r}")
  return gold


@DATASETS.register("gsm8k")
def load_gsm8k(split: str = "test", *, path: Optional[str | Path] = None,
               limit: Optional[int] = None) -> list[Example]:
  """GSM8K (Cobbe et al. 2021): `answer` is the final number, `meta['solution']` the worked one."""
  if path is None:
    if split not in GSM8K_SPLITS:
      raise ValueError(f"gsm8k split {split!r} unknown; choose from {GSM8K_SPLITS}")
    path = data_path("gsm8k", f"{split}.jsonl")
  path = Path(path)
  out = []
  for n, (lineno, rec) in enumerate(iter_jsonl(path)):
    if limit is not None and n >= limit:
      break
    question = str(_field(rec, "question", path, lineno))
    solution = str(_field(rec, "answer", path, lineno))
    try:
      gold = gsm8k_gold(solution)
    except ValueError as e:
      raise ValueError(f"{path}:{lineno}: {e}") from None
    out.append(Example(id=f"gsm8k/{split}/{n}", prompt=question, answer=gold,
                       meta={"solution": solution}))
  return out


@DATASETS.register("math500")
def load_math500(*, path: Optional[str | Path] = None,
                 limit: Optional[int] = None) -> list[Example]:
  """MATH500 (the PRM800K test split of MATH): `answer` is the LaTeX final answer; solution,
  subject and level go to `meta`; ids are the `unique_id` ('test/precalculus/807.json')."""
  path = Path(path) if path is not None else data_path("math500", "test.jsonl")
  return _records_to_examples(
      iter_jsonl(path), path, prompt_field="problem", answer_field="answer",
      id_field="unique_id", meta_fields=("solution", "subject", "level"), id_prefix="",
      answer_fn=None, limit=limit)


@DATASETS.register("humaneval")
def load_humaneval(*, path: Optional[str | Path] = None,
                   limit: Optional[int] = None) -> list[Example]:
  """HumanEval (Chen et al. 2021): `prompt` is the function header and docstring the model
  continues, `answer` the canonical body; `meta` holds entry_point and the `check` test code."""
  path = Path(path) if path is not None else data_path("humaneval", "HumanEval.jsonl.gz")
  out = []
  for n, (lineno, rec) in enumerate(iter_jsonl(path)):
    if limit is not None and n >= limit:
      break
    fields = {k: str(_field(rec, k, path, lineno))
              for k in ("task_id", "prompt", "entry_point", "canonical_solution", "test")}
    out.append(Example(id=fields["task_id"], prompt=fields["prompt"],
                       answer=fields["canonical_solution"],
                       meta={"entry_point": fields["entry_point"], "test": fields["test"]}))
  return out


@DATASETS.register("tfds")
def load_tfds(name: str, split: str = "test", **kwargs) -> list[Example]:
  """A prepared TFDS dataset; tensorflow-datasets is imported only here (see tfds_loader)."""
  from critjax.data import tfds_loader  # lazy: tensorflow-datasets is optional
  return tfds_loader.load_tfds(name, split, **kwargs)
