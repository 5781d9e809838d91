"""MetaCritique aggregation (critjax/eval/metacritique.py): hand-computed cases, the loader's errors,
and the reproduction of the human-annotation scores shipped in shared/data/metacritique."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from critjax.eval import metacritique as mc

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "metacritique"


def test_precision_recall_f1_hand_computed():
  assert mc.aiu_precision([True, False, True, None]) == 0.5   # an undecided judgment counts as not true
  assert mc.aiu_recall([True, True, True]) == 1.0
  assert math.isnan(mc.aiu_precision([]))
  assert mc.critique_f1(0.5, 1.0) == pytest.approx(2 / 3)    # 2 * .5 * 1 / 1.5
  assert mc.critique_f1(0.0, 0.5) == 0.0 and mc.critique_f1(0.0, 0.0) == 0.0


def test_meta_f1_is_the_mean_of_per_critique_f1():
  # critique 1: P = 2/4, R = 1/1 -> F1 = 2/3;  critique 2: P = 1/1, R = 0/2 -> F1 = 0
  m = mc.meta_scores([[True, True, False, False], [True]], [[True], [False, False]])
  assert m["meta_p"] == pytest.approx(0.75) and m["meta_r"] == pytest.approx(0.5)
  assert m["meta_f1"] == pytest.approx(1 / 3)                 # not 2 * .75 * .5 / 1.25 = 0.6
  assert m["n"] == 2
  empty = mc.meta_scores([], [])
  assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in ("meta_p", "meta_r", "meta_f1"))
  with pytest.raises(ValueError, match="recall labels"):
    mc.meta_scores([[True]], [])


@pytest.fixture(scope="module")
def annotation():
  return mc.load_metacritique(DATA / "annotation_data.json")


def test_recomputed_item_scores_equal_the_stored_ones(annotation):
  for slot in mc.CRITIQUE_SLOTS:
    s = mc.annotation_scores(annotation, slot)
    for key in ("p", "r", "f1"):
      np.testing.assert_allclose(s[key], s[f"stored_{key}"], rtol=0, atol=1e-12, err_msg=f"{slot} {key}")


def test_reproduces_the_spec_human_annotation_means(annotation):
  # spec §3 [data]: per-critique means of (P, R, F1), printed to 3 decimals
  want = {"human_critique": (0.854, 0.510, 0.582), "llm1_critique": (0.717, 0.537, 0.582),
          "llm2_critique": (0.704, 0.550, 0.582)}
  got = mc.reproduce_annotation(annotation)
  for slot, (p, r, f1) in want.items():
    g = got[slot]
    assert (round(g["meta_p"], 3), round(g["meta_r"], 3), round(g["meta_f1"], 3)) == (p, r, f1), slot
    assert g["n"] == 100
    # and independently: the plain mean of the stored per-critique scores
    assert g["meta_f1"] == pytest.approx(np.mean([rec[slot]["f1_score"] for rec in annotation]), abs=1e-12)
  # the per-model groups pool the two llm slots: 200 LLM critiques in all
  assert sum(v["n"] for k, v in got.items() if k.startswith("model:") and k != "model:human") == 200


def test_annotation_counts_match_the_spec(annotation):
  hyp = sum(len(rec[slot]["aius"]) for rec in annotation for slot in mc.CRITIQUE_SLOTS)
  ref = sum(len(rec["gpt4_critique"]["aius"]) for rec in annotation)
  assert (len(annotation), hyp, ref, hyp + ref) == (100, 1951, 702, 2653)


def test_loader_reads_every_shipped_file():
  assert len(mc.load_metacritique(DATA / "benchmark_data.json")) == 100
  assert len(mc.load_metacritique(DATA / "hypothesis_critique.json")) == 100
  assert len(mc.load_metacritique(DATA / "test_samples.json")) == 2


def _write(tmp_path, name, records):
  path = tmp_path / name
  path.write_text(json.dumps(records))
  return path


def test_loader_names_file_record_and_field(tmp_path, annotation):
  recs = json.loads(json.dumps(annotation[:3]))
  del recs[1]["question"]
  path = _write(tmp_path, "annotation_data.json", recs)
  with pytest.raises(ValueError, match=r"annotation_data\.json: record 1: missing field 'question'"):
    mc.load_metacritique(path)
  recs = json.loads(json.dumps(annotation[:3]))
  del recs[2]["llm2_critique"]["model"]
  with pytest.raises(ValueError, match=r"record 2: missing field 'llm2_critique\.model'"):
    mc.load_metacritique(_write(tmp_path, "annotation_data.json", recs))
  recs = json.loads(json.dumps(annotation[:1]))
  recs[0]["human_critique"]["recall_labels"].append(True)
  with pytest.raises(ValueError, match=r"record 0: human_critique\.recall_labels has 6 labels for 5 reference AIUs"):
    mc.load_metacritique(_write(tmp_path, "annotation_data.json", recs))
  with pytest.raises(ValueError, match=r"record 0: missing field 'output'"):
    mc.load_metacritique(_write(tmp_path, "mine.json", [{"text": "x"}]), kind="hypothesis")


def test_loader_rejects_bad_files(tmp_path):
  with pytest.raises(ValueError, match="unknown MetaCritique file"):
    mc.load_metacritique(_write(tmp_path, "other.json", []))
  with pytest.raises(ValueError, match="JSON array"):
    mc.load_metacritique(_write(tmp_path, "benchmark_data.json", {"a": 1}))
  torn = tmp_path / "benchmark_data.json"
  torn.write_text('[{"index": 0,')
  with pytest.raises(ValueError, match=r"benchmark_data\.json: not valid JSON"):
    mc.load_metacritique(torn)
  with pytest.raises(ValueError, match="record 0: expected a JSON object"):
    mc.load_metacritique(_write(tmp_path, "benchmark_data.json", [3]))
