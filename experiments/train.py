"""Train any recipe from a config file.

  python -m experiments.train --config=configs/grpo.py:tiny --workdir=/tmp/grpo_tiny \
      [--config.train.steps=50 ...]

Running the same command on the same workdir resumes from its last checkpoint.
"""
from absl import app, flags, logging
from ml_collections import config_flags

from critjax.config import from_configdict
from critjax.train.loop import train

_CONFIG = config_flags.DEFINE_config_file("config", None, "config file, e.g. configs/grpo.py:tiny")
_WORKDIR = flags.DEFINE_string("workdir", None, "directory for checkpoints, metrics and logs")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  cfg = from_configdict(_CONFIG.value)   # typed and validated before any compute
  result = train(cfg, _WORKDIR.value)
  print(f"final eval: {result.eval}")


if __name__ == "__main__":
  app.run(main)
