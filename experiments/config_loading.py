"""Load `configs/<file>.py:<variant>` outside absl's config_flags (sweeps, the quickstart), and for
experiments/train.py's --config flag, so both report a bad spec the same way, in one line."""
import importlib.util
from pathlib import Path


def load_config(spec: str):
  """`path.py[:arg]` -> the file's `get_config(arg)` (or `get_config()` without an arg).

  A missing file raises FileNotFoundError naming it; a file that is not a Python config file raises
  ValueError. Errors raised by get_config itself (e.g. an unknown variant) pass through unchanged."""
  path, _, arg = spec.partition(":")
  file = Path(path)
  if not file.is_file():
    what = "is a directory, not a config file" if file.is_dir() else "not found"
    raise FileNotFoundError(f"config file {path} {what}")
  module_spec = importlib.util.spec_from_file_location(file.stem, file)
  if module_spec is None:
    raise ValueError(f"config file {path} is not a Python file (expected configs/<name>.py[:variant])")
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not callable(getattr(module, "get_config", None)):
    raise ValueError(f"config file {path} defines no get_config()")
  return module.get_config(arg) if arg else module.get_config()
