"""GRPO and its variants as one recipe: single-turn rollout -> verifiable reward -> group advantage.

Which variant runs is config, not code (configs/grpo.py, dapo.py, dr_grpo.py, gspo.py):
  GRPO    advantage 'grpo', token ratio, k3 KL in the loss, seq_mean_token_mean  (DeepSeekMath)
  DAPO    clip_high 0.28, token_mean, no KL, dynamic sampling (refilled), overlong filter / soft punishment
  Dr.GRPO advantage 'dr_grpo', seq_mean_token_sum_norm with norm_len = max_new_tokens, no KL
  GSPO    ratio 'sequence' with clip 3e-4 / 4e-4
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from critjax import sharding as sh
from critjax.rl import episodes, filters
from critjax.rl.protocols import Turn
from critjax.rl.advantages import ADVANTAGES
from critjax.rl.recipes.base import RECIPES, Collected, Recipe


SINGLE_TURN = (Turn("policy"),)   # the policy answers the prompt


@RECIPES.register("grpo")
class GRPO(Recipe):

  def collect(self, params, problems, rng, refill=None) -> Collected:
    cfg, b, g = self.cfg, len(problems), self.cfg.rollout.group_size
    gens = [self._generate(params, problems, rng)]
    if cfg.rl.dynamic_sampling and refill is not None:
      # DAPO (Sec. 3.2): over-sample until B groups with 0 < accuracy < G are in hand, each extra
      # generation batch on B new prompts, at most rl.max_gen_batches in all; a batch still short
      # keeps its dropped groups masked (zero loss), so shapes never change.
      while sum(int(x["keep"].sum()) for x in gens) < b and len(gens) < cfg.rl.max_gen_batches:
        gens.append(self._generate(params, refill(b), jax.random.fold_in(rng, len(gens))))
    batch = _take_groups(gens, b, g, self.pad_id)
    cat = lambda k: np.concatenate([x[k] for x in gens])
    metrics = {"reward_mean": float(cat("shaped").mean()), "accuracy": float((cat("rewards") >= 1.0).mean()),
               "response_length": float(cat("lengths").mean()), "truncated_frac": float(cat("truncated").mean()),
               "kept_frac": float(batch["mask"].any(1).mean()), "gen_batches": len(gens),
               "generated_tokens": int(cat("lengths").sum())}
    metrics.update(self.generation_metrics(gens))
    return Collected(batches={"policy": batch}, metrics=metrics, group_rows=g)

  def _generate(self, params, problems, rng) -> dict:
    """One generation batch: G samples per problem, rewards, DAPO's filters, group advantages, and
    the policy batch with filtered rows masked. keep: (B,) groups that pass dynamic sampling."""
    cfg, g = self.cfg, self.cfg.rollout.group_size
    ep = self.episode(SINGLE_TURN, params, problems, rng, num_samples=g)
    ro, texts = ep.rollout, ep.texts(0)
    rep = [p for p in problems for _ in range(g)]
    rewards = self.score_completions(params, rep, texts, rng)      # (N,) in [0, 1]
    truncated = np.asarray(ro.truncated).reshape(-1)
    lengths = episodes.turn_lengths(ro, 1)[:, 0]
    shaped = rewards.copy()
    if cfg.rl.soft_overlong_cache:
      shaped += filters.soft_overlong_penalty(lengths, cfg.rollout.max_new_tokens, cfg.rl.soft_overlong_cache)
    valid = np.ones((len(problems), g), bool)
    if cfg.rl.overlong_filter:
      valid &= filters.overlong_filter_mask(truncated.reshape(-1, g))
    keep = np.ones(len(problems), bool)
    if cfg.rl.dynamic_sampling:
      # Groups whose task rewards are all equal: all right or all wrong for a 0/1 reward, and for a
      # fractional one (task.code_reward="fraction") also e.g. every answer passing half the tests.
      # The unshaped reward, so the soft overlong penalty alone keeps no group.
      keep = filters.dynamic_sampling_mask(rewards.reshape(-1, g))
      valid &= keep[:, None]
    adv, valid = self.group_advantages(params, problems, texts, shaped.reshape(-1, g), valid, rng)
    batch = episodes.policy_batch(ro, adv.reshape(-1, 1), row_valid_n=valid.reshape(-1))
    return {"batch": batch, "keep": keep, "rewards": rewards, "shaped": shaped, "lengths": lengths,
            "truncated": truncated, "problems": rep, "texts": texts}

  def group_advantages(self, params, problems, texts, rewards_bg, valid_bg, rng):
    """(adv (B, G), valid (B, G)) of one generation batch: B problems, texts (B*G,) group-major,
    rewards_bg the (shaped) rewards, valid_bg the rows the filters keep. By default the advantage
    estimator config.rl.advantage names (critjax.rl.advantages) over the rewards; a recipe whose
    advantage is not a function of per-row rewards (BRPO's judged comparisons with a reference
    rollout, recipes/brpo.py) overrides this and may mask more rows."""
    adv = ADVANTAGES.get(self.cfg.rl.advantage)(jnp.asarray(rewards_bg), jnp.asarray(valid_bg))
    return np.asarray(adv), valid_bg

  def score_completions(self, params, problems, texts, rng) -> np.ndarray:
    """(N,) reward of each row's completion. Host-side rewards by default (`rewards`); a recipe
    whose reward is a model role (a judge in the loop, recipes/judged.py) overrides this and runs
    that role's episodes with `params`."""
    return self.rewards(problems, texts)

  def rewards(self, problems, texts) -> np.ndarray:
    """(N,) verifiable reward of each row's completion (the task's verifier); over several processes
    each scores its share of the rows (sharding.process_share_map)."""
    return sh.process_share_map(self.task.score, problems, texts)

  def generation_metrics(self, gens: list[dict]) -> dict:
    """Method metrics over a step's generation batches (none for plain GRPO)."""
    return {}

  def evaluate(self, params, problems) -> dict:
    texts = self.episode(SINGLE_TURN, params, problems, self.eval_rng, greedy=True).texts(0)
    return {"accuracy": float((self.task.score(problems, texts) >= 1.0).mean())}   # right: reward 1

  def evaluate_with_length(self, params, problems) -> dict:
    """Greedy accuracy and mean response length in tokens (for recipes whose reward can be hacked
    by length: recipes/brpo.py, judged.py's grpo_rm)."""
    ep = self.episode(SINGLE_TURN, params, problems, self.eval_rng, greedy=True)
    texts = ep.texts(0)
    return {"accuracy": float((self.task.score(problems, texts) >= 1.0).mean()),
            "response_length": float(episodes.turn_lengths(ep.rollout, 1)[:, 0].mean())}


def _take_groups(gens: list[dict], b: int, g: int, pad_id: int) -> dict:
  """B groups of G rows from the generation batches: kept groups first (in generation order), then,
  if too few, dropped (fully masked) ones; selected rows stay in generation order. Arrays are padded
  to the longest batch's length (tokens with pad_id, the rest with zeros)."""
  kept = [(i, j) for i, x in enumerate(gens) for j in np.nonzero(x["keep"])[0]]
  dropped = [(i, j) for i, x in enumerate(gens) for j in np.nonzero(~x["keep"])[0]]
  chosen = sorted((kept + dropped)[:b])
  length = max(x["batch"]["tokens"].shape[1] for x in gens)
  out = {}
  for k in gens[0]["batch"]:
    rows = []
    for i, j in chosen:
      a = gens[i]["batch"][k][j * g:(j + 1) * g]
      rows.append(np.pad(a, ((0, 0), (0, length - a.shape[1])), constant_values=pad_id if k == "tokens" else 0))
    out[k] = np.concatenate(rows)
  return out
