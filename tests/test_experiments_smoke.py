"""Smoke tests: the SCoRe ablation sweep and the turn-2 benchmark run end to end on shrunken configs."""
import json

import pytest
from conftest import compilation_cache

from configs import score as score_config
from experiments import score_sweep as correction_sweep


def shrink(c):
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.warmup.update(steps=2, batch_size=8)
  c.rollout.update(prompts_per_step=2, group_size=2, max_new_tokens=28)
  c.task.update(min_digits=1, max_digits=2)
  c.tokenizer.corpus_size = 2000
  c.train.update(steps=2, eval_every=2, eval_prompts=4, checkpoint_every=2)
  return c


@pytest.fixture(scope="module")
def swept(tmp_path_factory, compilation_cache_dir):
  """One finished sweep of every method (seed 0, shrunken), shared by the tests that read it. Its
  ten runs share one compilation cache (conftest): a program every method runs is compiled once."""
  path = tmp_path_factory.mktemp("sweep")
  with compilation_cache(compilation_cache_dir):
    correction_sweep.run(shrink(score_config.get_config("tiny")), path, seeds=[0], log=lambda s: None)
  return path


def test_score_ablation_sweep_writes_the_table(swept):
  results = json.loads((swept / "results.json").read_text())
  assert set(results) == set(correction_sweep.METHODS)
  assert json.loads((swept / "results.partial.json").read_text()) == results
  for rows in results.values():
    assert 0.0 <= rows[0]["acc_t1"] <= 1.0 and "delta_c2i" in rows[0]
  table = (swept / "table.md").read_text()
  assert "score_no_shaping" in table and "Δ(t1,t2)" in table
  assert (swept / "ablation.png").stat().st_size > 1000


def test_unknown_method_is_refused_before_any_training(tmp_path):
  with pytest.raises(ValueError, match=r"unknown method\(s\) \['star_ofline'\]"):
    correction_sweep.run(shrink(score_config.get_config("tiny")), tmp_path, seeds=[0],
                         methods=["base", "star_ofline"], log=lambda s: None)
  assert not any(tmp_path.iterdir())


def test_compute_matched_study_runs(tmp_path):
  import jax
  from critjax.config import from_configdict
  from critjax.eval import correction_protocols
  from critjax.train import loop
  cfg = from_configdict(shrink(score_config.get_config("tiny")))
  parts = loop.build(cfg, tmp_path)
  params = {"policy": loop.init_model(cfg, parts["mesh"])[0]}
  recipe = parts["recipe"]
  out = correction_protocols.compute_matched(recipe, params, recipe.task.eval_problems(0, 3), jax.random.PRNGKey(0),
                                             ks=(1, 2))
  assert out["k"] == [1, 2] and out["samples"] == [2, 4]
  assert all(0.0 <= a <= 1.0 for a in out["parallel_acc"] + out["self_correct_acc"])


def test_compute_matched_votes_on_extracted_answers(tmp_path, monkeypatch):
  """Scripted samples for 2 problems, K = 2: the votes worked out by hand."""
  import jax
  from critjax.config import from_configdict
  from critjax.eval import correction_protocols
  from critjax.train import loop
  cfg = from_configdict(shrink(score_config.get_config("tiny")))
  recipe = loop.build(cfg, tmp_path)["recipe"]
  probs = recipe.task.eval_problems(0, 2)
  g = [p.answer for p in probs]
  w = [str(int(a) + 1) for a in g]
  a = lambda x: f" x ; A: {x}"
  parallel = [a(g[0]), a(w[0]), a(w[0]), a(w[0]), a(g[1]), a(g[1]), a(w[1]), "no answer"]   # rows of 2K = 4
  firsts = [a(w[0]), a(w[0]), a(w[1]), a(w[1])]
  seconds = [a(g[0]), a(g[0]), a(w[1]), "no answer"]
  def fake(params, problems, rng, num_samples, turns=None):
    return None, None, [parallel] if turns == 1 else [firsts, seconds]
  monkeypatch.setattr(recipe, "attempts", fake)
  out = correction_protocols.compute_matched(recipe, None, probs, jax.random.PRNGKey(0), ks=(1, 2))
  # k=1: parallel votes {g0, w0} -> tie, earliest (g0) wins: correct; {g1, g1}: correct -> 1.0
  #      corrected: [g0] correct; [w1] wrong -> 0.5
  # k=2: parallel {g0, w0, w0, w0} -> w0 wrong; {g1, g1, w1, None} -> g1 correct -> 0.5
  #      corrected: [g0, g0] correct; [w1, None] wrong -> 0.5
  assert out["parallel_acc"] == [1.0, 0.5] and out["self_correct_acc"] == [0.5, 0.5]


def test_sweep_config_overrides_reach_the_sweep_and_name_unknown_fields():
  """`--config.a.b=value` (ml_collections config flags, as in experiments/train.py) reaches the
  config every method starts from; a mistyped field stops the sweep at flag parsing, naming it."""
  import subprocess
  import sys
  probe = ("import sys, runpy\n"
           "from experiments import score_sweep as cs\n"
           "cs.run = lambda base, *a, **k: (print('got', base.task.answer_first, base.warmup.steps), sys.exit(0))\n"
           "sys.argv = ['score_ablation', '--config.task.answer_first=True', '--config.warmup.steps=300']\n"
           "runpy.run_module('experiments.score_ablation', run_name='__main__')\n")
  out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
  assert out.returncode == 0 and "got True 300" in out.stdout, out.stderr[-2000:]
  out = subprocess.run([sys.executable, "-m", "experiments.score_ablation", "--workdir=/nonexistent",
                        "--config.task.answer_frist=True"], capture_output=True, text=True, timeout=120)
  assert out.returncode != 0 and "answer_frist" in out.stderr


def test_merge_joins_sweeps_run_apart_and_refuses_overlaps(tmp_path):
  """Two one-seed sweeps merged: the table's mean and standard error are those of both seeds."""
  rows = lambda seed, a1, a2: {"seed": seed, "acc_t1": a1, "acc_t2": a2, "delta": a2 - a1,
                               "delta_i2c": max(a2 - a1, 0.0), "delta_c2i": max(a1 - a2, 0.0)}
  for name, seed, a1, a2 in [("s0", 0, 0.2, 0.3), ("s1", 1, 0.4, 0.7)]:
    (tmp_path / name).mkdir()
    (tmp_path / name / "results.json").write_text(json.dumps({"base": [rows(seed, a1, a2)]}))
  out = correction_sweep.merge([tmp_path / "s0", tmp_path / "s1"], tmp_path / "all")
  assert [r["seed"] for r in out["results"]["base"]] == [0, 1]
  # delta: mean of 0.1 and 0.3 = 20.0%; standard error = std(ddof=1) / sqrt(2) = 0.1414 / 1.414 = 10.0%
  assert "20.0 ± 10.0" in (tmp_path / "all" / "table.md").read_text()
  assert "fixed_first" not in out and not (tmp_path / "all" / "fixed_first.md").exists()
  # with a fixed_first.json in every source, those are joined too: fix rates 0.2 and 0.4 -> 30.0 ± 10.0
  for name, seed, fix in [("s0", 0, 0.2), ("s1", 1, 0.4)]:
    (tmp_path / name / "fixed_first.json").write_text(json.dumps({"base": [
        {"seed": seed, "fix_rate": fix, "break_rate": 0.5, "acc_t2": 0.5, "delta": 0.0}]}))
  out = correction_sweep.merge([tmp_path / "s0", tmp_path / "s1"], tmp_path / "all")
  assert [r["seed"] for r in out["fixed_first"]["results"]["base"]] == [0, 1]
  assert "| base | 2 | 30.0 ± 10.0 | 50.0 ± 0.0 |" in (tmp_path / "all" / "fixed_first.md").read_text()
  with pytest.raises(ValueError, match="seed"):
    correction_sweep.merge([tmp_path / "s0", tmp_path / "s0"], tmp_path / "dup")
  with pytest.raises(FileNotFoundError, match="results.json"):
    correction_sweep.merge([tmp_path / "s0", tmp_path / "missing"], tmp_path / "bad")


def test_a_later_pass_adds_rows_to_the_workdirs_table(tmp_path):
  """A second pass with other methods into the same workdir keeps the first pass's rows (it used to
  overwrite results.json with its own); a (method, seed) run again replaces its row."""
  fake = lambda seed: {"seed": seed, "acc_t1": 2.0, "acc_t2": 2.0, "delta": 0.0, "delta_i2c": 0.0,
                       "delta_c2i": 0.0}     # 2.0: no real accuracy, so a replaced row is easy to spot
  (tmp_path / "results.json").write_text(json.dumps({"star": [fake(0)], "base": [fake(7), fake(0)]}))
  out = correction_sweep.run(shrink(score_config.get_config("tiny")), tmp_path, seeds=[0], methods=["base"],
                             log=lambda s: None)
  results = json.loads((tmp_path / "results.json").read_text())
  assert list(results) == ["base", "star"]                      # METHODS order
  assert [r["seed"] for r in results["base"]] == [0, 7]
  assert results["base"][0]["acc_t1"] <= 1.0 and results["base"][1] == fake(7)   # seed 0 redone, 7 kept
  assert results["star"] == [fake(0)] and out["results"] == results
  assert "star" in (tmp_path / "table.md").read_text()


def test_an_earlier_table_with_an_unknown_method_is_refused_before_training(tmp_path):
  (tmp_path / "results.json").write_text(json.dumps({"sfar": []}))
  with pytest.raises(ValueError, match=r"results.json: unknown method\(s\) \['sfar'\]"):
    correction_sweep.run(shrink(score_config.get_config("tiny")), tmp_path, seeds=[0], methods=["base"],
                         log=lambda s: None)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_fixed_first_attempts_reproduce_the_models_own_episode(tmp_path, monkeypatch):
  """Given a model's own greedy first attempts, the fixed-first protocol (attempt appended as context)
  must write the same second attempts as the two-attempt episode (attempt decoded). The random model
  is never right, so a scorer of the text itself (odd length = "right") makes the check see the texts."""
  import numpy as np
  from critjax.config import from_configdict
  from critjax.eval import correction_protocols
  from critjax.train import loop
  cfg = from_configdict(shrink(score_config.get_config("tiny")))
  parts = loop.build(cfg, tmp_path)
  params = {"policy": loop.init_model(cfg, parts["mesh"])[0]}
  recipe, probs = parts["recipe"], parts["recipe"].task.eval_problems(0, 8)
  monkeypatch.setattr(recipe.task, "score", lambda problems, texts: np.array([len(t) % 2 for t in texts], float))
  own = recipe.evaluate(params, probs)
  first_ids, first_ok = correction_protocols.first_attempts(recipe, params, probs)
  assert first_ok.mean() == pytest.approx(own["acc_t1"])
  fixed = correction_protocols.fixed_first(recipe, params, probs, first_ids, first_ok)
  for key in ("acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i"):
    assert fixed[key] == pytest.approx(own[key]), key
  # rates by hand from the transitions: i->c / (1 - Acc@t1), c->i / Acc@t1
  if 0 < own["acc_t1"] < 1:
    assert fixed["fix_rate"] == pytest.approx(own["delta_i2c"] / (1 - own["acc_t1"]))
    assert fixed["break_rate"] == pytest.approx(own["delta_c2i"] / own["acc_t1"])
  # every first attempt flipped to "right": nothing to fix, so the fix rate is undefined (NaN)
  all_right = correction_protocols.fixed_first(recipe, params, probs, first_ids, np.ones(len(probs), bool))
  assert np.isnan(all_right["fix_rate"]) and all_right["acc_t1"] == 1.0
  with pytest.raises(ValueError, match="first attempt of problem .* is empty"):
    correction_protocols.fixed_first(recipe, params, probs, [[]] + first_ids[1:], first_ok)


def test_fixed_first_sweep_scores_every_model_on_the_bases_attempts(swept, compiled_once):
  cfg = shrink(score_config.get_config("tiny"))
  own = json.loads((swept / "results.json").read_text())
  out = correction_sweep.fixed_first(cfg, swept, seeds=[0], log=lambda s: None)
  res = out["results"]
  assert set(res) == set(correction_sweep.METHODS) - {"self_refine"}   # another protocol, left out
  assert res["base"][0]["acc_t2"] == pytest.approx(own["base"][0]["acc_t2"])
  for rows in res.values():                                   # every model gets the base's attempts
    assert rows[0]["acc_t1"] == pytest.approx(own["base"][0]["acc_t1"])
  assert "fix rate" in (swept / "fixed_first.md").read_text()
  assert set(json.loads((swept / "fixed_first.json").read_text())) == set(res)


def test_fixed_first_names_every_unfinished_run_before_evaluating(tmp_path):
  cfg = shrink(score_config.get_config("tiny"))
  with pytest.raises(FileNotFoundError, match=r"seed0/base .*\n.*seed0/star "):
    correction_sweep.fixed_first(cfg, tmp_path, seeds=[0], methods=["base", "star"], log=lambda s: None)
  assert not any(tmp_path.iterdir())
  cfg.warmup.steps = 0         # no warm-up: the base is the seeded init, nothing of it to find
  with pytest.raises(FileNotFoundError) as err:
    correction_sweep.fixed_first(cfg, tmp_path, seeds=[0], methods=["base", "star"], log=lambda s: None)
  assert "seed0/star " in str(err.value) and "seed0/base " not in str(err.value)
