"""GRPO and its variants as one recipe: single-turn rollout -> verifiable reward -> group advantage.

Which variant runs is config, not code (configs/grpo.py, dapo.py, dr_grpo.py, gspo.py):
  GRPO    advantage 'grpo', token ratio, k3 KL in the loss, seq_mean_token_mean  (DeepSeekMath)
  DAPO    clip_high 0.28, token_mean, no KL, dynamic sampling, overlong filter / soft punishment
  Dr.GRPO advantage 'dr_grpo', seq_mean_token_sum_norm with norm_len = max_new_tokens, no KL
  GSPO    ratio 'sequence' with clip 3e-4 / 4e-4
"""
from __future__ import annotations

import numpy as np
import jax.numpy as jnp

from critjax.rl import episodes, filters
from critjax.rl.advantages import ADVANTAGES
from critjax.rl.recipes.base import RECIPES, Collected, Recipe


@RECIPES.register("grpo")
class GRPO(Recipe):

  def collect(self, params, problems, rng) -> Collected:
    cfg, g = self.cfg, self.cfg.rollout.group_size
    ro = self.start(params, problems, num_samples=g)
    ro = self.sampler.decode(params, ro, rng, segment_id=0)
    texts = episodes.turn_texts(self.tokenizer, ro, 0)
    rep = [p for p in problems for _ in range(g)]
    rewards = self.task.score(rep, texts)                           # (N,) in {0, 1}
    correct = rewards.reshape(-1, g) > 0
    truncated = np.asarray(ro.truncated).reshape(-1, g)
    lengths = episodes.turn_lengths(ro, 1)[:, 0]
    shaped = rewards.copy()
    if cfg.rl.soft_overlong_cache:
      shaped += filters.soft_overlong_penalty(lengths, cfg.rollout.max_new_tokens, cfg.rl.soft_overlong_cache)
    valid = np.ones_like(correct)
    if cfg.rl.overlong_filter:
      valid &= filters.overlong_filter_mask(truncated)
    if cfg.rl.dynamic_sampling:
      valid &= filters.dynamic_sampling_mask(shaped.reshape(-1, g), correct)[:, None]
    adv = np.asarray(ADVANTAGES.get(cfg.rl.advantage)(jnp.asarray(shaped.reshape(-1, g)), jnp.asarray(valid)))
    batch = episodes.policy_batch(ro, adv.reshape(-1, 1), row_valid_n=valid.reshape(-1))
    metrics = {"reward_mean": float(shaped.mean()), "accuracy": float(rewards.mean()),
               "response_length": float(lengths.mean()), "truncated_frac": float(truncated.mean()),
               "kept_frac": float(valid.mean()), "generated_tokens": int(lengths.sum())}
    return Collected(batch=batch, metrics=metrics)

  def evaluate(self, params, problems) -> dict:
    ro = self.start(params, problems, num_samples=1)
    ro = self.greedy_sampler.decode(params, ro, self.eval_rng, segment_id=0)
    texts = episodes.turn_texts(self.tokenizer, ro, 0)
    return {"accuracy": float(self.task.score(problems, texts).mean())}
