"""Writing run files so that a kill at any moment leaves either the old file or the new one."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: str | Path, data: str | bytes):
  """Writes `data` to a temporary file beside `path`, fsyncs it and renames it over `path`."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data.encode() if isinstance(data, str) else data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    Path(tmp).unlink(missing_ok=True)
    raise


def read_json_object(path: str | Path, error: type = ValueError) -> dict:
  """A JSON object from `path`; a torn, truncated, empty or non-JSON file raises `error` naming it."""
  path = Path(path)
  try:
    text = path.read_bytes().decode("utf-8")
  except UnicodeDecodeError as e:
    raise error(f"{path}: not valid JSON (not UTF-8 text at byte {e.start}); corrupt file?") from None
  if not text.strip():
    raise error(f"{path}: empty file, not valid JSON (an interrupted write?)")
  try:
    out = json.loads(text)
  except json.JSONDecodeError as e:
    raise error(f"{path}: not valid JSON (line {e.lineno} column {e.colno}: {e.msg}); torn or truncated file?") from None
  if not isinstance(out, dict):
    raise error(f"{path}: expected a JSON object, got a JSON {type(out).__name__}")
  return out


def complete_lines(path: str | Path) -> list[str]:
  """A text file's newline-terminated, non-blank lines ([] when it does not exist): an appended
  log's last line without a newline was torn by a kill and is left out."""
  path = Path(path)
  if not path.exists():
    return []
  return [line for line in path.read_text().splitlines(keepends=True) if line.endswith("\n") and line.strip()]
