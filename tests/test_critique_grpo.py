"""Critique-GRPO (arXiv 2506.03106): the loss against a hand computation and an independent float64
NumPy reference (value and gradient), micro-batches == the full batch, refinement selection and
re-attachment to the original prompt, a too-long refinement cut and flagged, the configs (the
paper's Qwen3-8B hyper-parameters), and a tiny run that trains, logs the method's metrics and
resumes exactly."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_resumed_like_uninterrupted, set_fields, strip_timing

from configs import critique_grpo
from critjax.config import from_configdict
from critjax.models import decoder as dec
from critjax.rl.losses import LossConfig, critique_grpo_loss, policy_loss
from critjax.rl.recipes.critique_grpo import group_rows, select_refinements
from critjax.sampling.sampler import completions
from critjax.train import loop
from critjax.train.metrics import read_metrics
from critjax.train.update import RoleSpec, accumulate_grads

GAMMA = 0.1
LN = math.log


# --------------------------------------------------------------------------------------------------
# Independent float64 reference (ALGORITHMS.md §3): explicit loops over sequences and tokens.

def np_loss(logp, old, adv, mask, shaped, norm_len, ent_coef=0.0, ent=None):
  """(1/N_seq) sum_i sum_t l_{i,t} / L_max; l = -A rho (initial) or -A p/(p+gamma) (refinement) - c H."""
  terms = []
  for i in range(len(mask)):
    idx = [t for t in range(len(mask[i])) if mask[i][t]]
    if not idx:
      continue
    total = 0.0
    for t in idx:
      if shaped[i][t]:
        p = math.exp(logp[i][t])
        total += -adv[i][t] * p / (p + GAMMA)
      else:
        total += -adv[i][t] * math.exp(min(max(logp[i][t] - old[i][t], -20.0), 20.0))
      if ent_coef:
        total -= ent_coef * ent[i][t]
    terms.append(total / norm_len)
  return sum(terms) / len(terms)


def np_grad(logp, old, adv, mask, shaped, norm_len):
  """d loss / d logp, analytically: -A rho (initial), -A gamma p / (p + gamma)^2 (refinement)."""
  n_seq = sum(1 for row in mask if any(row))
  g = np.zeros(np.shape(logp))
  for i, t in zip(*np.nonzero(mask)):
    if shaped[i][t]:
      p = math.exp(logp[i][t])
      g[i, t] = -adv[i][t] * GAMMA * p / (p + GAMMA) ** 2
    else:
      g[i, t] = -adv[i][t] * math.exp(logp[i][t] - old[i][t])
  return g / (n_seq * norm_len)


def jloss(logp, old, adv, mask, shaped, cfg, ent=None):
  f = lambda lp: critique_grpo_loss(lp, jnp.asarray(old, jnp.float32), jnp.asarray(adv, jnp.float32),
                                    jnp.asarray(mask), jnp.asarray(shaped), cfg,
                                    entropy_bt=None if ent is None else jnp.asarray(ent, jnp.float32))
  value = lambda lp: (lambda s, d, _: s / d)(*f(lp))
  lp = jnp.asarray(logp, jnp.float32)
  return float(value(lp)), np.asarray(jax.grad(value)(lp)), f(lp)[2]


def random_case(seed=0, b=5, t=7):
  rng = np.random.default_rng(seed)
  mask = rng.random((b, t)) < 0.75
  mask[-1] = False                                     # an all-pad row does not count
  shaped = np.zeros((b, t), bool)
  shaped[:2] = True                                    # two refinement rows
  logp = -rng.random((b, t)) * 3
  old = logp + rng.normal(scale=0.3, size=(b, t))
  adv = np.repeat(rng.normal(size=(b, 1)), t, 1)
  return logp, old, adv, mask, shaped, rng.random((b, t))


def test_loss_matches_a_hand_computation():
  # Row 0, initial (A = +1): ratios 1.5 and 0.5, unclipped -> -1.5 - 0.5 = -2.0.
  # Row 1, refinement (A = -1): p = 0.1, 0.9 -> f = 0.5, 0.9 -> +1.4. L_max = 4, two rows:
  # ((-2.0) / 4 + 1.4 / 4) / 2 = -0.075.
  logp = np.array([[LN(1.5), LN(0.5)], [LN(0.1), LN(0.9)]])
  old = np.zeros((2, 2))
  adv = np.array([[1.0, 1.0], [-1.0, -1.0]])
  mask, shaped = np.ones((2, 2), bool), np.array([[0, 0], [1, 1]], bool)
  cfg = LossConfig(aggregation="seq_mean_token_sum_norm", norm_len=4)
  value, _, metrics = jloss(logp, old, adv, mask, shaped, cfg)
  assert value == pytest.approx(-0.075, abs=1e-6)
  s, d = metrics["refine_prob"]
  assert float(s / d) == pytest.approx(0.5, abs=1e-6)
  s, d = metrics["ratio_mean"]                         # initial tokens only
  assert float(s / d) == pytest.approx(1.0, abs=1e-6)


def test_loss_and_gradient_match_the_float64_reference():
  logp, old, adv, mask, shaped, ent = random_case()
  cfg = LossConfig(aggregation="seq_mean_token_sum_norm", norm_len=7, entropy_coef=0.001)
  value, grad, _ = jloss(logp, old, adv, mask, shaped, cfg, ent=ent)
  assert value == pytest.approx(np_loss(logp, old, adv, mask, shaped, 7, 0.001, ent), rel=1e-5, abs=1e-7)
  want = np_grad(logp, old, adv, mask, shaped, 7)
  np.testing.assert_allclose(grad, want, rtol=1e-4, atol=1e-8)
  # The analytic gradient is itself checked by central differences of the float64 reference.
  h, fd = 1e-6, np.zeros_like(logp)
  for i, t in zip(*np.nonzero(mask)):
    up, down = logp.copy(), logp.copy()
    up[i, t] += h
    down[i, t] -= h
    fd[i, t] = (np_loss(up, old, adv, mask, shaped, 7) - np_loss(down, old, adv, mask, shaped, 7)) / (2 * h)
  np.testing.assert_allclose(fd, want, rtol=1e-6, atol=1e-10)


def test_without_refinements_it_is_the_unclipped_policy_loss():
  """No shaped tokens and every ratio inside the clip range: the PPO surrogate's clip is inactive, so
  the two losses agree (the grpo arm is GRPO's loss without clipping)."""
  logp, old, adv, mask, _, ent = random_case(1)
  old = logp + np.random.default_rng(1).uniform(-0.1, 0.1, logp.shape)    # ratios in (0.9, 1.11)
  cfg = LossConfig(aggregation="seq_mean_token_sum_norm", norm_len=7, entropy_coef=0.001)
  value, _, _ = jloss(logp, old, adv, mask, np.zeros_like(mask), cfg, ent=ent)
  s, d, _ = policy_loss(*(jnp.asarray(x, jnp.float32) for x in (logp, old, adv)), jnp.asarray(mask), cfg,
                        entropy_bt=jnp.asarray(ent, jnp.float32))
  assert value == pytest.approx(float(s / d), rel=1e-6)


def test_kl_is_refused():
  logp, old, adv, mask, shaped, _ = random_case()
  with pytest.raises(ValueError, match="no KL term"):
    jloss(logp, old, adv, mask, shaped, LossConfig(kl_coef=0.04))


def test_micro_batches_give_the_full_batch_gradient(tiny_cfg):
  params, _ = dec.init_params(tiny_cfg, jax.random.key(0))
  rng = np.random.default_rng(0)
  n, t = 8, 10
  mask = (np.arange(t)[None] < rng.integers(4, t, n)[:, None]).astype(np.float32)
  mask[:, :2] = 0
  shaped = np.zeros((n, t), np.float32)
  shaped[::4] = 1.0                                   # slot 0 of each group of 4
  b = {"tokens": jnp.asarray(rng.integers(0, 64, (n, t)), jnp.int32), "mask": jnp.asarray(mask),
       "adv": jnp.asarray(np.repeat(rng.normal(size=(n, 1)), t, 1), jnp.float32),
       "old_logp": jnp.asarray(-4.0 + 0.2 * rng.normal(size=(n, t)), jnp.float32), "shaped": jnp.asarray(shaped)}
  loss = LossConfig(aggregation="seq_mean_token_sum_norm", norm_len=10, entropy_coef=0.001)
  spec = lambda m: RoleSpec(tiny_cfg, None, kind="critique_grpo", loss=loss, micro_batches=m)
  full = jax.jit(lambda p: accumulate_grads(p, b, spec(1)))(params)
  acc = jax.jit(lambda p: accumulate_grads(p, b, spec(4)))(params)
  np.testing.assert_allclose(acc[1], full[1], rtol=1e-5)
  jax.tree.map(lambda a, f: np.testing.assert_allclose(a, f, rtol=1e-4, atol=1e-7), acc[0], full[0])


# --------------------------------------------------------------------------------------------------
# Selection and rows

def test_selection_keeps_correct_refinements_first_else_the_first():
  correct = np.array([[0, 0, 1, 1], [0, 0, 0, 0], [1, 0, 0, 1]], bool)
  np.testing.assert_array_equal(select_refinements(correct, 1), [[2], [0], [0]])
  np.testing.assert_array_equal(select_refinements(correct, 2), [[2, 3], [0, 1], [0, 3]])


def test_rows_attach_to_the_prompt_and_a_too_long_refinement_is_cut_and_flagged():
  prompts = [[5, 6], [5, 6, 7]]
  gens = [np.array([1, 2, 3]), np.arange(10, 20)]     # row 1: 3 + 10 tokens > width 8
  logps = [np.array([-0.1, -0.2, -0.3]), -np.arange(10, 20) / 10]
  batch, cut = group_rows(prompts, gens, logps, np.array([0.5, -0.25]), np.array([False, True]), 8, pad_id=0)
  np.testing.assert_array_equal(cut, [False, True])
  assert batch["tokens"].shape == (2, 8)
  np.testing.assert_array_equal(batch["tokens"][0], [5, 6, 1, 2, 3, 0, 0, 0])
  np.testing.assert_array_equal(batch["tokens"][1], [5, 6, 7, 10, 11, 12, 13, 14])
  np.testing.assert_array_equal(batch["mask"], [[0, 0, 1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1, 1]])
  np.testing.assert_array_equal(batch["shaped"], [[0] * 8, [0, 0, 0, 1, 1, 1, 1, 1]])
  np.testing.assert_allclose(batch["old_logp"][1, 3:], [-1.0, -1.1, -1.2, -1.3, -1.4], rtol=1e-6)
  np.testing.assert_allclose(batch["adv"][0], [0, 0, 0.5, 0.5, 0.5, 0, 0, 0])


# --------------------------------------------------------------------------------------------------
# Configs

@pytest.mark.parametrize("variant", ["tiny", "tiny_self", "qwen3-8b", "qwen3-8b_self"])
def test_configs_build_and_validate(variant):
  from experiments.config_loading import load_config
  cfg = from_configdict(load_config(f"configs/critique_grpo.py:{variant}"))
  roles = cfg.role_configs()
  loss = cfg.rl.loss
  assert cfg.recipe == "critique_grpo" and cfg.rl.advantage == "dr_grpo" and cfg.recipe_args["k"] == 1
  assert (loss.aggregation, loss.norm_len, loss.entropy_coef, loss.kl_coef) == (
      "seq_mean_token_sum_norm", cfg.rollout.max_new_tokens, 0.001, 0.0)
  assert cfg.rollout.group_size == 8 and cfg.rollout.temperature == 1.0
  if variant.endswith("_self"):
    assert roles["critic"].share == "policy" and cfg.recipe_args["critique"] == "cot"
    assert (roles["critic"].temperature, roles["critic"].top_p) == (0.7, 0.75)
  if variant.startswith("qwen3"):         # the released Qwen3-8B script (ALGORITHMS.md §3)
    assert cfg.rollout.prompts_per_step == 128 and roles["policy"].optim.learning_rate == 1e-6
    rows = cfg.rollout.prompts_per_step * cfg.rollout.group_size
    assert rows // cfg.rl.num_minibatches == 64 * 8 and (rows // cfg.rl.num_minibatches) % cfg.rl.micro_batch_size == 0
    assert (cfg.rollout.max_prompt_len, cfg.rollout.max_new_tokens) == (2048, 6144)
    assert cfg.warmup.steps == 0 and roles["policy"].init == "hf" and cfg.tokenizer.chat_template
    assert cfg.mesh.fsdp * max(cfg.mesh.data, 1) * cfg.mesh.tensor == 8
    if variant == "qwen3-8b":
      assert cfg.recipe_args["critique"] == "simple_gt" and set(roles) == {"policy"}
    shapes = jax.eval_shape(lambda: dec.init_params(roles["policy"].model, jax.random.key(0))[0])
    n = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))
    assert abs(n - 8.19e9) / 8.19e9 < 0.02             # Qwen3-8B: 8.19B parameters


# --------------------------------------------------------------------------------------------------
# Tiny runs

SMALL = dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)


def tiny(**over):
  return from_configdict(tiny_configdict(**over))


def tiny_configdict(**over):
  c = critique_grpo.get_config("tiny")
  c.model.update(**SMALL)
  c.warmup.update(steps=3, batch_size=8)
  c.rollout.update(prompts_per_step=2, group_size=4, max_new_tokens=28)
  c.rl.loss.norm_len = 28
  c.roles.critic.max_new_tokens = 40
  c.task.update(min_digits=1, max_digits=2)
  c.tokenizer.corpus_size = 2000
  c.train.update(steps=4, eval_every=2, eval_prompts=4, checkpoint_every=2)
  return set_fields(c, over)


@pytest.mark.parametrize("critique", ["none", "simple_gt"])
def test_mixed_group_rows(tmp_path, critique, compiled_once):
  """Slots 0..k-1 of every group hold the kept refinements as [original prompt][refinement] with the
  shaped mask; the other slots the initial samples; the advantage is mean-only over the mixed group.
  The random model's refinements mostly fill their turn without a stop token: kept and counted."""
  cfg = tiny(**{"recipe_args.critique": critique})
  parts = loop.build(cfg, tmp_path)
  recipe, task = parts["recipe"], parts["task"]
  params, _ = loop.init_roles(cfg, parts["mesh"], parts["roles"])
  problems = task.problems(0, 0, 2)
  key = jax.random.PRNGKey(3)
  out = recipe.rollout(params, problems, key)
  got = recipe.collect(params, problems, key)
  b, g = 2, 4
  batch = got.batch
  ro = out["ep"].rollout
  initial = completions(ro, 0)
  rewards = out["initial"].reshape(b, g).astype(np.float32)
  if critique != "none":
    refined = completions(ro, out["refine_turn"])
    picked = select_refinements(out["refined"].reshape(b, g), 1)[:, 0]
    rewards[:, 0] = out["refined"].reshape(b, g)[np.arange(b), picked]
  for q in range(b):
    prompt = recipe.encode_prompt(recipe.template.first_prompt(problems[q].problem))
    for s in range(g):
      row = q * g + s
      ids = refined[q * g + picked[q]] if (critique != "none" and s == 0) else initial[row]
      want = list(prompt) + list(ids)
      np.testing.assert_array_equal(batch["tokens"][row, :len(want)], want)
      assert batch["mask"][row].sum() == len(ids)
      assert batch["shaped"][row].sum() == (len(ids) if (critique != "none" and s == 0) else 0)
      first = len(prompt)
      assert batch["adv"][row, first] == pytest.approx(rewards[q, s] - rewards[q].mean())
  m = got.metrics
  assert m["persistently_failed_n"] == int((~out["initial"].reshape(b, g).any(1)).sum())
  if critique != "none":
    assert m["refinement_truncated_n"] == int(out["ep"].truncated[out["refine_turn"]].sum())
    assert m["refinement_truncated_n"] > 0
    assert m["persistently_failed_solved_n"] <= m["persistently_failed_n"]
  else:
    assert "refine_accuracy" not in m and batch["shaped"].sum() == 0


def test_run_trains_logs_its_metrics_and_resumes_exactly(tmp_path, compiled_once):
  """The cot arm (a second, frozen critic model) end to end: warm-up of both roles, RL of the policy
  only, method metrics in metrics.jsonl, and a run stopped after 2 steps and resumed equal to an
  uninterrupted one."""
  cfg = tiny()
  a = loop.train(cfg, tmp_path / "a")
  loop.train(cfg, tmp_path / "b", stop_after=2)
  loop.train(cfg, tmp_path / "b")
  rl = lambda rows: [r for r in strip_timing(rows) if not any(k.startswith("warmup/") for k in r)]
  ra = rl(read_metrics(tmp_path / "a"))
  train_rows = [r for r in ra if "loss" in r]
  assert len(train_rows) == 4
  for key in ("accuracy", "refine_accuracy", "persistently_failed", "persistently_failed_solved_n",
              "refinement_truncated", "selected_correct", "critique_length", "refine_prob", "entropy"):
    assert key in train_rows[0], key
  assert any("eval/accuracy" in r for r in ra) and "accuracy" in a.eval
  warm = [r for r in read_metrics(tmp_path / "a") if "warmup/critic/nll" in r]
  assert warm, "the critic is fitted in the warm-up"
  assert_resumed_like_uninterrupted(tmp_path / "a", tmp_path / "b", after=2)


def test_bad_recipe_args_stop_before_any_compute(tmp_path):
  with pytest.raises(ValueError, match="config.recipe_args.critique='text'"):
    loop.build(tiny(**{"recipe_args.critique": "text"}), tmp_path)
  with pytest.raises(ValueError, match=r"config.recipe_args.k=4 must be in \[1, rollout.group_size=4\)"):
    loop.build(tiny(**{"recipe_args.k": 4}), tmp_path)
  with pytest.raises(ValueError, match="needs role 'critic'"):
    loop.build(tiny(roles={"policy": {}}), tmp_path)


def test_table_runs_one_seed_from_one_warm_up(tmp_path, compiled_once):
  """experiments/critique_grpo_table.py shrunk: one warm-up, two arms from it, the table written."""
  from experiments import critique_grpo_table as table
  base = tiny_configdict(**{"train.steps": 1, "train.eval_every": 1, "train.checkpoint_every": 1})
  out = table.run(base, tmp_path, [0], ["grpo", "simple"], log=lambda *_: None)
  rows = out["results"]
  assert set(rows) == {"warmup", "grpo", "simple"}
  assert rows["grpo"][0]["pf_solved"] == 0.0 and rows["simple"][0]["rl_steps"] == 1
  assert rows["simple"][0]["gain"] == pytest.approx(rows["simple"][0]["accuracy"] - rows["warmup"][0]["accuracy"])
  for name in ("results.json", "table.md", "table.png"):
    assert (tmp_path / name).exists()
  assert "grpo minus each arm" in (tmp_path / "table.md").read_text()
  with pytest.raises(ValueError, match="unknown arm"):
    table.run(base, tmp_path, [0], ["ppo"])
