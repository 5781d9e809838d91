"""GRPO with a judge role in the loop: the voted reward by hand, the judge's prompts and samples,
bad configs before compute, and a tiny run whose reward comes from the judge role."""
import numpy as np
import pytest
from conftest import set_fields

from configs import grpo_judged
from critjax.config import from_configdict
from critjax.data.tasks import Problem
from critjax.rl.recipes import judged
from critjax.train.loop import build, train
from critjax.train.metrics import read_metrics

SMALL = dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)


def tiny(**over):
  c = grpo_judged.get_config("tiny")
  c.model.update(**SMALL)
  c.tokenizer.update(kind="train_spm", corpus_size=2000)      # no judge run here: a tokenizer of its own
  c.roles.judge.update(dict(init="random", init_from=None, init_role=None, max_new_tokens=16))
  c.warmup.update(steps=2, batch_size=8)
  c.rollout.update(prompts_per_step=2, group_size=2, max_prompt_len=64, max_new_tokens=24)
  c.recipe_args.judge_samples = 2
  c.train.update(steps=2, eval_every=2, eval_prompts=4, checkpoint_every=2)
  return from_configdict(set_fields(c, over))


def test_voted_reward_by_hand():
  scores = [[8, 4, 0], [10, 0, 0], [0, 0, 0]]
  valid = [[True, True, False], [True, False, False], [False, False, False]]
  # (8 + 4) / (2 * 10) = 0.6; 10 / 10 = 1; no valid sample: 0
  np.testing.assert_allclose(judged.voted_reward(scores, valid), [0.6, 1.0, 0.0], rtol=1e-6)


def test_the_judge_sees_each_completion_k_times_and_its_votes_are_the_reward(tmp_path, monkeypatch):
  recipe = build(tiny(**{"recipe_args.judge_samples": 3}), tmp_path)["recipe"]
  problems = [Problem(id="0:1", problem="12+30", answer="42"), Problem(id="0:2", problem="5+5", answer="10")]
  texts = [" 2+0=2 c0 ; 1+3=4 c0 ; A: 42", " 5+5=11 c1 ; A: 11"]
  calls = []
  scripted = [" Scores: [[9]]", " Scores: [[7]]", " nothing", " Scores: [[2]]", " Scores: [[12]]", " Scores: [[4]]"]

  def fake_run(engine, turns, probs, prompts, params, rng, num_samples=1, greedy=False):
    calls.append((turns, prompts, num_samples))
    return type("Ep", (), {"texts": lambda self, t: scripted})()

  monkeypatch.setattr(judged.protocols, "run", fake_run)
  reward = recipe.score_completions({}, problems, texts, np.zeros(2, np.uint32))
  (turns, prompts, k), = calls
  assert turns == judged.JUDGE_TURN and k == 3
  assert all(t in p and p.startswith(f"Q: {q.problem} =") for p, t, q in zip(prompts, texts, problems))
  # first: (9 + 7) / (2 * 10) = 0.8 (one sample invalid); second: 12 is out of range, (2 + 4) / 20 = 0.3
  np.testing.assert_allclose(reward, [0.8, 0.3], rtol=1e-6)
  m = recipe.generation_metrics([])
  assert m["judge_invalid"] == pytest.approx(2 / 6) and m["verified_accuracy"] == 0.5
  assert m["judge_reward_right"] == pytest.approx(0.8) and m["judge_reward_wrong"] == pytest.approx(0.3)


@pytest.mark.parametrize("over, match", [
    ({"roles.judge.trained": True, "recipe_args.judge_samples": 1}, "judge_samples >= 2"),
    ({"roles.judge.trained": True, "rl.dynamic_sampling": True}, "dynamic_sampling=False"),
    ({"recipe_args.judge_template": "critique_toy"}, "not a GRM template"),
    ({"recipe_args.judge_samples": 0}, "judge_samples=0"),
])
def test_bad_configs_stop_before_any_compute(tmp_path, over, match):
  with pytest.raises(ValueError, match=match):
    build(tiny(**over), tmp_path)


def test_tiny_run_rewards_the_policy_with_the_judge_role(tmp_path, compiled_once):
  """A random judge writes no valid scores: every reward is 0, counted as invalid judgments, and the
  verifier's accuracy is logged beside it."""
  result = train(tiny(), tmp_path)
  rows = [r for r in read_metrics(tmp_path) if "loss" in r]
  assert len(rows) == 2
  for r in rows:
    assert r["judge_invalid"] == 1.0 and r["reward_mean"] == 0.0 and 0.0 <= r["verified_accuracy"] <= 1.0
  assert "accuracy" in result.eval          # the greedy evaluation is the verifier's


def test_trained_judge_reward_by_hand():
  scores = [[8, 5, 6], [3, 9, 0]]
  valid = [[True, True, True], [True, True, False]]
  # completion 0 is right: 8 and 6 (>= 6) agree, 5 does not; completion 1 is wrong: 3 agrees, 9 does not,
  # the invalid sample gets -1
  np.testing.assert_array_equal(judged.judge_rewards(scores, valid, [True, False]), [[1, -1, 1], [1, -1, -1]])


def test_a_judge_trained_in_the_same_run_gets_its_own_batch_and_update(tmp_path):
  cfg = tiny(**{"roles.judge.trained": True})
  recipe = build(cfg, tmp_path / "b")["recipe"]
  assert recipe.rows_per_step() == {"policy": 4, "judge": 8} and recipe.trained_roles() == ["policy", "judge"]
  train(cfg, tmp_path / "run")
  rows = [r for r in read_metrics(tmp_path / "run") if "loss" in r]
  assert len(rows) == 2 and all("judge/loss" in r and 0 <= r["judge_correct"] <= 1 for r in rows)
