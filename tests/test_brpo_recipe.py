"""BRPO on the engine and its length-hacking toy: the Bradley-Terry loss against float64 NumPy, the
filler and the toy's pairs by construction, the reference-guided template, BRPO's advantages from a
scripted judge worked by hand, bad configs before compute, and the five tiny runs of
configs/brpo.py chained (judge -> SFT -> RM -> BRPO / GRPO-RM), BRPO resuming exactly."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import assert_resumed_like_uninterrupted, set_fields

from configs import brpo as brpo_config
from critjax.config import from_configdict
from critjax.data.arithmetic import FILLER, ArithmeticTask
from critjax.data.pair_toy import PairToy
from critjax.data.tasks import Problem
from critjax.data.templates import get_template
from critjax.rl.grm_scores import parse_scores
from critjax.rl.losses import reward_bt_loss
from critjax.rl.recipes import brpo as brpo_recipe
from critjax.train.loop import build, train
from critjax.train.metrics import read_metrics
from experiments.config_loading import load_config

SMALL = dict(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
TASK = ArithmeticTask(2, 3, filler_max=4)


def test_reward_bt_loss_matches_float64_by_hand():
  rng = np.random.default_rng(0)
  scalar = rng.normal(size=(6, 5)).astype(np.float32)
  pos = np.array([4, 2, 1, 3, 0, 4])
  valid = np.array([1, 1, 1, 1, 1, 0], np.float32)       # pair 2 has an invalid row: not counted
  r = scalar.astype(np.float64)[np.arange(6), pos]
  diff = r[0::2] - r[1::2]
  want = np.log1p(np.exp(-diff[:2]))                      # -log sigmoid(r_c - r_r)
  total, denom, m = reward_bt_loss(jnp.asarray(scalar), pos, valid)
  assert float(denom) == 2 and float(total) == pytest.approx(want.sum(), rel=1e-6)
  assert float(m["accuracy"][0]) == float((diff[:2] > 0).sum())
  assert float(m["margin"][0]) == pytest.approx(diff[:2].sum(), rel=1e-6)
  # d loss / d r_chosen = -sigmoid(-diff) = -1 / (1 + exp(diff)); the rejected row gets the opposite
  g = np.asarray(jax.grad(lambda s: reward_bt_loss(s, pos, valid)[0])(jnp.asarray(scalar)))
  expect = np.zeros((6, 5))
  for i in range(2):
    expect[2 * i, pos[2 * i]] = -1 / (1 + np.exp(diff[i]))
    expect[2 * i + 1, pos[2 * i + 1]] = 1 / (1 + np.exp(diff[i]))
  np.testing.assert_allclose(g, expect, atol=1e-6)
  with pytest.raises(ValueError, match="odd batch"):
    reward_bt_loss(jnp.zeros((3, 2)), np.zeros(3, np.int32))


def test_filler_changes_only_the_length():
  assert ArithmeticTask(2, 3).solution(358, 267) == " 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; A: 625"
  counts = set()
  for i in range(60):
    a, b = TASK.problem(0, i)
    n = TASK.filler_count(a, b)
    s = TASK.solution(a, b)
    counts.add(n)
    assert s == ArithmeticTask(2, 3).solution(a, b) + f" ; {FILLER}" * n
    assert TASK.reward(s, str(a + b)) == 1.0
  assert counts == {0, 1, 2, 3, 4}
  with pytest.raises(ValueError, match="filler_max"):
    ArithmeticTask(filler_max=2, answer_first=True)


def test_toy_pairs_are_confounded_unconfounded_and_judged_by_construction():
  toy = PairToy(TASK)
  fill = lambda s: s.count(f"; {FILLER}")
  for i in range(40):
    a, b = TASK.problem(3, i)
    rng = np.random.default_rng(i)
    c, r = toy.rm_pair(a, b, rng)
    assert TASK.reward(c, str(a + b)) == 1.0 and TASK.reward(r, str(a + b)) == 0.0 and fill(c) > fill(r)
    c, r = toy.unconfounded_pair(a, b, rng)
    assert TASK.reward(c, str(a + b)) == 1.0 and TASK.reward(r, str(a + b)) == 0.0 and fill(c) < fill(r)
    responses, pref = toy.judge_item(a, b, rng)
    right = [TASK.reward(x, str(a + b)) == 1.0 for x in responses]
    assert pref in (0, 1) and right[pref] and not right[1 - pref]
    scores = parse_scores(toy.oracle_trajectory(a, b, responses), 2).scores
    assert scores[pref] == 10 and scores[1 - pref] == 1
  ties = [toy.judge_item(a, b, np.random.default_rng(i), ties=True)[1] for i in range(400)]
  assert 0.4 < np.mean([t is None for t in ties]) < 0.6          # a quarter both right, a quarter both wrong
  assert toy.oracle_trajectory(358, 267, [" 8+7=15 c1 ; A: 625 ; sure", " nothing"]) == \
      " R1: A: 625 ok ; R2: A: none bad ; Scores: [[10, 1]]"
  with pytest.raises(ValueError, match="filler_max >= 1"):
    PairToy(ArithmeticTask(2, 3))


def test_reference_guided_template_shows_the_gold_answer():
  tpl = get_template("grm_pair_arith")
  assert tpl.prompt("358+267", [" 8+7=15 c1 ; A: 625 ; sure", " nothing"], reference="625") == \
      "Q: 358+267 = Ref: 625\nR1: A: 625 ; sure\nR2: nothing\nJudge:"
  with pytest.raises(ValueError, match="reference-guided"):
    tpl.prompt("358+267", [" A: 625"])
  assert get_template("grm_arith").prompt("1+2", [" A: 3"], reference="3") == "Q: 1+2 =\nR1: A: 3\nJudge:"


def brpo_cfg(**over):
  """configs/brpo.py:tiny on random roles with a tokenizer of its own (no judge run)."""
  c = brpo_config.get_config("tiny")
  c.model.update(**SMALL)
  c.tokenizer.update(kind="train_spm", corpus_size=2000)
  c.roles.policy.update(dict(init="random", init_from=None))
  c.roles.judge.update(dict(init="random", init_from=None, init_role=None, max_new_tokens=8))
  c.rollout.update(prompts_per_step=2, group_size=4)
  c.train.update(steps=2, eval_every=2, eval_prompts=4, checkpoint_every=2)
  return from_configdict(set_fields(c, over))


def test_brpo_advantages_from_a_reference_judge_by_hand(tmp_path, monkeypatch):
  recipe = build(brpo_cfg(), tmp_path)["recipe"]
  problems = [Problem(id="0:1", problem="12+30", answer="42"), Problem(id="0:2", problem="5+5", answer="10")]
  R, W = " 2+0=2 c0 ; 1+3=4 c0 ; A: 42", " 2+0=2 c0 ; 1+3=5 c0 ; A: 52"
  texts = [R, W, W, R + " ; sure"] + [" 5+5=11 c1 ; A: 11"] * 4
  seen = []

  def reference_judge(engine, turns, probs, prompts, params, rng, num_samples=1, greedy=False):
    """Scores each shown response 10 if its answer is the reference's, else 1."""
    seen.extend(prompts)
    out = []
    for p in prompts:
      ref = p.split("Ref: ")[1].split("\n")[0]
      got = [line.split("A: ")[1].split(" ")[0] for line in p.split("\n")[1:3]]
      out.append(" Scores: [[" + ", ".join("10" if g == ref else "1" for g in got) + "]]")
    return type("Ep", (), {"texts": lambda self, t: out})()

  monkeypatch.setattr(brpo_recipe.protocols, "run", reference_judge)
  monkeypatch.setattr(brpo_recipe, "pick_references", lambda b, g, rng: np.array([1, 0]))
  rewards = recipe.task.score([p for p in problems for _ in range(4)], texts).reshape(2, 4)
  adv, valid = recipe.group_advantages({}, problems, texts, rewards, np.ones((2, 4), bool), jax.random.PRNGKey(0))
  # query 0, reference 1 (wrong): rollouts 0 and 3 (right) win both orders +1, rollout 2 (wrong) ties -1;
  #   sum 1, 1/4 <= 0.6 kept. query 1, reference 0: every rollout wrong, ties, -1 x 3: 3/4 > 0.6 dropped.
  np.testing.assert_array_equal(adv, [[1, 0, -1, 1], [0, 0, 0, 0]])
  np.testing.assert_array_equal(valid, [[1, 0, 1, 1], [0, 0, 0, 0]])
  assert len(seen) == 2 * 2 * 3 and all("Ref: 42" in p for p in seen[:6]) and all("Ref: 10" in p for p in seen[6:])
  # each response shown from its answer on (the template's answer_view)
  assert seen[0] == "Q: 12+30 = Ref: 42\nR1: A: 42\nR2: A: 52\nJudge:" and seen[1] == "Q: 12+30 = Ref: 42\nR1: A: 52\nR2: A: 42\nJudge:"
  m = recipe.generation_metrics([])
  assert m["brpo_kept_queries"] == 0.5 and m["judge_agreement"] == 1.0 and m["brpo_inconsistent"] == 0.0
  assert m["brpo_win_rate"] == pytest.approx(2 / 6) and m["judge_invalid"] == 0.0


@pytest.mark.parametrize("over, match", [
    ({"rollout.group_size": 1}, "G >= 2"),
    ({"roles.judge.trained": True}, "judge trained in the same BRPO run"),
    ({"rl.dynamic_sampling": True}, "own query filter"),
    ({"recipe_args.judge_template": "critique_toy"}, "not a GRM template"),
    ({"recipe_args.drop_threshold": 1.5}, "drop_threshold"),
    ({"rollout.max_prompt_len": 100}, "cannot hold a judge prompt"),
])
def test_bad_brpo_configs_stop_before_any_compute(tmp_path, over, match):
  with pytest.raises(ValueError, match=match):
    build(brpo_cfg(**over), tmp_path)


def stage(variant, d, **over):
  c = brpo_config.get_config(variant)
  c.model.update(**SMALL)
  for r in ("policy", "rm"):
    if r in c.roles and "model" in c.roles[r]:
      c.roles[r].model.update(**SMALL)
  # Short completions: a random model's tokens can re-encode longer than max_new_tokens.
  c.rollout.update(prompts_per_step=2, group_size=4, max_new_tokens=24 if variant != "tiny_judge" else 48)
  c.warmup.update(batch_size=8)
  c.train.update(eval_every=2, eval_prompts=4, checkpoint_every=2)
  if variant == "tiny_judge":
    c.tokenizer.corpus_size = 2000
  else:
    c.tokenizer.path = str(d / "judge" / "tokenizer.model")
  return from_configdict(set_fields(c, over))


def test_bad_toy_configs_stop_before_any_compute(tmp_path):
  with pytest.raises(ValueError, match="filler_max"):
    build(stage("tiny_judge", tmp_path, **{"task.filler_max": 0}), tmp_path / "j")
  c = load_config("configs/brpo.py:tiny_judge")
  c.model.update(**SMALL)
  c.tokenizer.corpus_size = 2000
  c.recipe = "reward_model"
  c.train.steps = 0
  with pytest.raises(ValueError, match="scalar_head must be True"):
    build(from_configdict(c), tmp_path / "r")


def test_the_five_tiny_runs_chain_and_brpo_resumes_exactly(tmp_path, compiled_once):
  d = tmp_path
  train(stage("tiny_judge", d, **{"warmup.steps": 4, "train.steps": 2}), d / "judge")
  judge_rows = [r for r in read_metrics(d / "judge") if "judge_correct" in r]
  assert len(judge_rows) == 2
  train(stage("tiny_sft", d, **{"warmup.steps": 4}), d / "sft")
  rm = train(stage("tiny_rm", d, **{"roles.policy.init_from": str(d / "sft"), "recipe_args.rm_steps": 3,
                                    "recipe_args.rm_batch_pairs": 4}), d / "rm").eval
  assert set(rm) == {"pair_accuracy", "unconfounded_accuracy", "length_preference"}
  assert [r for r in read_metrics(d / "rm") if "rm/bt" in r]
  arms = {"roles.policy.init_from": str(d / "sft"), "train.steps": 2}
  b = stage("tiny", d, **arms, **{"roles.judge.init_from": str(d / "judge"), "roles.judge.max_new_tokens": 16})
  ev = train(b, d / "brpo_a").eval
  assert set(ev) == {"accuracy", "response_length"}
  rows = [r for r in read_metrics(d / "brpo_a") if "brpo_kept_queries" in r]
  assert len(rows) == 2 and all(0 <= r["judge_invalid"] <= 1 for r in rows)
  train(b, d / "brpo_b", stop_after=1)
  train(b, d / "brpo_b")
  assert_resumed_like_uninterrupted(d / "brpo_a", d / "brpo_b", after=1)
  g = train(stage("tiny_grpo_rm", d, **arms, **{"roles.rm.init_from": str(d / "rm")}), d / "grpo_rm")
  rows = [r for r in read_metrics(d / "grpo_rm") if "rm_score_wrong" in r]
  assert len(rows) == 2 and set(g.eval) == {"accuracy", "response_length"}


@pytest.mark.parametrize("variant", brpo_config.VARIANTS)
def test_config_variants_validate(variant):
  c = load_config(f"configs/brpo.py:{variant}")
  for path in ("tokenizer.path", "roles.policy.init_from", "roles.judge.init_from", "roles.rm.init_from"):
    node, *rest = path.split(".")
    try:
      parent = c[node] if len(rest) == 1 else c[node][rest[0]]
    except (KeyError, AttributeError):
      continue
    if parent.get(rest[-1]) is None:
      parent[rest[-1]] = "/some/run"
  cfg = from_configdict(c)
  roles = cfg.role_configs()
  if variant == "qwen3-8b":
    assert cfg.rollout.group_size == 16 and cfg.recipe_args["drop_threshold"] == 0.6
    assert roles["judge"].model.d_model == 4096 and not roles["judge"].trained
    assert cfg.mesh.fsdp * max(cfg.mesh.data, 1) * cfg.mesh.tensor == 8
  if variant in ("tiny", "tiny_grpo_rm"):       # the two arms: one start, one budget
    assert roles["policy"].init == "checkpoint" and cfg.train.steps == 30 and cfg.rollout.group_size == 8


def test_the_table_script_reads_curves_and_writes_its_table(tmp_path):
  import json

  from experiments import brpo_table
  for arm, grow in (("brpo", 0.0), ("grpo_rm", 2.0)):
    d = tmp_path / arm
    d.mkdir()
    rows = [{"step": 0, "eval/accuracy": 0.3, "eval/response_length": 40.0}]
    rows += [{"step": s, "accuracy": 0.3, "response_length": 40 + grow * s} for s in range(1, 7)]
    rows += [{"step": 6, "eval/accuracy": 0.35, "eval/response_length": 40 + grow * 6}]
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
  cv = brpo_table.curves(tmp_path / "grpo_rm")
  assert [e["step"] for e in cv["eval"]] == [0, 6] and cv["train"][-1]["response_length"] == 52.0
  results = {a: [{"seed": s, "accuracy_start": 0.3, "accuracy": 0.35 + 0.01 * s, "length_start": 40.0,
                  "length": 40.0 + g + s, "length_gain": g + s, "accuracy_gain": 0.05 + 0.01 * s,
                  "curves": brpo_table.curves(tmp_path / a)} for s in range(3)]
             for a, g in (("brpo", 0.0), ("grpo_rm", 12.0))}
  extra = {"judge": [{"seed": s, "accuracy": 0.2, "accuracy_both_orders": 0.1, "invalid": 0.0, "first_preferred": 0.5,
                      "inconsistent": 0.3} for s in range(3)],
           "rm": [{"seed": s, "pair_accuracy": 0.9, "unconfounded_accuracy": 0.1, "length_preference": 0.9}
                  for s in range(3)]}
  table = brpo_table.write_tables(results, extra, tmp_path)
  brpo_table.write_curves(results, tmp_path / "curves.png")
  assert "| brpo | 3 |" in table and "-12.0 ± 0.0" in table.replace("−", "-") and (tmp_path / "curves.png").stat().st_size > 0
