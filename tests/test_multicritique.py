"""MultiCritique's RL stage: critique pairs ranked by the revision by hand, id-record pairs, bad
configs before compute, and a tiny run (warm-up, then DPO on the critic) that resumes exactly."""
import json

import numpy as np
import pytest
from conftest import assert_resumed_like_uninterrupted, set_fields

from configs import multicritique as mc_config
from critjax.config import from_configdict
from critjax.rl import pairs
from critjax.rl.recipes.multicritique import rank_pairs
from critjax.train.loop import build, train
from critjax.train.metrics import read_metrics
from experiments.config_loading import load_config


def tiny(**over):
  c = mc_config.get_config("tiny")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.warmup.update(steps=60, batch_size=8)
  c.task.update(min_digits=1, max_digits=1)
  c.rollout.update(prompts_per_step=4, max_new_tokens=32)
  c.roles.critic.max_new_tokens = 40
  c.tokenizer.corpus_size = 2000
  c.recipe_args.update(dict(pool=16, dpo_steps=2, pairs_per_step=2))
  c.train.update(eval_every=2, eval_prompts=8, checkpoint_every=1)
  return from_configdict(set_fields(c, over))


def test_pairs_are_helpful_critiques_against_unhelpful_ones_in_sample_order():
  assert rank_pairs([False, True, True, False], 4) == [(1, 0), (2, 3)]
  assert rank_pairs([False, True, True, False], 1) == [(1, 0)]
  assert rank_pairs([True, True], 2) == [] and rank_pairs([False, False], 2) == []


def test_id_records_batch_prompt_then_response_with_the_loss_on_the_response():
  recs = [{"id": "a", "prompt_ids": [5, 6, 7], "chosen_ids": [8, 9, 2], "rejected_ids": [8, 2]},
          {"id": "b", "prompt_ids": [5], "chosen_ids": [3, 2], "rejected_ids": [3, 2]}]
  kept, dropped = pairs.finalize("s", recs, None, 8, "why")
  assert kept == recs[:1] and dropped == 1
  b = pairs.batch(None, kept, 8, 0)
  np.testing.assert_array_equal(b["tokens"], [[5, 6, 7, 8, 9, 2, 0, 0], [5, 6, 7, 8, 2, 0, 0, 0]])
  np.testing.assert_array_equal(b["mask"], [[0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 0, 0, 0]])
  with pytest.raises(ValueError, match=r"s: pair 0 \(id 'a'\) has a chosen sequence of 6 tokens"):
    pairs.finalize("s", kept, None, 5, "why")


@pytest.mark.parametrize("over, match", [
    ({"train.steps": 5}, "set train.steps=0"),
    ({"rollout.group_size": 1}, "K >= 2 critiques"),
    ({"recipe_args.max_pairs": 0}, "max_pairs"),
    ({"recipe_args.stage1_fraction": 0.5}, "unknown field.*stage1_fraction"),
])
def test_bad_configs_stop_before_any_compute(tmp_path, over, match):
  with pytest.raises(ValueError, match=match):
    build(tiny(**over), tmp_path)


def test_warmup_then_dpo_on_critique_pairs_resumes_exactly(tmp_path, compiled_once):
  cfg = tiny()
  train(cfg, tmp_path / "a")
  rows = [json.loads(x) for x in (tmp_path / "a" / "data" / "mcrit.jsonl").read_text().splitlines()]
  assert rows and all(r["chosen_ids"] != r["rejected_ids"] and r["prompt_ids"] for r in rows)
  logged = read_metrics(tmp_path / "a")
  steps = [r for r in logged if "critic/margin" in r]
  assert len(steps) == 2 and all({"critic/dpo", "critic/reward_chosen", "pairs"} <= set(r) for r in steps)
  train(cfg, tmp_path / "b", stop_after=1)
  train(cfg, tmp_path / "b")
  assert_resumed_like_uninterrupted(tmp_path / "a", tmp_path / "b", after=0)


@pytest.mark.parametrize("variant", mc_config.VARIANTS)
def test_config_variants_validate(variant):
  cfg = from_configdict(load_config(f"configs/multicritique.py:{variant}"))
  assert cfg.recipe == "multicritique" and cfg.train.steps == 0 and cfg.rl.loss.dpo_beta == 0.1
  assert cfg.rollout.group_size == 4
