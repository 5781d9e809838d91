"""DAPO (arXiv 2503.14476): clip-higher, token-level loss, dynamic sampling, overlong shaping, no KL.

  python -m experiments.train --config=configs/dapo.py:tiny --workdir=/tmp/dapo_tiny
"""
from configs import grpo


def get_config(arg: str = "tiny"):
  c = grpo.get_config(arg)
  c.name = "dapo"
  c.rl.loss.update(clip_low=0.2, clip_high=0.28, dual_clip_c=10.0, aggregation="token_mean", kl_coef=0.0)
  c.rl.dynamic_sampling = True      # drop groups whose accuracy is 0 or 1, refill with new prompts
  # verl's DAPO recipe: up to 10 generation batches a step. The CPU toy stops at 3 to bound a step's
  # time (early on, when nearly every group is all-wrong); a batch still short is masked.
  c.rl.max_gen_batches = 3 if arg == "tiny" else 10
  c.rl.overlong_filter = True
  c.rl.soft_overlong_cache = max(1, c.rollout.max_new_tokens // 5)   # DAPO: L_cache = 4096 of 20480
  return c
