"""MetaCritique: AIU-level precision, recall and F1 of a critique (Sun et al., "The Critique of
Critique", ACL Findings 2024, arXiv 2401.04518; GAIR-NLP/MetaCritique `meta_critique/cal_meta_scores.py`),
and a checked loader for its data files (shared/data/metacritique/, spec §3).

A hypothesis critique h is split into Atomic Information Units a_1..a_m, the GPT-4 reference
critique r into b_1..b_n. A judge (GPT-4 upstream, humans in annotation_data.json) labels
  precision_labels[i] = a_i is true given the question, the model answer and the reference answer
  recall_labels[j]    = b_j is entailed by h
Per critique:  P = (1/m) sum_i precision_labels[i],  R = (1/n) sum_j recall_labels[j],
               F1 = 2PR / (P + R), and 0 when P or R is 0.
Reported:      Meta-P = mean P, Meta-R = mean R, Meta-F1 = mean F1 over critiques (the mean of
               per-critique F1s, not the harmonic mean of Meta-P and Meta-R), in percent on the
               leaderboard; here fractions.
A label that is None (upstream's `verifying_result` when the judge's answer had neither "claim is
true" nor "claim is false") counts as not true, as upstream's truthiness count does. An empty AIU
list has no precision (upstream divides by zero): here NaN, which then makes the mean NaN.

Dimension key: N critiques, M_n hypothesis AIUs and R_n reference AIUs of critique n.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from critjax.eval.critique_metrics import _harmonic

CRITIQUE_SLOTS = ("human_critique", "llm1_critique", "llm2_critique")  # annotation_data.json

# Fields each file kind must have, per record; "a.b" is field b of the object in field a.
_CRITIQUE = ("critique", "aius", "precision_labels", "recall_labels", "precision_score", "recall_score", "f1_score")
_ITEM = ("shepherd_id", "dataset", "question", "response", "index")
FIELDS = {
    "annotation": _ITEM + ("gpt4_answer", "gpt4_critique", "gpt4_critique.critique", "gpt4_critique.aius")
                  + tuple(f"{slot}.{f}" for slot in CRITIQUE_SLOTS for f in _CRITIQUE)
                  + ("llm1_critique.model", "llm2_critique.model"),
    "benchmark": _ITEM + ("gpt4_answer", "gpt4_critique", "gpt4_critique.critique", "gpt4_critique.aius"),
    "hypothesis": ("output",),
    "test_samples": _ITEM + ("hypothesis_critique", "reference_answer", "reference_critique"),
}
_KIND_OF_FILE = {"annotation_data.json": "annotation", "benchmark_data.json": "benchmark",
                 "hypothesis_critique.json": "hypothesis", "test_samples.json": "test_samples"}


def aiu_precision(labels: Sequence[Optional[bool]]) -> float:
  """P = fraction of a critique's AIUs judged true (factuality); NaN for no AIU."""
  return float(np.mean([bool(x) for x in labels])) if len(labels) else float("nan")


def aiu_recall(labels: Sequence[Optional[bool]]) -> float:
  """R = fraction of the reference critique's AIUs entailed by the critique (comprehensiveness);
  NaN for no reference AIU."""
  return aiu_precision(labels)


def critique_f1(p: float, r: float) -> float:
  """Per-critique F1 = 2PR / (P + R), 0 when P or R is 0 (cal_meta_scores.py::f1_score), NaN if
  either is NaN."""
  return _harmonic(p, r)


def meta_scores(precision_labels: Sequence[Sequence[Optional[bool]]],
                recall_labels: Sequence[Sequence[Optional[bool]]]) -> dict[str, float]:
  """Meta-P, Meta-R, Meta-F1 over N critiques from their AIU labels (cal_meta_scores.py::meta_score):
  the means over critiques of P_n, R_n and F1_n = critique_f1(P_n, R_n)."""
  if len(precision_labels) != len(recall_labels):
    raise ValueError(f"{len(precision_labels)} critiques' precision labels but {len(recall_labels)} recall labels")
  n = len(precision_labels)
  p = np.array([aiu_precision(x) for x in precision_labels], np.float64)
  r = np.array([aiu_recall(x) for x in recall_labels], np.float64)
  f1 = np.array([critique_f1(a, b) for a, b in zip(p, r)], np.float64)
  nan = float("nan")
  return {"meta_p": float(p.mean()) if n else nan, "meta_r": float(r.mean()) if n else nan,
          "meta_f1": float(f1.mean()) if n else nan, "n": n}


# ----------------------------------------------------------------------------------------------
# Loading and the human-annotation reproduction
# ----------------------------------------------------------------------------------------------

def _get(record: dict, dotted: str):
  node = record
  for part in dotted.split("."):
    if not isinstance(node, dict) or part not in node:
      raise KeyError(dotted)
    node = node[part]
  return node


def load_metacritique(path: str | Path, kind: Optional[str] = None) -> list[dict]:
  """The records of a MetaCritique file (a JSON array of objects), each checked for the fields of
  its kind (FIELDS): "annotation" (annotation_data.json), "benchmark" (benchmark_data.json),
  "hypothesis" (hypothesis_critique.json) or "test_samples"; by default the kind follows the file
  name. For annotation data, also that each critique has one precision label per AIU and one recall
  label per reference (gpt4_critique) AIU. Raises ValueError naming the file, the record index and
  the field."""
  path = Path(path)
  if kind is None:
    if path.name not in _KIND_OF_FILE:
      raise ValueError(f"{path}: unknown MetaCritique file; pass kind= one of {sorted(FIELDS)}")
    kind = _KIND_OF_FILE[path.name]
  if kind not in FIELDS:
    raise ValueError(f"kind must be one of {sorted(FIELDS)}, got {kind!r}")
  try:
    records = json.loads(path.read_text(encoding="utf-8"))
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from None
  except UnicodeDecodeError as e:
    raise ValueError(f"{path}: not UTF-8 text (byte {e.start})") from None
  if not isinstance(records, list):
    raise ValueError(f"{path}: expected a JSON array of records, got a JSON {type(records).__name__}")
  for i, rec in enumerate(records):
    if not isinstance(rec, dict):
      raise ValueError(f"{path}: record {i}: expected a JSON object, got a JSON {type(rec).__name__}")
    for field in FIELDS[kind]:
      try:
        _get(rec, field)
      except KeyError:
        raise ValueError(f"{path}: record {i}: missing field {field!r}") from None
    if kind == "annotation":
      n_ref = len(rec["gpt4_critique"]["aius"])
      for slot in CRITIQUE_SLOTS:
        c = rec[slot]
        if len(c["precision_labels"]) != len(c["aius"]):
          raise ValueError(f"{path}: record {i}: {slot}.precision_labels has {len(c['precision_labels'])} "
                           f"labels for {len(c['aius'])} AIUs")
        if len(c["recall_labels"]) != n_ref:
          raise ValueError(f"{path}: record {i}: {slot}.recall_labels has {len(c['recall_labels'])} "
                           f"labels for {n_ref} reference AIUs (gpt4_critique.aius)")
  return records


def annotation_scores(records: Sequence[dict], slot: str) -> dict[str, np.ndarray]:
  """Per-critique P, R, F1 (N,) recomputed from the human labels of one slot of annotation_data
  records, beside the stored precision_score / recall_score / f1_score."""
  if slot not in CRITIQUE_SLOTS:
    raise ValueError(f"slot must be one of {CRITIQUE_SLOTS}, got {slot!r}")
  p = np.array([aiu_precision(r[slot]["precision_labels"]) for r in records], np.float64)
  rc = np.array([aiu_recall(r[slot]["recall_labels"]) for r in records], np.float64)
  return {"p": p, "r": rc, "f1": np.array([critique_f1(a, b) for a, b in zip(p, rc)], np.float64),
          "stored_p": np.array([r[slot]["precision_score"] for r in records], np.float64),
          "stored_r": np.array([r[slot]["recall_score"] for r in records], np.float64),
          "stored_f1": np.array([r[slot]["f1_score"] for r in records], np.float64)}


def reproduce_annotation(records: Sequence[dict]) -> dict[str, dict[str, float]]:
  """Meta-P / Meta-R / Meta-F1 of the human AIU labels in annotation_data records, grouped two ways:
  per slot ("human_critique", "llm1_critique", "llm2_critique": the spec §3's per-critique means,
  human 0.854 / 0.510 / 0.582, llm1 0.717 / 0.537 / 0.582, llm2 0.704 / 0.550 / 0.582), and per
  critique model ("model:<name>", the llm slots pooled by their `model` field, "model:human" for
  the Shepherd human critiques)."""
  groups: dict[str, tuple[list, list]] = {}

  def add(name, c):
    p, r = groups.setdefault(name, ([], []))
    p.append(c["precision_labels"])
    r.append(c["recall_labels"])

  for rec in records:
    for slot in CRITIQUE_SLOTS:
      add(slot, rec[slot])
      add("model:human" if slot == "human_critique" else f"model:{rec[slot]['model']}", rec[slot])
  return {name: meta_scores(p, r) for name, (p, r) in groups.items()}
