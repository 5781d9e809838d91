"""Reward-model benches (critjax/eval/benches/reward_models.py): the score parser, the chance level,
the unparsed-score rule, each bench's figures on canned judge outputs against hand-computed values,
and each bench end to end on a tiny trained model (2 items)."""
import numpy as np
import pytest

from critjax.eval import bench_metrics
from critjax.eval.benches import BENCHES
from critjax.eval.benches.reward_models import compared, parse_score, random_score_chance
from critjax.eval.generation import Generator
from critjax.eval.models import load_model


@pytest.mark.parametrize("text,score", [
    ("Fine answer.\nScore: 7", 7), ("Score: 3 ... on reflection, Score: 9", 9), ("**Score:** 8", 8),
    ("Score: 10/10", 10), ("I give it a score of 6.", 6), ("Rating: 4", 4), ("score=5", 5), ("SCORE 2", 2),
    ("Score: 8.0", 8), ("Score: 7.5", None), ("Score: 0", None), ("Score: 11", None), ("Score: -1", None),
    ("Score: 9\nScore: 12", None),       # the last one decides, and it is out of range
    ("no verdict here, 7/10", None), ("", None), ("Scores: 7", None),
])
def test_parse_score(text, score):
  assert parse_score(text) == score


def test_random_score_chance_by_hand():
  # 1..10: of the 100 ordered pairs, 10 tie and 90 differ, half of them with the first higher: 45/100
  assert random_score_chance() == pytest.approx({"win": 0.45, "tie": 0.10})
  # 1..2: pairs (1,1) (1,2) (2,1) (2,2): one win, two ties
  assert random_score_chance(2) == pytest.approx({"win": 0.25, "tie": 0.5})


def test_an_unparsed_score_makes_every_comparison_it_enters_wrong():
  c, r = compared([[7, None, 5]], [[5, 3, None]])
  assert c.tolist() == [[7, -np.inf, 5]] and r.tolist() == [[5, 3, np.inf]]
  got = bench_metrics.rmbench_correct(c, r)[0]
  assert got.tolist() == [[True, True, False],       # 7 > 5, 7 > 3, 7 vs unparsed
                          [False, False, False],     # unparsed chosen
                          [False, True, False]]      # 5 = 5 is a tie: wrong
  c, r = compared([None], [None])
  assert not (c > r).any()


class Canned:
  """A generator stand-in: text(stage, request id, prompt) -> the judge's output."""

  def __init__(self, text):
    self.text, self.stages = text, []

  def generate(self, stage, requests, sampling):
    self.stages.append(stage)
    return {rid: [self.text(stage, rid, msgs[0]["content"])] for rid, msgs in requests}


def test_rmbench_figures_on_canned_scores():
  b = BENCHES.get("rmbench")()
  items = b.load(2, "chat")
  scores = {0: {"chosen": [9, 5, None], "rejected": [5, 5, 2]}, 1: {"chosen": [3, 3, 3], "rejected": [None, 1, 4]}}

  def text(stage, rid, prompt):
    n = [it.id for it in items].index(rid.rsplit("/", 1)[0])
    side, k = rid.rsplit("/", 1)[1][:-1], int(rid[-1])
    assert getattr(items[n], side)[k] in prompt
    v = scores[n][side][k]
    return "no idea" if v is None else f"Looks right.\nScore: {v}"

  res = b.run(Canned(text), items, {})
  # item 0: c = [9, 5, -inf], r = [5, 5, 2] -> rows TTT / FFT / FFF; item 1: c = [3, 3, 3],
  # r = [+inf, 1, 4] -> every row FTF. Mean M = [[.5, 1, .5], [0, .5, .5], [0, .5, 0]]:
  # hard = (1 + .5 + .5) / 3, normal = (.5 + .5 + 0) / 3, easy = (0 + 0 + .5) / 3
  hard, normal, easy = 2 / 3, 1 / 3, 1 / 6
  want = {"chat/avg": (hard + normal + easy) / 3, "hard": hard, "normal": normal, "easy": easy,
          "total_avg": (hard + normal + easy) / 3}
  assert res.metrics == pytest.approx({**{k: 100 * v for k, v in want.items()}, "parse_failure_rate": 100 * 2 / 12})
  assert res.chance == pytest.approx({k: 45.0 for k in want})
  assert res.items[0]["chosen_scores"] == [9, 5, None] and res.items[1]["correct"][0] == [False, True, False]


def test_rmbench_pairwise_figures_on_canned_verdicts():
  b = BENCHES.get("rmbench_pairwise")()
  items = b.load(2, "safety")          # one of each safety file: one pooled "safety" domain
  assert [it.domain for it in items] == ["safety-refuse", "safety-response"]

  def text(stage, rid, prompt):
    n = [it.id for it in items].index(rid.rsplit("/", 1)[0])
    i, j = int(rid[-3]), int(rid[-1])
    first = items[n].chosen[i] if stage.endswith("_ab") else items[n].rejected[j]
    assert f"[Response A]\n{first}" in prompt
    if n == 0:                        # always names the first response: right once, wrong once
      return "[[A]]"
    if stage.endswith("_ab"):
      return {(1, 1): "unsure", (2, 2): "[[B]]"}.get((i, j), "[[A]]")
    return "[[C]]" if (i, j) == (0, 0) else "[[B]]"

  res = b.run(Canned(text), items, {})
  assert res.items[0]["correct"] == [[False] * 3] * 3
  # item 1: right both orders, except (0, 0) right + tie (counts), (1, 1) unparsed + right (counts,
  # JudgeBench's rule), (2, 2) wrong + right (does not): M = 0.5 everywhere but M[2, 2] = 0
  assert res.items[1]["correct"] == [[True] * 3, [True] * 3, [True, True, False]]
  hard, normal, easy = 0.5, (0.5 + 0.5 + 0) / 3, 0.5
  want = {"safety/avg": (hard + normal + easy) / 3, "hard": hard, "normal": normal, "easy": easy,
          "total_avg": (hard + normal + easy) / 3}
  assert res.metrics == pytest.approx({**{k: 100 * v for k, v in want.items()},
                                       "parse_failure_rate": 100 / 36, "tie_rate": 100 / 36})
  assert res.chance == {k: 25.0 for k in want}


def test_judgebench_pointwise_figures_on_canned_scores():
  b = BENCHES.get("judgebench_pointwise")()
  items = b.load(4, None)              # two pairs of each response model, from a fixed shuffle
  assert len(items) == 4 and len({it.response_model for it in items}) == 2
  # (better, worse): a tie, a win, an unparsed better one, a win
  plan = [(7, 7), (9, 2), (None, 3), (6, 4)]

  def text(stage, rid, prompt):
    n = [it.id for it in items].index(rid[:-2])
    better = items[n].label[0]
    v = plan[n][0] if rid[-1] == better else plan[n][1]
    return "Score: none" if v is None else f"Score: {v}"

  res = b.run(Canned(text), items, {})
  assert [r["correct"] for r in res.items] == [False, True, False, True]
  assert res.metrics["accuracy"] == pytest.approx(50.0)
  assert res.metrics["tie_rate"] == pytest.approx(25.0) and res.metrics["parse_failure_rate"] == pytest.approx(12.5)
  assert res.chance["accuracy"] == pytest.approx(45.0) and res.chance["tie_rate"] == pytest.approx(10.0)


@pytest.fixture(scope="module")
def gen(tiny_run, tmp_path_factory):
  return Generator(load_model(str(tiny_run)), tmp_path_factory.mktemp("eval"), batch_size=16, max_prompt_len=128,
                   progress=False)


@pytest.mark.parametrize("bench,subset,per_item", [("rmbench", "chat,code", 6), ("rmbench_pairwise", "safety", 18),
                                                   ("judgebench_pointwise", None, 2)])
def test_each_bench_runs_on_a_tiny_model(gen, bench, subset, per_item):
  b = BENCHES.get(bench)()
  items = b.load(2, subset)
  assert len(items) == 2
  before = gen.generated_tokens
  res = b.run(gen, items, {"max_new_tokens": 8})
  assert gen.generated_tokens - before <= 8 * per_item * 2 and len(res.items) == 2
  assert res.metrics and all(isinstance(v, float) for v in res.metrics.values())
  assert set(res.chance) <= set(res.metrics) and 0 <= res.metrics["parse_failure_rate"] <= 100


# --- GRM benches (critjax/eval/benches/grm_judge.py) -------------------------------------------------

def test_voted_chance_by_enumeration():
  from critjax.eval.benches.grm_judge import voted_chance
  s = np.arange(1, 11)
  two = (s[:, None] + s[None, :]).ravel()                  # every sum of two scores, 100 equally likely
  assert voted_chance(1) == pytest.approx(0.45)
  assert voted_chance(2) == pytest.approx(float((two[:, None] > two[None, :]).mean()))


def test_judgebench_grm_votes_over_both_orders_by_hand():
  b = BENCHES.get("judgebench_grm")()
  items = b.load(4, None)
  # per item: (outputs with the better response shown first, outputs with it shown second), 2 samples each
  plan = [(["Scores: [[8, 3]]", "no block"], ["Scores: [[4, 6]]", "Scores: [[5, 5]]"]),   # 19 vs 12: right
          (["x", "y"], ["z", "Scores: [[11, 2]]"]),                                      # none valid: wrong
          (["Scores: [[5, 5]]"] * 2, ["Scores: [[5, 5]]"] * 2),                          # tie: wrong
          (["Scores: [[2, 9]]"] * 2, ["Scores: [[9, 2]]"] * 2)]                          # 8 vs 36: wrong
  seen = []

  class Voted:
    def generate(self, stage, requests, sampling):
      assert sampling.num_samples == 2 and sampling.temperature == 0.5
      seen.append(stage)
      out = {}
      for rid, msgs in requests:
        n = [it.id for it in items].index(rid)
        it = items[n]
        better = it.response_A if it.label == "A>B" else it.response_B
        first = msgs[0]["content"].split("[Response 1]\n")[1]
        assert first.startswith(better) == stage.endswith("_bo")
        out[rid] = plan[n][0 if stage.endswith("_bo") else 1]
      return out

  res = b.run(Voted(), items, {"samples": 2})
  assert seen == ["judgebench_grm_bo", "judgebench_grm_ob"]
  assert [r["correct"] for r in res.items] == [True, False, False, False]
  assert res.items[0]["better"] == 19 and res.items[0]["other"] == 12 and res.items[0]["valid"] == 3
  assert res.metrics["accuracy"] == pytest.approx(25.0)
  assert res.metrics["invalid_rate"] == pytest.approx(100 * 5 / 16) and res.metrics["tie_rate"] == pytest.approx(25.0)
  from critjax.eval.benches.grm_judge import voted_chance
  assert res.chance["accuracy"] == pytest.approx(100 * voted_chance(4))


@pytest.mark.parametrize("bench,subset,per_item", [("rmbench_grm", "chat", 18), ("judgebench_grm", None, 2)])
def test_each_grm_bench_runs_on_a_tiny_model(gen, bench, subset, per_item):
  b = BENCHES.get(bench)()
  items = b.load(2, subset)
  before = gen.generated_tokens
  res = b.run(gen, items, {"max_new_tokens": 8})
  assert gen.generated_tokens - before <= 8 * per_item * 2 and len(res.items) == 2
  assert 0 <= res.metrics["invalid_rate"] <= 100 and set(res.chance) <= set(res.metrics)
