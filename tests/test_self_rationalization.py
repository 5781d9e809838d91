"""Self-rationalization: pair curation by hand, bad configs before compute, and a tiny run of the
warm-up and two DPO iterations (pairs built at each iteration's start, the reference reset) that
resumes exactly."""
import json

import pytest
from conftest import assert_resumed_like_uninterrupted, set_fields

from configs import self_rationalization as sr_config
from critjax.config import from_configdict
from critjax.rl.recipes.self_rationalization import curate_pairs
from critjax.train.loop import build, train
from critjax.train.metrics import read_metrics
from experiments.config_loading import load_config


def tiny(**over):
  c = sr_config.get_config("tiny")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.warmup.update(steps=150, batch_size=16)
  c.rollout.update(prompts_per_step=4, group_size=4)
  c.tokenizer.corpus_size = 2000
  c.recipe_args.update(dict(pool=8, judgments=4, dpo_steps=2, pairs_per_step=2))
  c.train.update(eval_every=2, eval_prompts=8, checkpoint_every=1)
  return from_configdict(set_fields(c, over))


def test_pairs_are_the_right_scores_against_the_others_in_sample_order():
  texts = [" a ; Scores: [[7]]", " b ; Scores: [[4]]", " c", " d ; Scores: [[7]]", " e ; Scores: [[7]]"]
  # label 7: right a, d, e; wrong b, c (unparsable counts as rejected): two pairs, in sample order
  assert curate_pairs(texts, 7) == [(texts[0], texts[1]), (texts[3], texts[2])]
  assert curate_pairs(texts[:1], 7) == [] and curate_pairs(texts[1:3], 7) == []


@pytest.mark.parametrize("over, match", [
    ({"recipe_args.n_responses": 2}, "scores one response"),
    ({"recipe_args.rft_steps": 3}, "no RFT phase"),
    ({"recipe_args.judgments": 1}, "judgments >= 2"),
    ({"train.steps": 5}, "set train.steps=0"),
])
def test_bad_configs_stop_before_any_compute(tmp_path, over, match):
  with pytest.raises(ValueError, match=match):
    build(tiny(**over), tmp_path)


def test_warmup_then_two_dpo_iterations_resume_exactly(tmp_path, compiled_once):
  cfg = tiny()
  train(cfg, tmp_path / "a")
  for i in (1, 2):
    rows = [json.loads(x) for x in (tmp_path / "a" / "data" / f"selfrat{i}.jsonl").read_text().splitlines()]
    assert rows and all(set(r) == {"id", "prompt", "chosen", "rejected"} and r["chosen"] != r["rejected"] for r in rows)
  logged = read_metrics(tmp_path / "a")
  steps = [r for r in logged if "margin" in r]
  assert len(steps) == 4 and all({"dpo", "reward_chosen", "logp_rejected", "pairs"} <= set(r) for r in steps)
  evals = [r for r in logged if "eval/accuracy" in r]
  assert evals[0]["step"] == 0 and all({"eval/sc_8", "eval/bon_8", "eval/sampled_accuracy"} <= set(r) for r in evals)
  train(cfg, tmp_path / "b", stop_after=3)
  train(cfg, tmp_path / "b")
  assert_resumed_like_uninterrupted(tmp_path / "a", tmp_path / "b", after=3)


@pytest.mark.parametrize("variant", sr_config.VARIANTS)
def test_config_variants_validate(variant):
  cfg = from_configdict(load_config(f"configs/self_rationalization.py:{variant}"))
  assert cfg.recipe == "self_rationalization" and cfg.recipe_args["iterations"] == 2
  assert cfg.rl.loss.dpo_beta == 0.1 and cfg.train.steps == 0
  if variant != "tiny":
    rows = cfg.rollout.prompts_per_step * cfg.rollout.group_size
    assert cfg.model.d_model == 4096 and cfg.model.vocab_size == 128_256 and rows > 0
