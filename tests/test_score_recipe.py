"""SCoRe's batch construction on real rollouts: per-turn advantages, per-token KL weights by stage,
instruction tokens out of the loss; and the STaR / Pair-SFT batches."""
import jax
import numpy as np
import pytest

from configs import score as score_config
from critjax.config import from_configdict
from critjax.rl import episodes
from critjax.rl.recipes.base import Phase
from critjax.sampling.sampler import CONTEXT
from critjax.train import loop

CORRECT = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)   # i->c, c->c, c->i, i->i


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
  c = score_config.get_config("tiny")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.rollout.update(prompts_per_step=1, group_size=4, max_new_tokens=6)
  c.tokenizer.corpus_size = 2000
  c.rl.advantage = "reinforce"   # the paper's estimator (the tiny config picks RLOO; tested below)
  cfg = from_configdict(c)
  p = loop.build(cfg, tmp_path_factory.mktemp("w"))
  params = {"policy": loop.init_model(cfg, p["mesh"])[0]}
  return cfg, p, params


def scripted(recipe, monkeypatch):
  calls = iter([CORRECT[:, 0], CORRECT[:, 1]])
  monkeypatch.setattr(recipe.task, "score", lambda problems, texts: next(calls))


@pytest.mark.parametrize("stage", [1, 2])
def test_score_batch_per_turn(parts, monkeypatch, stage):
  cfg, p, params = parts
  recipe = p["recipe"]
  recipe.set_phase(Phase(f"stage{stage}", 1, {"stage": stage}))
  scripted(recipe, monkeypatch)
  seen = {}
  original = episodes.policy_batch

  def spy(ro, adv, **kw):
    seen.update(ro=ro, adv=adv, **kw)
    return original(ro, adv, **kw)

  monkeypatch.setattr(episodes, "policy_batch", spy)
  out = recipe.collect(params, recipe.task.problems(0, 0, 1), jax.random.PRNGKey(0))
  # REINFORCE (the paper's estimator): each turn's advantage is its reward.
  if stage == 1:   # eq. 3: only the second attempt is rewarded; beta2 on turn 1, beta1 on turn 2
    expect, betas = [[0, 1], [0, 1], [0, 0], [0, 0]], [0.1, 0.01]
  else:            # eq. 4: r1 = r_hat(y1); r2 = r_hat(y2) + 10 (r_hat(y2) - r_hat(y1))
    expect, betas = [[0, 11], [1, 1], [1, -10], [0, 0]], [0.01, 0.01]
  np.testing.assert_allclose(seen["adv"], expect)
  np.testing.assert_allclose(seen["kl_coef_turn"], betas)
  # the batch: every generated token carries its turn's advantage and beta; context tokens none
  segment = np.asarray(seen["ro"].segment)[:, :out.batch["tokens"].shape[1]]
  b = out.batch
  for turn in (0, 1):
    rows, cols = np.nonzero(segment == turn)
    np.testing.assert_allclose(b["adv"][rows, cols], np.asarray(expect, np.float32)[rows, turn])
    np.testing.assert_allclose(b["kl_coef"][rows, cols], betas[turn])
    assert (b["mask"][rows, cols] == 1).all()
  assert (b["mask"][segment == CONTEXT] == 0).all() and (segment == CONTEXT).sum() > 0
  assert out.metrics["stage"] == stage
  np.testing.assert_allclose(out.metrics["accuracy"], CORRECT[:, 1].mean())


def test_score_rloo_baseline_per_turn(parts, monkeypatch):
  """RLOO within each turn's group of 4 (stage II): A_i = R_i - mean of the other three."""
  import dataclasses
  cfg, p, params = parts
  recipe = p["recipe"]
  recipe.cfg = dataclasses.replace(cfg, rl=dataclasses.replace(cfg.rl, advantage="rloo"))
  recipe.set_phase(Phase("stage2", 1, {"stage": 2}))
  scripted(recipe, monkeypatch)
  seen = {}
  original = episodes.policy_batch
  monkeypatch.setattr(episodes, "policy_batch", lambda ro, adv, **kw: seen.update(adv=adv) or original(ro, adv, **kw))
  try:
    recipe.collect(params, recipe.task.problems(0, 0, 1), jax.random.PRNGKey(0))
  finally:
    recipe.cfg = cfg
  # turn 1 rewards [0, 1, 1, 0]: 0 - 2/3, 1 - 1/3, 1 - 1/3, 0 - 2/3
  # turn 2 shaped rewards [11, 1, -10, 0]: 11 - (-9/3), 1 - 1/3, -10 - 12/3, 0 - 2/3
  expect = [[-2 / 3, 14], [2 / 3, 2 / 3], [2 / 3, -14], [-2 / 3, -2 / 3]]
  np.testing.assert_allclose(seen["adv"], expect, rtol=1e-6)


def test_score_hparams_are_validated():
  c = score_config.get_config("tiny")
  c.recipe_args.alpha = -1.0
  cfg = from_configdict(c)
  with pytest.raises(ValueError, match="recipe_args.alpha"):
    loop.build(cfg, __import__("pathlib").Path("/tmp/critjax_never_written"))
