"""RL-MIA's detectors on a real (tiny) model, and the toy study's plumbing: a finite RL pool, the
greedy decode's recorded log-probs, and one seed of experiments/rl_mia_toy.py end to end."""
import numpy as np
import pytest

from critjax.config import TaskConfig
from critjax.data.tasks import make_task
from critjax.eval import contamination
from critjax.eval.models import load_model


def test_a_pool_cycles_rl_problems_and_leaves_warmup_and_held_out_ones_alone():
  from critjax.train.loop import ProblemStream
  task = make_task(TaskConfig())
  stream = ProblemStream(task, 0, 5, pool=3)          # resumed at data index 5
  got = [p.problem for p in stream.take(4) + stream.take(2)]
  first3 = [p.problem for p in task.problems(0, 0, 3)]
  assert got == [first3[i % 3] for i in range(5, 11)]
  assert [p.problem for p in ProblemStream(task, 0, 5).take(3)] == [p.problem for p in task.problems(0, 5, 3)]
  with pytest.raises(ValueError, match="pool_size=-1 must be >= 0"):
    TaskConfig(pool_size=-1)


@pytest.fixture(scope="module")
def run_dir(tiny_run):
  return tiny_run


def test_greedy_decode_records_the_distribution_it_decoded_from(run_dir):
  model = load_model(str(run_dir))
  prompts = [contamination.encode(model, f"Q: {a}+{b} =") for a, b in ((3, 4), (12, 9), (5, 50))]
  out = contamination.greedy_decode(model, prompts, 6, top_k=5, batch_size=2)
  assert len(out) == 3
  for d in out:
    assert d.ids.shape == d.logp.shape and d.topk_logp.shape == (len(d.ids), 5)
    np.testing.assert_allclose(d.logp, d.topk_logp[:, 0], atol=1e-5)       # greedy took each step's argmax
    assert np.all(np.diff(d.topk_logp, axis=1) <= 1e-6) and np.all(d.topk_logp <= 0)
  # the toy run's prompts carry no BOS, as its recipe encodes them
  assert prompts[0] == model.tokenizer.encode("Q: 3+4 =")


def test_detect_scores_members_and_refuses_one_class(run_dir):
  model = load_model(str(run_dir))
  qs = [f"Q: {i}+{i + 1} =" for i in range(4)]
  out = contamination.detect(model, qs, [True, True, False, False], max_new_tokens=6, batch_size=4)
  assert set(out["auc"]) == {"self_critique", "perplexity", "min_20%"}
  assert all(np.isnan(v) or 0 <= v <= 1 for v in out["auc"].values())
  assert all(s.shape == (4,) for s in out["scores"].values())
  with pytest.raises(ValueError, match="both members and non-members"):
    contamination.detect(model, qs, [True] * 4, max_new_tokens=4)


def test_rl_mia_toy_runs_one_seed(tmp_path):
  from configs import grpo
  from experiments import rl_mia_toy
  c = grpo.get_config("tiny")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.warmup.update(steps=3, batch_size=8)
  c.rollout.update(prompts_per_step=4, group_size=4, max_new_tokens=28)
  c.task.update(min_digits=1, max_digits=2)
  c.tokenizer.corpus_size = 2000
  c.train.update(steps=2, eval_every=2, eval_prompts=4, checkpoint_every=2)
  out = rl_mia_toy.run(c, tmp_path, [0], pool=4, log=lambda *_: None)
  rows = out["results"]
  assert [len(rows[k]) for k in ("before RL", "after RL")] == [1, 1]
  assert "AUC Self-Critique" in out["table"] and (tmp_path / "table.png").exists()
