"""ReVISE: the stage pairs by hand, the sampler's stop after the n-th [refine] against unconstrained
decoding, the verifier's p([eos]) against a cache-free forward, attempts that re-encode to the
model's ids, a refine token the tokenizer already has, bad configs before compute, and the tiny
run (warm-up, Stage 1, Stage 2) resuming exactly."""
import json
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_resumed_like_uninterrupted, set_fields

from configs import revise as revise_config
from critjax.config import from_configdict
from critjax.models import decoder
from critjax.models.config import ModelConfig
from critjax.rl import pairs
from critjax.rl.recipes.revise import stage_pair
from critjax.sampling.sampler import Sampler
from critjax.sampling.token_choice import SamplingConfig
from critjax.train.loop import build, train
from critjax.train.metrics import read_metrics
from experiments.config_loading import load_config

R = "[refine]"


def tiny(**over):
  c = revise_config.get_config("tiny")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.warmup.update(steps=60, batch_size=16)
  c.rollout.update(prompts_per_step=4, group_size=4)
  c.tokenizer.corpus_size = 2000
  c.recipe_args.update(dict(pool=4, samples=3, verify_steps=2, correct_steps=2, pairs_per_step=2, vote_samples=2))
  c.train.update(eval_every=2, eval_prompts=8, checkpoint_every=1)
  return from_configdict(set_fields(c, over))


def test_stage_pairs_follow_the_released_make_dataset():
  assert stage_pair(1, "Q", " y", True, " g", R) == (" y", " y" + R)
  assert stage_pair(1, "Q", " y", False, " g", R) == (" y" + R, " y")
  assert stage_pair(2, "Q", " y", True, " g", R) == (" y", " y" + R)
  assert stage_pair(2, "Q", " y", False, " g", R) == (" y" + R + " g", " y")


def _model():
  cfg = ModelConfig(vocab_size=16, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  return cfg, decoder.init_params(cfg, jax.random.PRNGKey(3))[0]


def test_stop_after_ends_a_row_at_its_nth_watched_token():
  cfg, params = _model()
  prompt = np.array([[2, 5, 7], [3, 3, 9]], np.int32)
  lens = np.array([3, 3], np.int32)
  free = Sampler(cfg, SamplingConfig(max_new_tokens=24, temperature=0.0, eos_id=15, pad_id=0), 32)
  ro = free.generate(params, prompt, lens, jax.random.PRNGKey(0))
  gen = [np.asarray(ro.tokens)[i, 3:int(ro.length[i])].tolist() for i in range(2)]
  watched = gen[0][1]                                       # a token the greedy row writes
  for n in (1, 2):
    s = Sampler(cfg, SamplingConfig(max_new_tokens=24, temperature=0.0, eos_id=15, pad_id=0,
                                    stop_after=((watched, n),)), 32)
    got = s.generate(params, prompt, lens, jax.random.PRNGKey(0))
    for i in range(2):
      hits = [j for j, t in enumerate(gen[i]) if t == watched]
      want = gen[i][:hits[n - 1] + 1] if len(hits) >= n else gen[i]
      assert np.asarray(got.tokens)[i, 3:int(got.length[i])].tolist() == want, (n, i)
      assert bool(got.truncated[i]) == (len(hits) < n and bool(ro.truncated[i]))
  with pytest.raises(ValueError, match="stop_after"):
    SamplingConfig(stop_after=((3, 0),))


def test_verifier_probabilities_equal_a_cache_free_forward(tmp_path):
  parts = build(tiny(), tmp_path)
  recipe, cfg = parts["recipe"], parts["roles"]["policy"].model
  params = decoder.init_params(cfg, jax.random.PRNGKey(1))[0]
  ctx = [[5, 6, 7, 8], [9, 10, recipe.refine_id, 11, 12, 13]]
  p_eos, p_ref = recipe.eos_probs({"policy": params}, ctx)
  for i, c in enumerate(ctx):
    logits, _ = decoder.forward(params, jnp.asarray([c], jnp.int32), cfg)
    z = np.asarray(logits[0, -1], np.float64)
    lp = z - z.max() - np.log(np.exp(z - z.max()).sum())
    np.testing.assert_allclose([p_eos[i], p_ref[i]], np.exp(lp[[recipe.tokenizer.eos_id, recipe.refine_id]]),
                               rtol=1e-4)


def test_attempts_split_at_refine_and_reencode_to_the_models_ids(tmp_path):
  recipe = build(tiny(), tmp_path)["recipe"]
  tok, r = recipe.tokenizer, recipe.refine_id
  prompt = "Q: 560+342 ="
  p_ids = tok.encode(prompt)
  y1 = tok.encode(prompt + " 0+2=2 c0 ; A: 902")[len(p_ids):]
  y2 = tok.encode(prompt + " 0+2=2 c0 ; A: 912")[len(p_ids):]
  gen = y1 + [r] + y2 + [tok.eos_id]
  row = p_ids + gen
  s = 64
  tokens = np.zeros((1, s), np.int32)
  tokens[0, :len(row)] = row
  segment = np.full((1, s), -1, np.int32)
  segment[0, len(p_ids):len(row)] = 0
  ep = SimpleNamespace(rollout=SimpleNamespace(tokens=tokens, segment=segment, length=np.array([len(row)])))
  texts, ids = recipe.attempts(ep)
  assert ids == [[y1, y2]]
  assert [tok.encode(prompt + t)[len(p_ids):] for t in texts[0]] == [y1, y2]
  assert texts[0][1].strip().endswith("912")


def test_pairs_drop_identical_refuse_long_and_empty_stages(tmp_path):
  tok = build(tiny(), tmp_path)["recipe"].tokenizer
  recs = [{"id": "a", "prompt": "Q: 1+2 =", "chosen": " 3", "rejected": " 3"},
          {"id": "b", "prompt": "Q: 1+2 =", "chosen": " 3", "rejected": " 3" + R}]
  kept, dropped = pairs.finalize("stage x", recs, tok, 64, "why")
  assert kept == recs[1:] and dropped == 1
  with pytest.raises(ValueError, match=r"stage x: pair 0 \(id 'b'\) has a rejected sequence of \d+ tokens"):
    pairs.finalize("stage x", recs[1:], tok, len(tok.encode("Q: 1+2 = 3")) + 1, "why")
  with pytest.raises(ValueError, match="stage x: no preference pair .* 1 identical dropped.*: because"):
    pairs.finalize("stage x", recs[:1], tok, 64, "because")


@pytest.mark.parametrize("over, match", [
    ({"recipe_args.refine_token": "[fix]"}, r"refine_token='\[fix\]' is not in the tokenizer"),
    ({"tokenizer.add_tokens": ("[refine]", "</s>")}, "already has .</s>."),
    ({"train.steps": 5}, "set train.steps=0"),
    ({"recipe_args.verify_steps": 0, "recipe_args.correct_steps": 0}, "nothing to train"),
    ({"recipe_args.max_attempts": 0}, "max_attempts"),
    ({"recipe_args.cap": 3}, "unknown field.*recipe_args.cap"),
    ({"model.vocab_size": 16}, "model.vocab_size=16"),
])
def test_bad_configs_stop_before_any_compute(tmp_path, over, match):
  with pytest.raises(ValueError, match=match):
    build(tiny(**over), tmp_path)
  assert not (tmp_path / "config.json").exists()


def test_warmup_verify_correct_resume_exactly(tmp_path, compiled_once):
  cfg = tiny()
  train(cfg, tmp_path / "a")
  tok_r = R
  s1 = [json.loads(x) for x in (tmp_path / "a" / "data" / "revise1.jsonl").read_text().splitlines()]
  s2 = [json.loads(x) for x in (tmp_path / "a" / "data" / "revise2.jsonl").read_text().splitlines()]
  for rows, stage in ((s1, 1), (s2, 2)):
    assert rows
    for r in rows:
      y = r["rejected"] if r["right"] else r["chosen"].split(tok_r)[0]
      assert (r["chosen"], r["rejected"]) == (y, y + tok_r) if r["right"] else r["rejected"] == y
      if not r["right"] and stage == 1:
        assert r["chosen"] == y + tok_r
  logged = read_metrics(tmp_path / "a")
  steps = [r for r in logged if "margin" in r]
  assert len(steps) == 4 and all({"dpo", "nll_chosen", "pairs"} <= set(r) for r in steps)
  ev = [r for r in logged if "eval/verify_auc" in r]
  assert ev and {"eval/conf_2", "eval/maj_2", "eval/accuracy_t1", "eval/refine_rate"} <= set(ev[-1])
  train(cfg, tmp_path / "b", stop_after=1)
  train(cfg, tmp_path / "b")
  assert_resumed_like_uninterrupted(tmp_path / "a", tmp_path / "b", after=1)


@pytest.mark.parametrize("variant", revise_config.VARIANTS)
def test_config_variants_validate(variant):
  cfg = from_configdict(load_config(f"configs/revise.py:{variant}"))
  assert cfg.recipe == "revise" and cfg.rl.loss.dpo_beta == 0.1 and cfg.rl.loss.rpo_alpha == 0.1
  assert cfg.train.steps == 0 and cfg.rollout.temperature == 0.7 and cfg.rollout.top_p == 0.9
  if variant == "tiny":
    assert cfg.tokenizer.add_tokens == ("[refine]",)
  else:
    assert cfg.tokenizer.add_tokens == () and cfg.recipe_args["refine_token"] == "<|reserved_special_token_0|>"
    assert cfg.model.vocab_size == 128_256 and cfg.model.d_model == 2048 and cfg.task.name == "gsm8k"
