"""SPC (critjax/rl/recipes/spc.py): the offline critic loss against a float64 NumPy reference and a
hand-worked case, micro-batch accumulation, the toy's sneaky steps and solver, unchanged and invalid
rewrites counted but kept out of the game, bad configs stopped at start-up, the config variants, and
a tiny run that trains, logs SPC's metrics, pairs each round with the previous round's critic, and
resumes exactly (the table script's smoke run)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import role_checkpoints, set_fields, strip_timing

from configs import spc as spc_config
from critjax.config import from_configdict
from critjax.data.arithmetic import SNEAKY_KINDS, ArithmeticTask
from critjax.models import decoder
from critjax.models.config import ModelConfig
from critjax.rl import protocols
from critjax.rl.losses import LOSSES, LossConfig
from critjax.rl.spc_losses import spc_critic_loss
from critjax.train import loop
from critjax.train.metrics import read_metrics
from critjax.train.update import RoleSpec, accumulate_grads
from experiments.config_loading import load_config

SMALL = dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
EPS = 0.2


# --- the loss --------------------------------------------------------------------------------------

def reference_loss(logp, ref, mask, adv, sft, coef, eps=EPS):
  """The released loss written out in float64: mean over game rows of the clipped sequence-ratio
  surrogate + coef x mean over SFT rows of -lp (rows with no token are in neither mean)."""
  logp, ref, mask = (np.asarray(x, np.float64) for x in (logp, ref, mask))
  games, sfts = [], []
  for i in range(mask.shape[0]):
    n = mask[i].sum()
    if n == 0:
      continue
    lp = (logp[i] * mask[i]).sum() / n
    lp_ref = (ref[i] * mask[i]).sum() / n
    if sft[i]:
      sfts.append(-lp)
    else:
      w = math.exp(lp - lp_ref)
      games.append(-min(adv[i] * w, adv[i] * min(max(w, 1 - eps), 1 + eps)))
  return (np.mean(games) if games else 0.0) + coef * (np.mean(sfts) if sfts else 0.0)


def weights(mask, sft, coef):
  """The recipe's per-row columns (SPC._critic_batch, loss_norm='means')."""
  has = mask.sum(axis=1) > 0
  n_g, n_s = (has & (sft == 0)).sum(), (has & (sft == 1)).sum()
  w = np.where(sft == 1, coef / max(n_s, 1), 1.0 / max(n_g, 1)) * has
  return w.astype(np.float32), np.full(len(sft), 1.0 / len(sft), np.float32)


def random_rows(b=8, t=7, seed=0):
  rng = np.random.default_rng(seed)
  lengths = rng.integers(0, t, b)
  lengths[:2] = (3, 5)                                   # at least one game and one SFT row with tokens
  mask = (np.arange(t)[None] < lengths[:, None]).astype(np.float32)
  logp = -1.5 + 0.6 * rng.normal(size=(b, t))            # ratios well outside [0.8, 1.2]: both clips act
  ref = -1.5 + 0.6 * rng.normal(size=(b, t))
  adv = rng.choice([-1.0, 1.0], b)
  sft = (np.arange(b) % 3 == 1).astype(np.float32)
  return logp, ref, mask, adv, sft


def loss_of(logp, ref, mask, adv, sft, coef=0.15):
  w, share = weights(mask, sft, coef)
  s, d, m = spc_critic_loss(jnp.asarray(logp, jnp.float32), jnp.asarray(ref, jnp.float32), jnp.asarray(mask),
                            jnp.asarray(adv, jnp.float32), jnp.asarray(sft), jnp.asarray(w), jnp.asarray(share),
                            LossConfig(clip_low=EPS, clip_high=EPS))
  return float(s / d), m


def test_critic_loss_hand_case():
  """Three game rows and one SFT row, worked by hand: w = 1 (A = +1, pg -1); w = e^0.5 > 1.2 with
  A = +1 (clipped: -1.2); w = e^0.5 with A = -1 (pessimistic, unclipped: +e^0.5); SFT lp = -1.
  L = (-1 - 1.2 + e^0.5) / 3 + 0.15 x 1."""
  nan = -np.inf                         # a pad's log-prob may be -inf: it must not reach the loss
  logp = np.array([[-1, -3], [-1, nan], [-1, nan], [-0.5, -1.5]])
  ref = np.array([[-2, -2], [-1.5, 0], [-1.5, 0], [-7, -9]])
  mask = np.array([[1, 1], [1, 0], [1, 0], [1, 1]], np.float32)
  got, m = loss_of(logp, ref, mask, np.array([1.0, 1.0, -1.0, 0.0]), np.array([0, 0, 0, 1], np.float32))
  want = (-1 - 1.2 + math.exp(0.5)) / 3 + 0.15
  assert got == pytest.approx(want, rel=1e-6)
  assert float(m["clip_frac"][0] / m["clip_frac"][1]) == pytest.approx(1 / 3)
  assert float(m["sft_nll"][0] / m["sft_nll"][1]) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("coef", [0.15, 0.0])
def test_critic_loss_matches_numpy_reference(seed, coef):
  logp, ref, mask, adv, sft = random_rows(seed=seed)
  got, _ = loss_of(logp, ref, mask, adv, sft, coef)
  assert got == pytest.approx(reference_loss(logp, ref, mask, adv, sft, coef), rel=1e-5, abs=1e-6)


def test_critic_loss_gradient_matches_numpy_finite_differences():
  """d L / d logp against central differences of the float64 reference."""
  logp, ref, mask, adv, sft = random_rows(b=6, t=4, seed=3)
  w, share = weights(mask, sft, 0.15)
  cfg = LossConfig(clip_low=EPS, clip_high=EPS)
  f = lambda lp: (lambda s, d, _: s / d)(*spc_critic_loss(lp, jnp.asarray(ref, jnp.float32), jnp.asarray(mask),
                                                           jnp.asarray(adv, jnp.float32), jnp.asarray(sft),
                                                           jnp.asarray(w), jnp.asarray(share), cfg))
  grad = np.asarray(jax.grad(f)(jnp.asarray(logp, jnp.float32)))
  h, num = 1e-5, np.zeros_like(logp)
  for i, j in zip(*np.nonzero(mask)):
    up, down = logp.copy(), logp.copy()
    up[i, j] += h
    down[i, j] -= h
    num[i, j] = (reference_loss(up, ref, mask, adv, sft, 0.15) - reference_loss(down, ref, mask, adv, sft, 0.15)) / (2 * h)
  np.testing.assert_allclose(grad, num, rtol=1e-3, atol=1e-5)


def test_micro_batches_give_the_full_batch_loss_and_gradient():
  """The recipe's weight columns make spc_critic's (sum, denom) add up across micro-batches: 4
  micro-batches of 2 rows = the whole batch, through the real model and update.accumulate_grads."""
  cfg = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)
  params, _ = decoder.init_params(cfg, jax.random.key(0))
  _, ref, mask, adv, sft = random_rows(b=8, t=7, seed=4)
  mask[:, 0] = 0                                     # the first token has no log-prob of its own
  w, share = weights(mask, sft, 0.15)
  rng = np.random.default_rng(0)
  batch = {"tokens": jnp.asarray(rng.integers(0, 64, (8, 7)), jnp.int32), "mask": jnp.asarray(mask),
           "ref_logp": jnp.asarray(ref, jnp.float32), "seq_adv": jnp.asarray(adv, jnp.float32),
           "seq_sft": jnp.asarray(sft), "seq_weight": jnp.asarray(w), "seq_share": jnp.asarray(share)}
  spec = lambda m: RoleSpec(cfg, None, kind="spc_critic", loss=LossConfig(), micro_batches=m)
  full = jax.jit(lambda p: accumulate_grads(p, batch, spec(1)))(params)
  acc = jax.jit(lambda p: accumulate_grads(p, batch, spec(4)))(params)
  np.testing.assert_allclose(acc[1], full[1], rtol=1e-5)
  jax.tree.map(lambda a, f: np.testing.assert_allclose(a, f, rtol=1e-4, atol=1e-7), acc[0], full[0])
  for k in ("pg_loss", "sft_nll", "ratio_mean", "kl"):
    np.testing.assert_allclose(acc[2][k], full[2][k], rtol=1e-5, atol=1e-7)
  # and the loss is the reference's: the model's own log-probs in, the formula out
  from critjax.train.logprobs import token_logprobs
  logp = np.asarray(token_logprobs(params, batch["tokens"], cfg, 1.0)[0])
  assert float(full[1]) == pytest.approx(reference_loss(logp, ref, mask, adv, sft, 0.15), rel=1e-5)


def test_critic_loss_needs_the_reference():
  with pytest.raises(ValueError, match="ref_logp"):
    LOSSES.get("spc_critic")(jnp.zeros((1, 2)), jnp.zeros((1, 2)), {"mask": jnp.ones((1, 2))}, LossConfig())


# --- the toy's steps, errors and solver ----------------------------------------------------------------

def test_sneaky_steps_hand_cases():
  """358+267, column 1 is `5+6+1=12 c1`: each error type as documented."""
  g, rng = ArithmeticTask(), np.random.default_rng(0)
  assert g.column(358, 267, 1) == (5, 6, 1) and g.column(358, 267, 0) == (8, 7, 0)
  assert g.sneaky_step(358, 267, 1, "carry", rng) == "5+6=11 c1"
  assert g.sneaky_step(358, 267, 0, "carry", rng) == "8+7+1=16 c1"
  assert g.sneaky_step(358, 267, 1, "sum", rng) in ("5+6+1=13 c1", "5+6+1=11 c1")
  digit = g.sneaky_step(358, 267, 1, "digit", rng)
  x, rest = digit.split("+", 1)
  y = rest.split("+")[0]
  assert (x != "5") != (y.split("=")[0] != "6")         # exactly one operand digit changed, worked right
  assert g.parse_step(digit) is not None and eval(digit.split("=")[0]) == g.parse_step(digit)[0]
  with pytest.raises(ValueError, match="unknown sneaky error type"):
    g.sneaky_step(358, 267, 1, "sign", rng)


def test_every_sneaky_step_is_a_real_error_and_the_solver_is_paired():
  g, rng = ArithmeticTask(), np.random.default_rng(1)
  for i in range(200):
    a, b = g.problem(3, i)
    steps = g.solution_steps(a, b)
    k = int(rng.integers(len(steps)))
    assert g.step_success(a, b, k, steps[k], 4, 0.0, (0, i)) == 1.0        # a perfect solver from the right step
    for kind in SNEAKY_KINDS:
      s = g.sneaky_step(a, b, k, kind, rng)
      assert s != steps[k] and g.step_success(a, b, k, s, 4, 0.0, (0, i)) == 0.0, (a, b, k, kind, s)
  # slips: the original's completions fail now and then; a rewrite that leaves the stated sum and
  # carry alone (6+5 for 5+6) draws the same slips, so its success is the original's exactly
  a, b = 358, 267
  orig = g.step_success(a, b, 0, "8+7=15 c1", 64, 0.3, (5,))
  assert 0.3 < orig < 0.7                                  # two remaining columns, no slip in either: 0.49
  assert g.step_success(a, b, 0, "7+8=15 c1", 64, 0.3, (5,)) == orig
  assert g.step_success(a, b, 0, "8+7=15 c1", 64, 0.3, (6,)) != orig     # other slips, another estimate
  assert g.step_success(a, b, 0, "garbage", 4, 0.0, (5,)) == 0.0
  assert g.step_success(a, b, 2, "3+2+1=6 c0", 4, 0.9, (5,)) == 1.0       # the last column: nothing left to slip


# --- the recipe ---------------------------------------------------------------------------------------

def tiny(**over):
  c = spc_config.get_config("tiny")
  c.model.update(**SMALL)
  c.warmup.update(steps=2, batch_size=8)
  c.rollout.update(prompts_per_step=2, group_size=4)
  c.recipe_args.sft_rows = 2
  c.task.update(min_digits=1, max_digits=2)
  c.tokenizer.corpus_size = 2000
  c.train.update(steps=4, eval_every=2, eval_prompts=4, checkpoint_every=1, keep_checkpoints=10)
  return set_fields(c, over)


def test_unchanged_and_invalid_rewrites_are_counted_and_kept_out_of_the_game(tmp_path, monkeypatch):
  """Per problem the generator's 4 rewrites are forced to: the original step (unchanged), a misread
  operand with the result left alone (changed, but the solution's answer is not: invalid), a sum off
  by one and garbage (both real errors: games). Only the two games enter the critic's loss; the
  generator is penalised (-1) for the other two; the metrics count each kind."""
  cfg = from_configdict(tiny())
  parts = loop.build(cfg, tmp_path)
  recipe = parts["recipe"]
  params = loop.init_roles(cfg, parts["mesh"])[0]
  params = {**params, "critic_prev": params["critic"]}
  problems = recipe.task.problems(0, 0, 2)
  plans = [recipe._plan(p, 0) for p in problems]
  forced = []
  for p, (k, _) in zip(problems, plans):
    step = recipe.task.worked_steps(p)[k]
    misread = str((int(step[0]) + 1) % 10) + step[1:]
    forced += [step, misread, recipe.task.sneaky_step(p, k, "sum", np.random.default_rng(0)), "zz"]
  texts = protocols.Episode.texts
  monkeypatch.setattr(protocols.Episode, "texts",
                      lambda ep, turn: forced if ep.turn_roles[0] == "generator" else texts(ep, turn))
  out = recipe.collect(params, problems, jax.random.PRNGKey(0))
  m = out.metrics
  assert (m["unchanged_share"], m["invalid_share"], m["game_share"], m["games"]) == (0.25, 0.25, 0.5, 4)
  gen = out.batches["generator"]
  row_adv = gen["adv"].sum(1) / np.maximum(gen["mask"].sum(1), 1)
  np.testing.assert_allclose(row_adv[[0, 1, 4, 5]], -1.0)              # unchanged / invalid: the penalty
  # the random critic gives no verdict, which is no catch: every game fools it (+1 to the generator)
  np.testing.assert_allclose(row_adv[[2, 3, 6, 7]], 1.0)
  assert m["fool_rate"] == 1.0 and m["verdict_missing"] == 1.0
  c = out.batches["critic"]
  game_rows = np.array([False, False, True, True] * 2 + [True] * 8)     # + the original steps, 4 times each
  assert c["tokens"].shape[0] == 8 + 8 + 2 == recipe.rows_per_step()["critic"]
  np.testing.assert_array_equal(c["mask"][:16].sum(1) > 0, game_rows)
  np.testing.assert_allclose(c["seq_weight"][:16], np.where(game_rows, 1 / 12, 0.0), rtol=1e-6)
  np.testing.assert_allclose(c["seq_weight"][16:], 0.15 / 2, rtol=1e-6)
  np.testing.assert_allclose(c["seq_share"].sum(), 1.0, rtol=1e-6)
  np.testing.assert_array_equal(c["seq_sft"], [0] * 16 + [1] * 2)
  np.testing.assert_allclose(c["seq_adv"][:16][game_rows], -1.0)       # fooled / no verdict: -1 to the critic


@pytest.mark.parametrize("over, match", [
    ({"recipe_args.template": "critique_toy"}, "not a step-game template"),
    ({"task.answer_first": True}, "needs a task with worked steps"),
    ({"rollout.max_prompt_len": 20}, "rollout.max_prompt_len=20"),
    ({"roles.critic.max_new_tokens": 8}, "roles.critic.max_new_tokens"),
    ({"recipe_args.validity_margin": 1.0}, "validity_margin"),
    ({"recipe_args.loss_norm": "sum"}, "loss_norm"),
    ({"recipe_args.rounds": 0}, "rounds"),
])
def test_bad_configs_stop_before_any_compute(tmp_path, over, match):
  with pytest.raises(ValueError, match=match):
    loop.train(from_configdict(tiny(**over)), tmp_path)
  assert not (tmp_path / "config.json").exists() and not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("variant", ["tiny", "qwen2.5-7b"])
def test_config_variants_build_and_validate(variant):
  cfg = from_configdict(load_config(f"configs/spc.py:{variant}"))
  from critjax.rl.recipes.multi_turn import parse_args
  from critjax.rl.recipes.spc import SPCArgs
  args = parse_args(SPCArgs, dict(cfg.recipe_args))
  roles = cfg.role_configs()
  assert cfg.recipe == "spc" and set(roles) == {"generator", "critic"} and all(r.trained for r in roles.values())
  assert (cfg.rl.loss.clip_low, cfg.rl.loss.clip_high, cfg.rl.loss.kl_coef, cfg.rl.advantage) == (0.2, 0.2, 0.0, "reinforce")
  assert (args.sft_coef, args.rounds, args.verdict) == (0.15, 2, "answer_tag")
  b, g = cfg.rollout.prompts_per_step, cfg.rollout.group_size
  critic_rows = b * g * (1 + args.judge_original) + args.sft_rows
  if variant == "tiny":
    assert roles["critic"].init == "copy" and roles["critic"].init_from == "generator"     # one base model
    assert cfg.train.eval_every * args.rounds == cfg.train.steps                         # an evaluation per round
    return
  # scripts/rl_critic.sh: Qwen2.5-7B-Instruct, lr 2e-6, total batch 64, 3 epochs, max length 4096,
  # 10 warm-up steps, bf16
  for r in roles.values():
    assert r.init == "hf" and r.optim.learning_rate == 2e-6 and r.optim.warmup_steps == 10
    assert r.model.dtype == "bfloat16"
    assert cfg.rollout.max_prompt_len + r.max_new_tokens == 4096
  assert roles["critic"].init_from.endswith("SPC-Critic-0")
  assert critic_rows == 64 and cfg.rl.num_minibatches == 1 and cfg.rl.ppo_epochs == 3
  for rows in (critic_rows, b * g):
    assert rows % cfg.rl.micro_batch_size == 0
  assert cfg.mesh.fsdp * max(cfg.mesh.data, 1) * cfg.mesh.tensor == 8
  shapes = jax.eval_shape(lambda: decoder.init_params(roles["critic"].model, jax.random.key(0))[0])
  n = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))
  assert abs(n - 7.62e9) / 7.62e9 < 0.02             # Qwen2.5-7B: 7.62B parameters


# --- a tiny run: trains, logs, pairs rounds, resumes exactly (the table's smoke run) ------------------

@pytest.fixture(scope="module")
def table_run(tmp_path_factory, compilation_cache_dir):
  """experiments/spc_table.py on one seed of the tiny config: the uninterrupted run (seed0) and its rows."""
  from conftest import compilation_cache
  from experiments import spc_table
  d = tmp_path_factory.mktemp("spc_table")
  with compilation_cache(compilation_cache_dir):
    out = spc_table.run(tiny(), d, seeds=[0], log=lambda s: None)
  return d, out


def test_table_rows_come_from_each_rounds_evaluation(table_run):
  d, out = table_run
  assert set(out["results"]) == {"round0", "round1", "round2"} and (d / "table.md").exists()
  evals = {r["step"]: r for r in read_metrics(d / "seed0") if "eval/sneaky_acc" in r}
  assert sorted(evals) == [0, 2, 4]
  for name, step in (("round0", 0), ("round1", 2), ("round2", 4)):
    row = out["results"][name][0]
    assert row["sneaky_acc"] == evals[step]["eval/sneaky_acc"]
    assert row["real_error_acc"] == evals[step]["eval/real_error_acc"]
  assert math.isnan(out["results"]["round0"][0]["game_fool_rate"])
  assert not math.isnan(out["results"]["round2"][0]["games"])


def test_tiny_run_logs_spc_metrics_and_resumes_exactly(tmp_path, table_run, compiled_once):
  d, _ = table_run
  cfg = from_configdict(set_fields(tiny(), {"seed": 0}))
  loop.train(cfg, tmp_path / "b", stop_after=2)          # "killed" at the round 1 -> round 2 boundary
  loop.train(cfg, tmp_path / "b")
  rl = lambda rows: [r for r in strip_timing(rows) if r["step"] > 2 and not any(k.startswith("warmup/") for k in r)]
  ra, rb = rl(read_metrics(d / "seed0")), rl(read_metrics(tmp_path / "b"))
  assert len(ra) == len(rb) >= 3
  for x, y in zip(ra, rb):
    assert x.keys() == y.keys()
    for k in x:
      np.testing.assert_allclose(x[k], y[k], rtol=1e-6, err_msg=f"step {x['step']} {k}")
  train_rows = [r for r in strip_timing(read_metrics(d / "seed0")) if "games" in r]
  assert [r["round"] for r in train_rows] == [1, 1, 2, 2]
  for key in ("games", "fool_rate", "unchanged_share", "invalid_share", "game_share", "critic_game_acc",
              "original_acc", "verdict_missing", "critic/pg_loss", "critic/sft_nll", "critic/ratio_mean",
              "critic/clip_frac", "generator/pg_loss"):
    assert all(key in r for r in train_rows), key
  for key in ("sneaky_acc", "real_error_acc", "correct_acc", "sneaky_pair_acc", "real_pair_acc", "fool_rate",
              "fool_rate_sft", "gen_valid", "gen_unchanged", "sneaky_acc_digit", "real_acc_misread"):
    assert f"eval/{key}" in read_metrics(d / "seed0")[-1], key
  # the pairing: round r's games are judged by the critic at the round's start (round 1: the SFT
  # critic, the warm-up's end; round 2: the round-1 critic), the reference stays the SFT critic
  w = cfg.warmup.steps
  load, same = role_checkpoints(d / "seed0", cfg.role_configs()["critic"].model)
  sft, boundary = load("critic", w), load("critic", w + 2)
  assert not same(sft, boundary)
  assert same(load("critic_prev", w + 1), sft) and same(load("critic_prev", w + 4), boundary)
  assert same(load("critic_reference", w + 4), sft)
