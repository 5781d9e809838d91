"""The meta RM and the scaling evaluation (recipe grm_meta): shuffled judgments mapped back to the
shown order by hand, the head's read position, a fresh head on a checkpoint's body, bad configs
before compute, and a tiny GRM run -> meta-RM run end to end."""
import zlib

import jax
import numpy as np
import pytest
from conftest import role_checkpoints, set_fields

from configs import grm as grm_config
from critjax.config import from_configdict
from critjax.rl.grm_scores import GRMScores
from critjax.rl.recipes import grm as grm_module
from critjax.eval.bench_metrics import auroc as _auc
from critjax.train.loop import build, train
from critjax.train.metrics import read_metrics

SMALL = dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)


def grm_cfg(**over):
  c = grm_config.get_config("tiny")
  c.model.update(**SMALL)
  c.warmup.update(steps=2, batch_size=8)
  c.tokenizer.corpus_size = 2000
  c.recipe_args.update(dict(rft_steps=0))
  c.train.update(steps=0, eval_prompts=4)
  return set_fields(c, over)


def meta_cfg(grm_dir, **over):
  c = grm_config.meta_config(grm_cfg())
  for r in ("policy", "meta_rm"):
    c.roles[r].init_from = str(grm_dir)
  c.tokenizer.path = str(grm_dir / "tokenizer.model")
  c.recipe_args.update(dict(meta_samples=2, meta_pool=4, meta_steps=3, meta_batch_size=4, eval_samples=4))
  c.train.eval_prompts = 4
  return from_configdict(set_fields(c, over))


@pytest.fixture(scope="module")
def grm_run(tmp_path_factory):
  d = tmp_path_factory.mktemp("grm")
  train(from_configdict(grm_cfg()), d)
  return d


def fake_scores(text, n):
  """Valid scores that depend on the text only: labels of both kinds from a random model."""
  h = zlib.crc32(text.encode())
  return GRMScores(tuple(1 + (h >> (4 * i)) % 10 for i in range(n)))


class ShownOrderEngine:
  """Stands in for the sampler: each sample scores the responses as shown, 10 - wrong steps, so
  every sample is right once mapped back, whatever order it was shown in."""

  def __init__(self, recipe):
    self.recipe, self.shown = recipe, []

  def __call__(self, engine, turns, problems, prompts, params, rng, num_samples=1, greedy=False):
    texts = []
    for it, prompt in zip(problems, prompts):
      where = [prompt.index(r) for r in it.responses]        # each response's place in the shown prompt
      order = list(np.argsort(where))                       # shown[j] = responses[order[j]]
      self.shown += [order] * num_samples
      texts += [" Scores: [[" + ", ".join(str(10 - it.wrong[i]) for i in order) + "]]"] * num_samples
    return type("Ep", (), {"texts": lambda self, t: texts})()


def test_shuffled_samples_map_back_to_the_shown_order(tmp_path, grm_run, monkeypatch):
  recipe = build(meta_cfg(grm_run), tmp_path)["recipe"]
  items = [recipe.item(p) for p in recipe.task.eval_problems(0, 3)]
  fake = ShownOrderEngine(recipe)
  monkeypatch.setattr(grm_module.protocols, "run", fake)
  got = recipe.sample_judgments({}, items, 6, jax.random.PRNGKey(0))
  for it, js in zip(items, got):
    assert len(js) == 6
    want = tuple(10 - w for w in it.wrong)
    assert all(j["scores"] == want and j["valid"] and j["correct"] for j in js)
    # n = 2: P = 2 orders, samples alternate between them, 3 of each
    orders = [tuple(j["perm"]) for j in js]
    assert set(orders) == {(0, 1), (1, 0)} and orders[0::2] == [orders[0]] * 3 and orders[1::2] == [orders[1]] * 3
  assert len(fake.shown) == 3 * 2 * 3          # 3 items x 2 orders x ceil(6 / 2) samples, one prefill each


def test_head_is_read_at_the_eos_and_labels_are_checked(tmp_path, grm_run):
  recipe = build(meta_cfg(grm_run), tmp_path)["recipe"]
  b = recipe.meta_batch(["Q: 1+2 =", "Q: 11+22 ="], [" 1+2=3 c0 ; A: 3", " A: 33"], np.array([1.0, 0.0], np.float32))
  for row in range(2):
    eos = int(np.flatnonzero(b["tokens"][row] == recipe.tokenizer.eos_id)[0])
    assert b["score_pos"][row] == eos
  with pytest.raises(ValueError, match="label"):
    recipe.meta_batch(["Q: 1+2 ="], [" A: 3"], np.array([0.5], np.float32))


def test_meta_rm_starts_from_the_grm_body_with_a_zero_head(tmp_path, grm_run):
  cfg = meta_cfg(grm_run)
  from critjax.train.loop import init_roles
  parts = build(cfg, tmp_path)
  params, _ = init_roles(cfg, parts["mesh"], parts["roles"])
  head = params["meta_rm"]["scalar_head"]
  assert all(not np.asarray(x).any() for x in jax.tree.leaves(head))
  load, same = role_checkpoints(grm_run, cfg.role_configs()["policy"].model)
  saved = load("policy", None)
  body = {k: v for k, v in params["meta_rm"].items() if k != "scalar_head"}
  assert same(body, saved) and same(params["policy"], saved)


@pytest.mark.parametrize("over, match", [
    ({"roles.meta_rm.model.scalar_head": False}, "scalar_head must be True"),
    ({"roles.policy.trained": True}, "policy.trained must be False"),
    ({"train.steps": 2}, "no RL phase"),
    ({"recipe_args.n_responses": 1}, "n_responses=1"),
    ({"recipe_args.eval_samples": 0}, "eval_samples"),
])
def test_bad_meta_configs_stop_before_any_compute(tmp_path, grm_run, over, match):
  with pytest.raises(ValueError, match=match):
    build(meta_cfg(grm_run, **over), tmp_path)


def test_meta_run_trains_the_head_and_draws_the_curve(tmp_path, grm_run, monkeypatch, compiled_once):
  """A random GRM writes no valid scores; parse_scores is replaced by text-hashed valid scores so the
  meta RM's data holds both labels. The BCE phase updates the meta RM only and the final evaluation
  holds every budget's voting and meta-RM voting accuracy."""
  monkeypatch.setattr(grm_module, "parse_scores", fake_scores)
  cfg = meta_cfg(grm_run)
  result = train(cfg, tmp_path)
  rows = read_metrics(tmp_path)
  bce = [r for r in rows if any(k.startswith("meta_rm/") for k in r)]
  assert bce and all(np.isfinite(v) for r in bce for k, v in r.items() if k.startswith("meta_rm/"))
  head = result.roles["meta_rm"]["scalar_head"]
  assert any(np.asarray(x).any() for x in jax.tree.leaves(head))          # the zero head moved
  ev = result.eval
  for k in (1, 2, 4):
    assert 0.0 <= ev[f"voting_k{k}"] <= 1.0 and 0.0 <= ev[f"meta_voting_k{k}"] <= 1.0
  assert 0.0 <= ev["accuracy"] <= 1.0 and ev["sample_invalid"] == 0.0
  data = (tmp_path / "data" / "grm_meta.jsonl").read_text().splitlines()
  assert len(data) == 4 * 2                                             # meta_pool x meta_samples


def test_meta_auc_by_hand():
  """The meta RM's AUC is bench_metrics.auroc (ties half, NaN without both labels)."""
  assert _auc([0.9, 0.8, 0.1], [1, 0, 0]) == 1.0
  assert _auc([0.1, 0.8, 0.9], [1, 0, 0]) == 0.0
  assert _auc([0.5, 0.5], [1, 0]) == 0.5
  assert _auc([0.2, 0.7, 0.4, 0.9], [1, 1, 0, 0]) == pytest.approx(1 / 4)     # pairs (pos>neg): 0.7>0.4 only
  assert np.isnan(_auc([0.1], [1]))


def test_table_runs_both_arms_and_writes_the_curve(tmp_path, monkeypatch, compiled_once):
  """experiments/grm_table.py shrunk: one seed, both arms, each a GRM run and its meta run."""
  from experiments import grm_table
  monkeypatch.setattr(grm_module, "parse_scores", fake_scores)
  real = grm_config.meta_config

  def small_meta(g):
    c = real(g)
    c.recipe_args.update(dict(meta_samples=2, meta_pool=4, meta_steps=2, meta_batch_size=4, eval_samples=4))
    c.train.eval_prompts = 4
    return c

  monkeypatch.setattr(grm_table.grm_configs, "meta_config", small_meta)
  out = grm_table.run(grm_cfg(), tmp_path, [0], ["principles", "no_principles"], log=lambda *_: None)
  rows = out["results"]
  assert set(rows) == {"principles", "no_principles"}
  r = rows["principles"][0]
  assert r["vote_K_minus_vote1"] == pytest.approx(r["voting_k4"] - r["voting_k1"])
  assert r["meta_K_minus_vote_K"] == pytest.approx(r["meta_voting_k4"] - r["voting_k4"])
  for name in ("results.json", "table.md", "scaling.png"):
    assert (tmp_path / name).exists()
  assert "principles minus no_principles" in (tmp_path / "table.md").read_text()
  with pytest.raises(ValueError, match="unknown arm"):
    grm_table.run(grm_cfg(), tmp_path, [0], ["pairwise"])
