"""Loaders: record counts of the shared copies, gold extraction, errors that name file and line."""
import gzip
import json
import sys

import pytest

from critjax.data import datasets, paths, tfds_loader
from critjax.data.datasets import DATASETS, Example


def test_counts_match_the_data_readme():
  assert len(datasets.load_gsm8k("train")) == 7473
  assert len(datasets.load_gsm8k("test")) == 1319
  assert len(datasets.load_math500()) == 500
  assert len(datasets.load_humaneval()) == 164


def test_gsm8k_gold_is_after_the_last_marker():
  ex = datasets.load_gsm8k("test", limit=1)[0]
  assert ex.answer == "18"  # Janet's ducks: 16 - 3 - 4 = 9 eggs at $2
  assert ex.meta["solution"].endswith("#### 18")
  assert datasets.gsm8k_gold("a #### 1 b\n#### 1,234") == "1234"
  with pytest.raises(ValueError, match="####"):
    datasets.gsm8k_gold("no marker here")


def test_math500_and_humaneval_fields():
  m = datasets.load_math500(limit=1)[0]
  assert m.id == "test/precalculus/807.json"
  assert m.answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
  assert m.meta["level"] == 2 and "\\boxed" in m.meta["solution"]
  h = datasets.load_humaneval(limit=1)[0]
  assert h.id == "HumanEval/0" and h.meta["entry_point"] == "has_close_elements"
  assert "def check(candidate)" in h.meta["test"]


def test_examples_are_frozen():
  ex = Example(id="a", prompt="p", answer="1", meta={"k": 1})
  with pytest.raises(Exception):
    ex.answer = "2"
  with pytest.raises(TypeError):
    ex.meta["k"] = 2
  with pytest.raises(TypeError, match="Example.answer"):
    Example(id="a", prompt="p", answer=1)


def test_registry_picks_loaders_by_name(tmp_path):
  assert {"gsm8k", "math500", "humaneval", "jsonl", "json", "tfds"} <= set(DATASETS.names())
  assert len(DATASETS.get("gsm8k")(split="test", limit=3)) == 3
  with pytest.raises(ValueError, match="split"):
    DATASETS.get("gsm8k")(split="dev")


def _write_jsonl(path, rows):
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_missing_field_names_file_and_line(tmp_path):
  p = tmp_path / "g.jsonl"
  p.write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n\n"
               + json.dumps({"question": "q2"}) + "\n")
  with pytest.raises(ValueError, match=rf"{p}:3: record has no 'answer' field"):
    datasets.load_gsm8k(path=p)
  _write_jsonl(p, [{"answer": "#### 1"}])
  with pytest.raises(ValueError, match=rf"{p}:1: record has no 'question' field"):
    datasets.load_gsm8k(path=p)
  _write_jsonl(p, [{"question": "q", "answer": "#### 1"}, {"question": "q", "answer": "42"}])
  with pytest.raises(ValueError, match=rf"{p}:2: GSM8K answer has no '####'"):
    datasets.load_gsm8k(path=p)
  p.write_text('{"question": "q", "answer": "1"}\n{"question": \n')
  with pytest.raises(ValueError, match=rf"{p}:2: not valid JSON"):
    datasets.load_jsonl(p)


def test_generic_jsonl_gz_and_json_with_configured_fields(tmp_path):
  rows = [{"q": f"what is {i}?", "a": str(i), "uid": f"x{i}", "extra": i} for i in range(3)]
  gz = tmp_path / "d.jsonl.gz"
  with gzip.open(gz, "wt") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  got = DATASETS.get("jsonl")(gz, prompt_field="q", answer_field="a", id_field="uid")
  assert [(e.id, e.prompt, e.answer, dict(e.meta)) for e in got] == [
      (f"x{i}", f"what is {i}?", str(i), {"uid": f"x{i}", "extra": i}) for i in range(3)]
  j = tmp_path / "d.json"
  j.write_text('[\n  {"q": "a", "a": "1"},\n  {"q": "b", "a": "2"},\n\n  {"q": "c"}\n]\n')
  assert [e.answer for e in datasets.load_json(j, prompt_field="q", answer_field="a",
                                               limit=2)] == ["1", "2"]
  with pytest.raises(ValueError, match=rf"{j}:5: record has no 'a' field"):
    datasets.load_json(j, prompt_field="q", answer_field="a")


def test_data_dir_env_override(tmp_path, monkeypatch):
  monkeypatch.delenv(paths.DATA_DIR_ENV, raising=False)
  assert paths.data_dir() == (paths.repo_root().parent / "shared" / "data").resolve()
  monkeypatch.setenv(paths.DATA_DIR_ENV, str(tmp_path))
  (tmp_path / "gsm8k").mkdir()
  _write_jsonl(tmp_path / "gsm8k" / "test.jsonl", [{"question": "q", "answer": "x #### 7"}])
  assert [e.answer for e in datasets.load_gsm8k("test")] == ["7"]


def test_tfds_is_optional_and_imported_lazily(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if not installed
  with pytest.raises(ImportError, match="tensorflow-datasets"):
    DATASETS.get("tfds")("gsm8k")


def test_tfds_unprepared_dataset_says_what_to_run(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(FileNotFoundError, match="tfds build"):
    tfds_loader.load_tfds("gsm8k", "test", data_dir=str(tmp_path))
