"""The two-role engine end to end on shrunk Critique-RL configs: two trained roles resume exactly
across the Stage I -> II boundary (and Stage II resets the critic's reference); roles start from an
earlier run's checkpoint (the table script); self-critique is a config; bad role configs stop before
any compute, naming the field."""
import jax
import ml_collections
import numpy as np
import pytest
from conftest import assert_resumed_like_uninterrupted, role_checkpoints, set_fields, strip_timing

from configs import critique_rl
from critjax.config import from_configdict
from critjax.rl import episodes
from critjax.rl.recipes.base import RECIPES, Collected
from critjax.rl.recipes.critique_rl import ATTEMPT, CritiqueRL
from critjax.train import loop
from critjax.train.metrics import read_metrics

SMALL = dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)


@RECIPES.register("critique_rl_both_roles_test")
class BothRoles(CritiqueRL):
  """Critique-RL that also trains the actor (REINFORCE on its attempt's correctness, centred): a
  test recipe whose RL step updates two roles in the one jitted update."""
  roles = {"actor": "trained", "critic": "trained"}

  def trained_roles(self):
    return ["actor", "critic"]

  def references(self):
    return ["actor", "critic"]

  def collect(self, params, problems, rng, refill=None):
    out = super().collect(params, problems, rng, refill)
    k = self.cfg.rollout.group_size
    ro = self._last_episode.rollout
    correct = self.task.score(self._last_episode.problems, self._last_episode.texts(ATTEMPT))
    adv = np.zeros((len(correct), len(self._last_episode.turn_roles)), np.float32)
    adv[:, ATTEMPT] = correct - correct.mean()
    rows = np.zeros(len(correct), bool)
    rows[::k] = True                      # one row per attempt (the K forks repeat it)
    out.batches["actor"] = episodes.policy_batch(ro, adv, row_valid_n=rows, trained_turns=[ATTEMPT])
    return out

  def episode(self, *args, **kw):
    self._last_episode = super().episode(*args, **kw)
    return self._last_episode


def tiny(**over):
  return from_configdict(tiny_configdict(**over))


def tiny_configdict(**over):
  c = critique_rl.get_config("tiny")
  c.model.update(**SMALL)
  c.warmup.update(steps=3, batch_size=8)
  c.rollout.update(prompts_per_step=2, group_size=2, max_new_tokens=32)
  c.roles.critic.max_new_tokens = 40
  c.task.update(min_digits=1, max_digits=2)
  c.tokenizer.corpus_size = 2000
  c.train.update(steps=4, eval_every=2, eval_prompts=4, checkpoint_every=2)
  c.recipe_args.stage1_fraction = 0.5
  return set_fields(c, over)


strip = strip_timing


def test_two_trained_roles_resume_exactly_across_the_stage_boundary(tmp_path, compiled_once):
  cfg = tiny(recipe="critique_rl_both_roles_test", **{"train.checkpoint_every": 1, "train.keep_checkpoints": 10})
  a = loop.train(cfg, tmp_path / "a")
  loop.train(cfg, tmp_path / "b", stop_after=2)          # "killed" at the Stage I -> II boundary
  loop.train(cfg, tmp_path / "b")
  assert_resumed_like_uninterrupted(tmp_path / "a", tmp_path / "b", after=2)
  ra = [r for r in strip(read_metrics(tmp_path / "a")) if not any(k.startswith("warmup/") for k in r)]
  trained = [r for r in ra if "actor/loss" in r]
  assert trained and all("critic/loss" in r for r in trained)          # both roles updated every step
  assert [r["stage"] for r in ra if "stage" in r] == [1, 1, 2, 2]
  assert set(a.roles) == {"actor", "critic"}
  evals = [r for r in ra if "eval/verdict_acc" in r]
  assert [r["step"] for r in evals] == [0, 2, 4]
  for key in ("verdict_acc", "f1_wrong", "processbench_f1", "helpfulness", "acc_after", "delta",
              "delta_i2c", "delta_c2i"):
    assert f"eval/{key}" in evals[-1]
  # Stage II's KL reference is the Stage-I critic: the saved reference equals the SFT critic (the
  # warm-up end) during Stage I and the critic at the Stage I -> II boundary afterwards.
  w = cfg.warmup.steps
  load, same = role_checkpoints(tmp_path / "a", cfg.role_configs()["critic"].model)
  sft, boundary = load("critic", w), load("critic", w + 2)
  assert same(load("critic_reference", w + 1), sft) and not same(sft, boundary)
  assert same(load("critic_reference", w + 4), boundary)


def test_self_critique_is_a_config(tmp_path, compiled_once):
  c = critique_rl.get_config("tiny_self")
  c.model.update(**SMALL)
  c.warmup.update(steps=2, batch_size=8)
  c.task.update(min_digits=1, max_digits=2)
  c.rollout.update(prompts_per_step=2, group_size=2, max_new_tokens=32)
  c.roles.critic.max_new_tokens = 40
  c.tokenizer.corpus_size = 2000
  c.train.update(steps=2, eval_every=2, eval_prompts=4, checkpoint_every=2)
  result = loop.train(from_configdict(c), tmp_path)
  assert set(result.roles) == {"actor"}                  # one model writes every turn
  rows = [r for r in read_metrics(tmp_path) if "actor/loss" in r]
  assert len(rows) == 2 and "eval/verdict_acc" in read_metrics(tmp_path)[-1]


def test_missing_verdict_scores_minus_one_and_is_counted(tmp_path, monkeypatch):
  """Every critique without a verdict: reward -1 in both stages, counted, never a crash."""
  cfg = tiny()
  parts = loop.build(cfg, tmp_path)
  recipe = parts["recipe"]
  params = loop.init_roles(cfg, parts["mesh"])[0]
  from critjax.rl.verdicts import Verdict
  monkeypatch.setattr(recipe, "parse", lambda text: Verdict(final=None))
  for phase in recipe.phases():               # stage1, stage2
    recipe.set_phase(phase)
    out = recipe.collect(params, recipe.task.problems(0, 0, 2), jax.random.PRNGKey(0))
    assert isinstance(out, Collected) and set(out.batches) == {"critic"}
    assert out.metrics["reward_mean"] == -1.0, phase.name
    assert out.metrics["verdict_missing"] == 1.0 and out.metrics["verdict_acc"] == 0.0
    assert np.all(out.batches["critic"]["adv"] == 0.0)      # RLOO of equal rewards: no signal


@pytest.mark.parametrize("over, match", [
    ({"roles": ml_collections.ConfigDict(dict(policy=dict()))}, r"needs role 'actor'"),
    ({"roles.actor": ml_collections.ConfigDict(dict(trained=False, optim=dict(learning_rate=1e-3)))},
     r"config.roles.actor: optim is set but trained=False"),
    ({"roles.critic.share": "judge"}, r"config.roles.critic.share='judge'"),
    ({"roles.actor": ml_collections.ConfigDict(dict(init="copy", init_from="judge"))},
     r"config.roles.actor.init_from='judge'"),
    ({"roles.critic.model": ml_collections.ConfigDict(dict(critique_rl.common.tiny_model(), vocab_size=96))},
     r"'critic' \(96\) have different vocabularies"),
    ({"roles.critic.trained": False}, r"trains role 'critic', but config.roles.critic.trained is False"),
])
def test_bad_role_configs_stop_before_any_compute(tmp_path, over, match):
  with pytest.raises(ValueError, match=match):
    loop.train(tiny(**over), tmp_path)
  assert not (tmp_path / "config.json").exists() and not (tmp_path / "checkpoints").exists()


def test_a_hook_on_a_missing_role_is_named():
  from critjax.rl.phases import Phase, ResetReference, check_hooks
  roles = tiny().role_configs()
  with pytest.raises(ValueError, match=r"phase 'stage2': ResetReference names role 'judge'"):
    check_hooks([Phase("stage2", 1, on_start=(ResetReference("judge"),))], roles)


def test_minibatches_keep_a_group_together():
  """12 rows in groups of 3 split into 2 mini-batches: every group lands whole in one of them."""
  batch = {"tokens": np.arange(12)[:, None] * np.ones((1, 4), int), "mask": np.ones((12, 4))}
  mbs = loop._split_minibatches(batch, 2, np.random.default_rng(0), unit=3)
  groups = [sorted({int(t) // 3 for t in mb["tokens"][:, 0]}) for mb in mbs]
  assert [len(mb["tokens"]) for mb in mbs] == [6, 6] and sorted(sum(groups, [])) == [0, 1, 2, 3]
  for mb in mbs:
    rows = mb["tokens"][:, 0]
    for j in range(0, 6, 3):                 # consecutive, in order, within the mini-batch
      assert list(rows[j:j + 3]) == [rows[j], rows[j] + 1, rows[j] + 2] and rows[j] % 3 == 0
  with pytest.raises(ValueError, match="role 'critic'"):
    loop._split_minibatches(batch, 5, np.random.default_rng(0), unit=3, role="critic")


def test_critique_rl_table_runs_arms_from_one_warmup(tmp_path, compiled_once):
  """experiments/critique_rl_table.py at the smallest size: the warm-up row, and one arm whose roles
  start from the warm-up run's checkpoint (roles.*.init="checkpoint", a partial orbax restore of
  each role): its step-0 evaluation equals the warm-up's, metric for metric."""
  from experiments import critique_rl_table
  # tiny()'s shapes, so the programs the resume test compiled are reused (compiled_once)
  c = tiny_configdict(**{"warmup.steps": 2, "train.steps": 2})
  out = critique_rl_table.run(c, tmp_path, seeds=[0], arms=["two_stage"], log=lambda s: None)
  assert set(out["results"]) == {"warmup", "two_stage"} and (tmp_path / "table.md").exists()
  first = [r for r in read_metrics(tmp_path / "seed0" / "two_stage") if r["step"] == 0 and "eval/verdict_acc" in r][0]
  warm = out["results"]["warmup"][0]
  for k, v in warm.items():
    if k != "seed":
      np.testing.assert_equal(first[f"eval/{k}"], v, err_msg=k)
