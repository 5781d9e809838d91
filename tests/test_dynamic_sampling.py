"""DAPO dynamic sampling with refills (arXiv 2503.14476, Sec. 3.2): groups whose G answers are all
right or all wrong are dropped and replaced by groups on new prompts, up to rl.max_gen_batches
generation batches a step. Rewards are scripted; the expected batches are worked out by hand."""
import dataclasses

import jax
import numpy as np
import pytest

from configs import dapo
from critjax.config import RLConfig, from_configdict
from critjax.rl import episodes
from critjax.train import loop

B, G = 4, 2
# per generation batch, the (B, G) rewards: groups 'mixed' (kept) or all-0 / all-1 (dropped)
ROUND1 = [[0, 0], [0, 1], [1, 1], [0, 0]]          # keeps group 1
ROUND2 = [[1, 0], [1, 1], [0, 1], [0, 0]]          # keeps groups 0 and 2
ROUND3 = [[1, 0], [0, 1], [0, 0], [1, 0]]          # keeps 0, 1, 3


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
  c = dapo.get_config("tiny")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.rollout.update(prompts_per_step=B, group_size=G, max_new_tokens=6)
  c.rl.overlong_filter = False
  c.rl.soft_overlong_cache = 0
  c.tokenizer.corpus_size = 2000
  cfg = from_configdict(c)
  p = loop.build(cfg, tmp_path_factory.mktemp("w"))
  params = {"policy": loop.init_model(cfg, p["mesh"])[0]}
  return cfg, p["recipe"], params


def run(recipe, params, monkeypatch, rounds, max_gen_batches):
  rewards = iter(np.asarray(r, np.float32).reshape(-1) for r in rounds)
  monkeypatch.setattr(recipe.task, "score", lambda problems, texts: next(rewards))
  rl = dataclasses.replace(recipe.cfg.rl, max_gen_batches=max_gen_batches)
  monkeypatch.setattr(recipe, "cfg", dataclasses.replace(recipe.cfg, rl=rl))
  made = []
  original = episodes.policy_batch
  monkeypatch.setattr(episodes, "policy_batch", lambda ro, adv, **kw: made.append(original(ro, adv, **kw)) or made[-1])
  stream = loop.ProblemStream(recipe.task, 0, 100)
  out = recipe.collect(params, stream.take(B), jax.random.PRNGKey(0), refill=stream.take)
  return out, made, stream


def group(batch, j, key="tokens"):
  return batch[key][j * G:(j + 1) * G]


def same_group(out, slot, made, j):
  """Every array of the output's group `slot` equals group j of a generation batch (tokens,
  mask, advantages, old log-probs), up to the padding of the shorter one."""
  for k in made:
    a, b = group(out, slot, k), group(made, j, k)
    n = min(a.shape[1], b.shape[1])
    if not np.array_equal(a[:, :n], b[:, :n]):
      return False
    if k != "tokens" and (a[:, n:].any() or b[:, n:].any()):     # padding (tokens: pad ids)
      return False
  return True


def test_refills_until_the_batch_is_full(parts, monkeypatch):
  cfg, recipe, params = parts
  out, made, stream = run(recipe, params, monkeypatch, [ROUND1, ROUND2, ROUND3], max_gen_batches=10)
  # round 1 keeps 1 group, round 2 two more (3 < 4), round 3 fills the batch: 3 batches, 12 prompts
  assert out.metrics["gen_batches"] == 3 and stream.taken == 3 * B and len(made) == 3
  b = out.batch
  want = [(0, 1), (1, 0), (1, 2), (2, 0)]            # (generation batch, group), in generation order
  for slot, (i, j) in enumerate(want):
    assert same_group(b, slot, made[i], j), (slot, i, j)
    assert group(b, slot, "mask").any(1).all()      # every row of a kept group is trained
  assert out.metrics["kept_frac"] == 1.0
  np.testing.assert_allclose(out.metrics["accuracy"], np.mean(ROUND1 + ROUND2 + ROUND3))


def test_a_batch_still_short_is_masked(parts, monkeypatch):
  cfg, recipe, params = parts
  out, made, stream = run(recipe, params, monkeypatch, [ROUND1, ROUND2], max_gen_batches=2)
  assert out.metrics["gen_batches"] == 2 and stream.taken == 2 * B
  # kept: (0,1), (1,0), (1,2); then the first dropped group, (0,0), masked; in generation order
  for slot, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 2)]):
    assert same_group(out.batch, slot, made[i], j)
  assert out.metrics["kept_frac"] == 0.75 and not group(out.batch, 0, "mask").any()


def test_no_refill_keeps_the_batch_as_generated(parts, monkeypatch):
  cfg, recipe, params = parts
  out, made, stream = run(recipe, params, monkeypatch, [ROUND1], max_gen_batches=1)
  assert stream.taken == B and len(made) == 1
  for k in made[0]:
    np.testing.assert_array_equal(out.batch[k], made[0][k])
  np.testing.assert_array_equal(out.batch["mask"].reshape(B, -1).any(1), [False, True, False, False])


def test_max_gen_batches_is_checked():
  with pytest.raises(ValueError, match="rl.max_gen_batches must be >= 1, got 0"):
    RLConfig(max_gen_batches=0)


def test_fractional_rewards_keep_every_group_whose_rewards_differ(parts, monkeypatch):
  # task.code_reward="fraction": a group whose answers all pass some tests but not equally many has
  # a nonzero advantage and is kept; one whose rewards are all equal (all 1/2) is dropped.
  cfg, recipe, params = parts
  frac = [[0.5, 1.0], [0.5, 0.5], [1.0, 1.0], [0.0, 1 / 3]]
  out, made, stream = run(recipe, params, monkeypatch, [frac], max_gen_batches=1)
  np.testing.assert_array_equal(out.batch["mask"].reshape(B, -1).any(1), [True, False, False, True])
  assert out.metrics["accuracy"] == 3 / 8            # right = reward 1: 3 of the 8 answers
