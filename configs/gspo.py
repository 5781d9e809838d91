"""GSPO (arXiv 2507.18071): sequence-level, length-normalised importance ratio, clipped at 3e-4 / 4e-4.

  python -m experiments.train --config=configs/gspo.py:tiny --workdir=/tmp/gspo_tiny

Clipping only matters off-policy, so the variant runs 4 mini-batches per rollout (as the paper).
"""
from configs import grpo


def get_config(arg: str = "tiny"):
  c = grpo.get_config(arg)
  c.name = "gspo"
  c.rl.loss.update(ratio="sequence", clip_low=3e-4, clip_high=4e-4, kl_coef=0.0)
  c.rl.num_minibatches = 4
  if arg != "tiny":
    c.rl.micro_batch_size = 16
  return c
