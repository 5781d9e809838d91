"""Critique-Coder's CRL recipe: the r_CRL reward by hand, the mixture and its bad input, critique
items sampled once at RL start (written, reused, read back on a resume), the configs, and a tiny
run that trains, logs CRL's metrics and resumes exactly."""
import json
import math
import re

import jax
import ml_collections
import numpy as np
import pytest
from conftest import assert_resumed_like_uninterrupted, set_fields, strip_timing

from configs import crl as crl_config
from critjax.config import from_configdict
from critjax.data.tasks import Problem
from critjax.models import decoder
from critjax.rl.recipes.crl import CRLArgs, CritiqueItem, conclusion_critique, item_from_record
from critjax.train import offline_data
from critjax.train.loop import build, train
from critjax.train.metrics import read_metrics
from experiments.config_loading import load_config


def tiny(steps=4, **over):
  c = crl_config.get_config("tiny")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.warmup.update(steps=3, batch_size=8)
  c.rollout.update(prompts_per_step=5, group_size=4, max_new_tokens=40, max_prompt_len=64)
  c.task.update(min_digits=1, max_digits=2)
  c.tokenizer.corpus_size = 2000
  c.recipe_args.update(dict(pool_size=12, eval_items=6))
  c.train.update(steps=steps, eval_every=2, eval_prompts=8, checkpoint_every=2)
  return from_configdict(set_fields(c, over))


# --- the reward ---------------------------------------------------------------------------------

def test_crl_reward_is_one_iff_the_verdict_equals_the_label(tmp_path):
  parts = build(tiny(), tmp_path)
  recipe = parts["recipe"]
  item = lambda label: CritiqueItem(id="x", problem="3+4", answer="7", candidate=" A: 7", label=label)
  solve = Problem(id="s", problem="3+4", answer="7")
  rows = [item(True), item(True), item(False), item(False), item(True), solve, solve]
  texts = [" ok \\conclusion{True}", " \\conclusion{False}", " \\conclusion{False}", " \\conclusion{True}",
           " no verdict at all", " 3+4=7 c0 ; A: 7", " 3+4=8 c0 ; A: 8"]
  # by hand: right verdict 1, wrong verdict 0, missing 0; solve rows keep the task's exact-match reward
  np.testing.assert_array_equal(recipe.rewards(rows, texts), [1, 0, 1, 0, 0, 1, 0])


def test_toy_critique_target_ends_in_a_conclusion():
  oracle = " 3+4=7 c0 Correct ; Final Correct"
  assert conclusion_critique(oracle, True) == " 3+4=7 c0 Correct ; \\conclusion{True}"
  assert conclusion_critique(" 3+4=7 c0 Wrong ; Final Wrong", False).endswith("Wrong ; \\conclusion{False}")


# --- the mixture and its bad input --------------------------------------------------------------

@pytest.mark.parametrize("mixture, msg", [
    ({"solve": 0.7, "critique": 0.2}, "sum to 1"),
    ({"solve": 0.8, "critque": 0.2}, "unknown task"),
    ({"solve": 1.2, "critique": -0.2}, ">= 0"),
])
def test_bad_mixture_is_refused_naming_the_field(mixture, msg):
  with pytest.raises(ValueError, match=msg) as e:
    CRLArgs(mixture=mixture)
  assert "config.recipe_args.mixture" in str(e.value)


def test_bad_mixture_stops_the_run_before_anything_is_written(tmp_path):
  with pytest.raises(ValueError, match="sum to 1"):
    train(tiny(**{"recipe_args.mixture": ml_collections.ConfigDict({"solve": 0.5, "critique": 0.2})}), tmp_path / "r")
  assert not (tmp_path / "r" / "config.json").exists()


def test_critique_item_without_a_label_is_refused_naming_it():
  rec = {"id": "crl_pool:0:7", "problem": "3+4", "answer": "7", "candidate": " A: 7"}
  with pytest.raises(ValueError, match="crl_pool:0:7.*label"):
    item_from_record(rec)
  with pytest.raises(ValueError, match="label"):
    item_from_record({**rec, "label": "yes"})


def test_each_generation_batch_takes_the_items_at_its_stream_position(tmp_path):
  recipe = build(tiny(), tmp_path)["recipe"]
  pool = [{"id": f"p{i}", "problem": "1+1", "answer": "2", "candidate": " A: 2", "label": True} for i in range(12)]
  recipe.load_data("crl_pool", pool)
  problems = [Problem(id=f"q{i}", problem="1+2", answer="3") for i in range(5)]
  assert recipe.n_critique == 1               # round(0.2 x 5)
  mixed = recipe._mixed(problems, 11)
  assert [p.id for p in mixed] == ["q0", "q1", "q2", "q3", "p11"]
  assert recipe._mixed(problems, 13)[-1].id == "p1"          # (13 + 0) mod 12


# --- offline data: built once, reused, restored -------------------------------------------------

def test_offline_data_missing_on_resume_is_named(tmp_path):
  from critjax.rl.phases import BuildData, Phase

  class R:
    def load_data(self, name, records):
      self.got = (name, records)
  phase = Phase("rl", 3, on_start=(BuildData("policy", "crl_pool"),))
  with pytest.raises(FileNotFoundError, match="crl_pool.jsonl"):
    offline_data.restore(R(), [phase], [0], 2, tmp_path)
  offline_data.restore(R(), [phase], [0], 0, tmp_path)      # not started yet: nothing to load
  (tmp_path / "data").mkdir()
  (tmp_path / "data" / "crl_pool.jsonl").write_text('{"a": 1}\nnot json\n')
  with pytest.raises(ValueError, match="line 2"):
    offline_data.restore(R(), [phase], [0], 2, tmp_path)


# --- end to end ----------------------------------------------------------------------------------

def test_crl_trains_logs_its_metrics_and_resumes_exactly(tmp_path, compiled_once):
  cfg = tiny(steps=4)
  train(cfg, tmp_path / "a")
  pool = [json.loads(x) for x in (tmp_path / "a" / "data" / "crl_pool.jsonl").read_text().splitlines()]
  assert 0 < len(pool) <= 12 and all(isinstance(r["label"], bool) for r in pool)
  train(cfg, tmp_path / "b", stop_after=2)
  train(cfg, tmp_path / "b")                    # resumes at step 2: the items are read back from data/
  assert_resumed_like_uninterrupted(tmp_path / "a", tmp_path / "b", after=2)
  a = strip_timing(read_metrics(tmp_path / "a"))
  steps = [r for r in a if "critique_reward" in r]
  assert steps and all(r["critique_share"] == pytest.approx(0.2) for r in steps)
  assert all(k in steps[0] for k in ("solve_accuracy", "verdict_missing", "kept_frac"))
  evals = [r for r in a if "eval/critique_acc" in r]
  assert evals and evals[0]["step"] == 0 and 0.0 <= evals[-1]["eval/critique_acc"] <= 1.0


# --- configs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["tiny", "tiny_rl", "qwen3-4b", "qwen3-8b"])
def test_crl_configs_build_and_validate(variant):
  cfg = from_configdict(load_config(f"configs/crl.py:{variant}"))
  args = CRLArgs(**{**cfg.recipe_args, "mixture": dict(cfg.recipe_args["mixture"])})
  assert cfg.recipe == "crl" and cfg.rl.loss.kl_coef == 0.0
  assert (cfg.rl.loss.clip_low, cfg.rl.loss.clip_high, cfg.rl.loss.aggregation) == (0.2, 0.3, "token_mean")
  assert cfg.rl.dynamic_sampling and cfg.rl.overlong_filter and cfg.rollout.group_size == 8
  assert args.mixture == ({"solve": 1.0, "critique": 0.0} if variant == "tiny_rl" else {"solve": 0.8, "critique": 0.2})
  if not variant.startswith("qwen3"):
    assert cfg.task.code_reward == "all_pass"
  if variant.startswith("qwen3"):      # ALGORITHMS.md §5: train_qwen3_4b_16k.sh
    assert cfg.rollout.prompts_per_step == 128 and cfg.optim.learning_rate == 1e-6 and cfg.optim.warmup_steps == 10
    assert (cfg.rollout.temperature, cfg.rollout.top_p, cfg.rollout.top_k) == (0.6, 0.95, 20)
    assert (cfg.rollout.max_prompt_len, cfg.rollout.max_new_tokens) == (4096, 16_384)
    rows = cfg.rollout.prompts_per_step * cfg.rollout.group_size
    assert rows // cfg.rl.num_minibatches == 64 * 8 and cfg.task.name == "humaneval"
    assert cfg.task.code_reward == "fraction"          # the paper's share of test cases passed
    assert cfg.model.qk_norm and cfg.mesh.fsdp * max(cfg.mesh.data, 1) * cfg.mesh.tensor == 8
    shapes = jax.eval_shape(lambda: decoder.init_params(cfg.model, jax.random.key(0))[0])
    n = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))
    published = {"qwen3-4b": 4.02e9, "qwen3-8b": 8.19e9}[variant]     # Qwen3 model cards
    assert abs(n - published) / published < 0.02


# --- the fractional code reward (task.code_reward) --------------------------------------------------

@pytest.mark.parametrize("fields, msg", [
    ({"name": "humaneval", "code_reward": "partial"}, "code_reward='partial'; expected one of all_pass | fraction"),
    ({"name": "gsm8k", "code_reward": "fraction"}, "code_reward='fraction' needs a code task"),
    ({"code_reward": "fraction"}, "task 'arithmetic' has no test cases"),
])
def test_bad_code_reward_is_refused_naming_the_field(fields, msg):
  from critjax.config import TaskConfig
  with pytest.raises(ValueError, match=re.escape(msg)):
    TaskConfig(**fields)
  c = crl_config.get_config("tiny")
  c.task.update(fields)
  with pytest.raises(ValueError, match=r"config\.task: code_reward="):
    from_configdict(c)


@pytest.mark.parametrize("code_reward, partial", [("all_pass", False), ("fraction", True)])
def test_humaneval_reward_follows_code_reward(code_reward, partial):
  from critjax.config import TaskConfig
  from critjax.data.tasks import make_task
  task = make_task(TaskConfig(name="humaneval", code_reward=code_reward))
  try:
    assert task.reward.partial_credit is partial
  finally:
    task.close()


def test_candidates_are_right_only_when_every_test_passes(tmp_path, monkeypatch):
  # Fractional solve rewards: the RL reward of a solve row is the fraction itself, a candidate is
  # labelled right iff its score is 1, and critique rows keep r_CRL (verdict == label).
  recipe = build(tiny(), tmp_path)["recipe"]
  fractions = np.array([1.0, 2 / 3, 0.0, 0.999], np.float32)

  class Episode:
    def __init__(self, n):
      self.n = n

    def texts(self, turn):
      return [" A: 1"] * self.n
  monkeypatch.setattr(recipe, "episode", lambda turns, params, problems, rng, **kw: Episode(len(problems)))
  monkeypatch.setattr(recipe.task, "score", lambda problems, texts: np.resize(fractions, len(problems)))
  records = recipe.build_data("crl_pool", None, jax.random.key(0))
  labels = [r["label"] for r in records]
  assert len(labels) == 12 and labels == [True, False, False, False] * 3
  item = lambda label: CritiqueItem(id="x", problem="3+4", answer="7", candidate=" A: 7", label=label)
  solve = Problem(id="s", problem="3+4", answer="7")
  rows = [solve, solve, item(True), item(False), solve, solve]
  texts = ["a", "b", " \\conclusion{True}", " \\conclusion{True}", "c", "d"]
  # task.score is asked about the 4 solve rows only: fractions 1, 2/3, 0, 0.999; critique: 1, 0
  np.testing.assert_allclose(recipe.rewards(rows, texts), [1.0, 2 / 3, 1.0, 0.0, 0.0, 0.999], rtol=1e-6)
