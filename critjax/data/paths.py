"""Where the project's data lives: `../shared/data` beside the checkout, or `$CRITJAX_DATA_DIR`.

The shared folder is read-only and identical on every machine that runs the tests (CI keeps it
beside the checkout), so paths are resolved from the package's own location, not the cwd.
"""
from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "CRITJAX_DATA_DIR"


def repo_root() -> Path:
  """The checkout holding this package (critjax/data/paths.py -> two levels up)."""
  return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
  """`$CRITJAX_DATA_DIR` when set and non-empty, else `<repo>/../shared/data`."""
  override = os.environ.get(DATA_DIR_ENV)
  if override:
    return Path(override).expanduser().resolve()
  return (repo_root().parent / "shared" / "data").resolve()


def data_path(*parts: str) -> Path:
  """A path inside the data folder, e.g. `data_path('gsm8k', 'test.jsonl')`."""
  return data_dir().joinpath(*parts)
