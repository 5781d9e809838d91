"""The trainer end to end on a tiny config: resume equals an uninterrupted run; bad input stops
early with a clear message and loses no checkpoint."""
import json

import jax
import ml_collections
import numpy as np
import pytest
from conftest import set_fields, strip_timing

from configs import grpo, score
from critjax.config import from_configdict
from critjax.data.tasks import TASKS, Arithmetic
from critjax.train.loop import StepFailed, train
from critjax.train.metrics import read_metrics



def tiny(steps=4, recipe="grpo", **over):
  c = (grpo if recipe == "grpo" else score).get_config("tiny")
  if recipe not in ("grpo", "score"):            # a SCoRe baseline (star, pair_sft)
    c.recipe, c.recipe_args = recipe, ml_collections.ConfigDict(dict(template="toy", attempts=2, data="online"))
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.warmup.steps = 3
  c.warmup.batch_size = 8
  c.rollout.update(prompts_per_step=4, group_size=4, max_new_tokens=28)
  c.task.update(min_digits=1, max_digits=2)
  c.tokenizer.corpus_size = 2000
  c.train.update(steps=steps, eval_every=2, eval_prompts=8, checkpoint_every=2)
  return from_configdict(set_fields(c, over))


strip = strip_timing


@pytest.mark.parametrize("recipe", ["grpo", "score", "dapo_refill"])
def test_resume_equals_uninterrupted_run(tmp_path, recipe, compiled_once):
  """SCoRe's run crosses the Stage I -> Stage II boundary at the interruption point; DAPO's refills
  take extra prompts, which a resumed run must skip exactly as the uninterrupted one did."""
  over = {"score": {"recipe_args.stage1_steps": 2},
          "dapo_refill": {"rl.dynamic_sampling": True, "rl.max_gen_batches": 3}}.get(recipe, {})
  cfg = tiny(steps=4, recipe="score" if recipe == "score" else "grpo", **over)
  train(cfg, tmp_path / "a")
  train(cfg, tmp_path / "b", stop_after=2)           # "killed" after 2 steps (checkpoint at 2)
  assert max(r["step"] for r in read_metrics(tmp_path / "b")) == 2
  train(cfg, tmp_path / "b")                          # same command again: resumes at step 2
  a, b = strip(read_metrics(tmp_path / "a")), strip(read_metrics(tmp_path / "b"))
  rl = lambda rows: [r for r in rows if r["step"] > 2 and not any(k.startswith("warmup/") for k in r)]
  assert len(rl(a)) == len(rl(b)) >= 2
  for ra, rb in zip(rl(a), rl(b)):
    assert ra.keys() == rb.keys()
    for k in ra:
      np.testing.assert_allclose(ra[k], rb[k], rtol=1e-6, err_msg=f"step {ra['step']} {k}")
  if recipe == "score":
    assert [r["stage"] for r in rl(b) if "stage" in r] == [2, 2]
  if recipe == "dapo_refill":     # refills happened (the tiny model's groups are mostly all-wrong)
    assert max(r.get("gen_batches", 0) for r in rl(b)) > 1
  for name in ("config.json", "tokenizer.model", "metrics.jsonl"):
    assert (tmp_path / "a" / name).exists()
  assert list((tmp_path / "a" / "tensorboard").glob("events.out.tfevents.*"))


def test_workdir_of_another_experiment_is_refused(tmp_path, compiled_once):
  train(tiny(steps=2), tmp_path)
  before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
  with pytest.raises(ValueError, match="config.rl.loss.clip_high"):
    train(tiny(steps=2, **{"rl.loss.clip_high": 0.28}), tmp_path)
  assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before


def test_unknown_config_field_is_named():
  c = grpo.get_config("tiny")
  c.rl.loss["clip_hgih"] = 0.3
  with pytest.raises(ValueError, match="config.rl.loss.clip_hgih"):
    from_configdict(c)


def test_tokenizer_larger_than_model_vocab_stops_before_training(tmp_path):
  with pytest.raises(ValueError, match="model.vocab_size=16"):
    train(tiny(**{"model.vocab_size": 16}), tmp_path)
  assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())
  assert not (tmp_path / "config.json").exists()   # the corrected rerun is not blocked


def test_raising_reward_skips_updates_counts_them_and_keeps_checkpoints(tmp_path, monkeypatch, compiled_once):
  cfg = tiny(steps=2)
  train(cfg, tmp_path)
  calls = {"n": 0}

  def broken(self, problems, completions):
    calls["n"] += 1
    raise RuntimeError("verifier crashed")

  monkeypatch.setattr(Arithmetic, "score", broken)
  more = tiny(steps=20, **{"train.max_skipped_steps": 2})
  with pytest.raises(StepFailed, match="consecutive steps skipped"):
    train(more, tmp_path)
  rows = [r for r in read_metrics(tmp_path) if r.get("reward_errors") == 1.0]
  assert len(rows) == 3 and all(r["skipped"] == 1.0 for r in rows)
  assert (tmp_path / "checkpoints" / str(3 + 2)).exists()    # warm-up (3 steps) + 2 RL steps


@pytest.mark.parametrize("data", ["online", "base"])
def test_sft_baselines_sample_from_the_policy_or_the_frozen_base(tmp_path, monkeypatch, data, compiled_once):
  """recipe_args.data='base' (the paper's offline STaR / Pair-SFT): every step's episodes come from the
  starting model while the policy moves; 'online' samples the moving policy."""
  from critjax.rl.recipes.base import Collected
  from critjax.rl.recipes.correction_baselines import STaR
  seen, collect = [], STaR.collect

  def spy(self, params, problems, rng, refill=None):
    seen.append(jax.tree.map(np.array, params[self.source]))    # the role the episodes come from
    out = collect(self, params, problems, rng)
    # Loss on every token, so that the policy surely moves even when no episode was kept.
    return Collected(batches={"policy": {"tokens": out.batch["tokens"], "mask": np.ones_like(out.batch["mask"])}},
                     metrics=out.metrics)

  monkeypatch.setattr(STaR, "collect", spy)
  result = train(tiny(steps=3, recipe="star", **{"recipe_args.data": data}), tmp_path)
  assert len(seen) == 3
  moved = lambda a, b: any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  assert moved(seen[0], jax.tree.map(np.array, result.params))         # the policy was trained
  assert moved(seen[0], seen[2]) == (data == "online")


def test_sft_baseline_data_source_is_checked(tmp_path):
  with pytest.raises(ValueError, match="config.recipe_args.data"):
    train(tiny(steps=1, recipe="pair_sft", **{"recipe_args.data": "replay"}), tmp_path)
  assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("attempts", [0, 1.5])
def test_sft_baseline_attempts_are_checked(attempts):
  from critjax.rl.recipes.correction_baselines import BaselineArgs
  with pytest.raises(ValueError, match=r"config.recipe_args.num_attempts \(K\) must be an integer >= 1"):
    BaselineArgs(attempts=attempts)


def test_workdir_of_an_older_version_resumes_where_new_fields_keep_their_defaults(tmp_path, compiled_once):
  """A workdir written before a config field existed (here rl.max_gen_batches) is the same experiment
  when this run leaves the field at its default, and another one when it does not."""
  from critjax.train.checkpoint import check_workdir
  cfg = tiny()
  saved = json.loads(cfg.to_json())
  del saved["rl"]["max_gen_batches"]
  (tmp_path / "config.json").write_text(json.dumps(saved))
  assert check_workdir(tmp_path, cfg.to_json(), write=False)
  with pytest.raises(ValueError, match=r"config.rl.max_gen_batches: 1 \(workdir\) != 3 \(this run\)"):
    check_workdir(tmp_path, tiny(**{"rl.max_gen_batches": 3}).to_json(), write=False)
