"""The GRM recipe (SPCT): items from the toy, the +-1 reward by hand, bad configs before compute,
and a tiny run of warm-up -> rejective fine-tuning -> RL that resumes exactly."""
import json

import pytest
from conftest import assert_resumed_like_uninterrupted, set_fields, strip_timing

from configs import grm as grm_config
from critjax.config import from_configdict
from critjax.data.tasks import Problem
from critjax.train.loop import build, train
from critjax.train.metrics import read_metrics
from experiments.config_loading import load_config


def tiny(steps=4, **over):
  c = grm_config.get_config("tiny")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.warmup.update(steps=150, batch_size=16)
  c.rollout.update(prompts_per_step=4, group_size=4)
  c.tokenizer.corpus_size = 2000
  c.recipe_args.update(dict(rft_pool=12, rft_steps=3, rft_batch_size=4))
  c.train.update(steps=steps, eval_every=2, eval_prompts=8, checkpoint_every=2)
  return from_configdict(set_fields(c, over))


def test_reward_is_plus_one_iff_the_best_response_scores_strictly_highest(tmp_path):
  recipe = build(tiny(), tmp_path)["recipe"]
  p = Problem(id="0:5", problem="358+267", answer="625")
  it = recipe.item(p)
  assert recipe.item(p) == it and len(it.responses) == 2 and it.best in (0, 1)   # deterministic in the id
  hi, lo = (" Scores: [[9, 3]]", " Scores: [[3, 9]]") if it.best == 0 else (" Scores: [[3, 9]]", " Scores: [[9, 3]]")
  texts = [hi, lo, " Scores: [[5, 5]]", " no scores", " Scores: [[9, 3]] Scores: [[9, 3]]", " Scores: [[11, 1]]"]
  # by hand: right ranking +1; wrong ranking, a tie, missing, duplicated, out of range: -1
  assert recipe.rewards([p] * 6, texts).tolist() == [1, -1, -1, -1, -1, -1]
  assert recipe.rewards([p], [recipe.oracle(it)]).tolist() == [1]            # the oracle is correct


@pytest.mark.parametrize("over, match", [
    ({"recipe_args.template": "crl_arith"}, "not a GRM template"),
    ({"recipe_args.n_responses": 5}, "n_responses=5"),
    ({"recipe_args.rft_samples": 0}, "rft_samples"),
    ({"task.answer_first": True}, "answer_first=False"),
])
def test_bad_configs_stop_before_any_compute(tmp_path, over, match):
  with pytest.raises(ValueError, match=match):
    build(tiny(**over), tmp_path)


@pytest.mark.parametrize("variant", [v for v in grm_config.VARIANTS if not v.startswith("tiny_meta")])
def test_config_variants_build_and_validate(variant):
  cfg = from_configdict(load_config(f"configs/grm.py:{variant}"))
  assert cfg.recipe == "grm" and cfg.rl.loss.kl_coef == 0.08 and cfg.rollout.group_size == 4
  assert cfg.recipe_args["rft_samples"] == 3
  if variant == "gemma2-27b":
    assert (cfg.model.d_model, cfg.model.n_layers, cfg.model.n_heads) == (4608, 46, 32)
    assert cfg.recipe_args["rft_steps"] == 900 and cfg.train.steps == 900
    assert cfg.optim.learning_rate == 4e-7 and cfg.warmup.learning_rate == 5e-6


def test_warmup_rft_rl_trains_logs_and_resumes_exactly(tmp_path, compiled_once):
  cfg = tiny(steps=4, **{"recipe_args.hinted": True})
  train(cfg, tmp_path / "a")
  rft = [json.loads(x) for x in (tmp_path / "a" / "data" / "grm_rft.jsonl").read_text().splitlines()]
  assert rft and all(set(r) == {"id", "prompt", "target", "hinted"} for r in rft)
  logged = strip_timing(read_metrics(tmp_path / "a"))
  assert [r for r in logged if "rft/nll" in r] and [r for r in logged if "warmup/nll" in r]
  steps = [r for r in logged if "grm_correct" in r]
  assert len(steps) == 4 and all(0 <= r["grm_invalid"] <= 1 for r in steps)
  evals = [r for r in logged if "eval/accuracy" in r]
  assert evals[0]["step"] == 0 and "eval/invalid_missing" in evals[0]
  train(cfg, tmp_path / "b", stop_after=2)
  train(cfg, tmp_path / "b")
  assert_resumed_like_uninterrupted(tmp_path / "a", tmp_path / "b", after=2)


@pytest.mark.parametrize("variant", ["tiny_meta", "tiny_meta_noprinciples"])
def test_meta_variants_need_the_grm_run_and_keep_its_model(variant):
  c = load_config(f"configs/grm.py:{variant}")
  with pytest.raises(ValueError, match="needs init_from"):
    from_configdict(c)
  for r in ("policy", "meta_rm"):
    c.roles[r].init_from = "/tmp/grm"
  c.tokenizer.path = "/tmp/grm/tokenizer.model"
  cfg = from_configdict(c)
  roles = cfg.role_configs()
  assert cfg.recipe == "grm_meta" and cfg.train.steps == 0 and cfg.rollout.temperature == 0.5
  assert roles["meta_rm"].model.scalar_head and not roles["policy"].model.scalar_head
  assert roles["meta_rm"].model.d_model == roles["policy"].model.d_model and not roles["policy"].trained
  assert cfg.recipe_args["principles"] == (variant == "tiny_meta")
