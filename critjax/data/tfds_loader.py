"""TensorFlow Datasets as `Example` lists, used only when tensorflow-datasets is installed and the
dataset has been prepared (`tfds build NAME --data_dir DIR`); critjax never requires it.

Reading goes through `tfds.data_source`, which reads array_record files without TensorFlow
(tfrecord-format datasets and `tfds.load` need TensorFlow itself). Preparing TFDS's `gsm8k`
downloads from the internet, so it is never done here: an unprepared dataset is an error that says
what to run.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Optional

from critjax.data.datasets import Example, gsm8k_gold

GOLD_FORMATS = ("raw", "gsm8k")  # 'gsm8k': the answer field is a worked solution ending '#### X'


def tfds_available() -> bool:
  return importlib.util.find_spec("tensorflow_datasets") is not None


def _import_tfds():
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise ImportError("the 'tfds' dataset needs tensorflow-datasets "
                      "(pip install tensorflow-datasets); it is optional for critjax") from e
  return tfds


def _text(v: Any) -> str:
  if isinstance(v, bytes):
    return v.decode("utf-8")
  if hasattr(v, "item"):  # a NumPy scalar holding bytes
    return _text(v.item())
  return str(v)


def load_tfds(name: str, split: str = "test", *, prompt_field: str = "question",
              answer_field: str = "answer", gold: str = "raw", data_dir: Optional[str] = None,
              limit: Optional[int] = None) -> list[Example]:
  """Examples from a prepared TFDS dataset; other features go to `meta` (as text)."""
  if gold not in GOLD_FORMATS:
    raise ValueError(f"tfds gold format {gold!r} unknown; choose from {GOLD_FORMATS}")
  tfds = _import_tfds()
  builder = tfds.builder(name, data_dir=data_dir)
  if not builder.is_prepared():
    raise FileNotFoundError(
        f"TFDS dataset {name!r} is not prepared under {builder.data_dir}; run "
        f"`tfds build {name} --data_dir <dir> --file_format array_record` on a machine with "
        "network access and pass data_dir")
  source = tfds.data_source(name, split=split, data_dir=data_dir)
  where = f"tfds:{name}/{split}"
  n = len(source) if limit is None else min(limit, len(source))
  out = []
  for i in range(n):
    rec = source[i]
    for f in (prompt_field, answer_field):
      if f not in rec:
        raise ValueError(f"{where}: record {i} has no {f!r} field (fields: {sorted(rec)})")
    answer = _text(rec[answer_field])
    meta = {k: _text(v) for k, v in rec.items() if k not in (prompt_field, answer_field)}
    if gold == "gsm8k":
      meta["solution"] = answer
      try:
        answer = gsm8k_gold(answer)
      except ValueError as e:
        raise ValueError(f"{where}: record {i}: {e}") from None
    out.append(Example(id=f"{name}/{split}/{i}", prompt=_text(rec[prompt_field]),
                       answer=answer, meta=meta))
  return out
