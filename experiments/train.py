"""Train any recipe from a config file.

  python -m experiments.train --config=configs/grpo.py:tiny --workdir=/tmp/grpo_tiny \
      [--config.train.steps=50 ...]

Running the same command on the same workdir resumes from its last checkpoint. SIGTERM or SIGINT
(Ctrl-C) finishes the current step, checkpoints it and exits with one line and status 128 + the
signal's number (a second signal stops at once).

A bad command line (a missing config file, an unknown variant, a --config.* override naming no
field, a config that fails validation, a missing flag) stops with one line `error: ...` on stderr
and exit status 2, before any compute.
"""
import difflib
import re
import sys

from absl import app, flags, logging
import ml_collections
from ml_collections import config_flags

from critjax.config import from_configdict
from critjax.train.loop import prepare, train
from critjax.train.preemption import Preempted
from experiments.config_loading import load_config


def _one_line(msg) -> str:
  return " ".join(str(msg).split())


class _ConfigFileParser(flags.ArgumentParser):
  """--config's parser, put in place of ml_collections' own (which defers a missing file's error to
  the config's first use and wraps others in a traceback): loads through `load_config` and raises
  one-line ValueErrors, which absl reports as "flag --config=<spec>: <message>"."""

  def __init__(self, name: str):
    self.name = name

  def flag_type(self):
    return "config object"

  def parse(self, spec):
    try:
      config = load_config(spec)
    except (OSError, ValueError, TypeError) as e:   # missing file, unknown variant, bad get_config arg
      raise ValueError(_one_line(e)) from None
    if callable(getattr(config, "lock", None)):
      config.lock()
    _check_overrides(config, self.name, flags.FLAGS.read_flags_from_files(sys.argv, force_gnu=False))
    return config


def _check_overrides(config, name: str, argv) -> None:
  """Every `--<name>.a.b=value` must name a field of the loaded config (ml_collections would raise a
  KeyError traceback); checked only through nested ConfigDicts / dicts."""
  for arg in argv:
    m = re.match(rf"^--?(?:no)?{re.escape(name)}\.([^=]+)", arg)
    if not m:
      continue
    node, seen = config, []
    for key in m.group(1).split("."):
      if not isinstance(node, (ml_collections.ConfigDict, dict)):
        break
      if key not in node:
        close = difflib.get_close_matches(key, [str(k) for k in node.keys()], n=1)
        hint = f"did you mean {'.'.join(seen + close)}?" if close else f"fields here: {sorted(node.keys())}"
        raise ValueError(f"--{name}.{m.group(1)} names no config field {'.'.join(seen + [key])!r}; {hint}")
      node, seen = node[key], seen + [key]


def _fail(msg) -> None:
  print(f"error: {_one_line(msg)}", file=sys.stderr)
  sys.exit(2)


def _parse_flags(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(e)


_CONFIG = config_flags.DEFINE_config_file("config", None, "config file, e.g. configs/grpo.py:tiny")
flags.FLAGS[_CONFIG.name].parser = _ConfigFileParser(_CONFIG.name)
_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, metrics and logs")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  try:
    cfg = from_configdict(_CONFIG.value)   # typed and validated before any compute
  except (TypeError, ValueError) as e:
    _fail(f"{config_flags.get_config_filename(flags.FLAGS[_CONFIG.name])}: {e}")
  try:
    prepared = prepare(cfg, _WORKDIR.value)   # bad input found here has changed nothing in the workdir
  except (ValueError, OSError) as e:
    _fail(e)
  try:
    result = train(cfg, _WORKDIR.value, prepared=prepared)
  except Preempted as e:     # SIGTERM / SIGINT: the step is checkpointed; the same command resumes
    print(e, file=sys.stderr)
    sys.exit(e.exit_code)
  print(f"final eval: {result.eval}")


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
