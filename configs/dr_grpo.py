"""Dr. GRPO (arXiv 2503.20783): mean-only advantage, constant length normaliser, no KL.

  python -m experiments.train --config=configs/dr_grpo.py:tiny --workdir=/tmp/dr_grpo_tiny
"""
from configs import grpo


def get_config(arg: str = "tiny"):
  c = grpo.get_config(arg)
  c.name = "dr_grpo"
  c.rl.advantage = "dr_grpo"
  c.rl.loss.update(aggregation="seq_mean_token_sum_norm", norm_len=c.rollout.max_new_tokens, kl_coef=0.0)
  return c
