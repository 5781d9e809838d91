"""Load `configs/<file>.py:<variant>` outside absl's config_flags (sweeps, the quickstart)."""
import importlib.util
from pathlib import Path


def load_config(spec: str):
  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location(Path(path).stem, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()
