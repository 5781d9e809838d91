"""MetaCritique benches (critjax/eval/benches/metacritique_bench.py): the claim-list and verdict
parsers, the coin judge's exact expectation and the label-agreement metric on hand-computed cases,
both benches through a scripted generator (figures by hand), then on a tiny trained model."""
from __future__ import annotations

import math

import numpy as np
import pytest

from critjax.eval.benches import BENCHES
from critjax.eval.benches import metacritique_bench as mb
from critjax.eval.generation import Generator
from critjax.eval.models import load_model


def test_parse_aius_reads_numbered_and_bulleted_lists():
  text = ("Here are the claims:\n1. The answer is wrong.\n2) Flour is not sweet.\n\n(3) **Sugar** is sweet.\n"
          "Note: done")
  assert mb.parse_aius(text) == ["The answer is wrong.", "Flour is not sweet.", "Sugar is sweet."]
  got = mb.parse_aius("- a claim\n* another\n\u2022 third\nClaim 4: fourth")
  assert got == ["a claim", "another", "third", "fourth"]
  assert mb.parse_aius("1. Same.\n2. same.\n3. Same.") == ["Same."]       # a loop's repeats counted once
  assert mb.parse_aius("1.\n2. -\n-") == []                                # markers with no words
  assert mb.parse_aius("The answer is wrong. It should say 4.") == []       # prose: no list, unparsed
  assert mb.parse_aius("**Claims:**\n1.The answer is 4.\n1.5 is not 2.") == ["The answer is 4."]
  assert mb.parse_aius("") == []


def test_parse_verdict():
  assert mb.parse_verdict("The claim holds.\nVerdict: true") is True
  assert mb.parse_verdict("Verdict: **False**") is False
  assert mb.parse_verdict("Verdict: true ... on reflection, Verdict: false") is False   # the last one
  assert mb.parse_verdict("Therefore, the claim is true.") is True                     # upstream wording
  assert mb.parse_verdict("So the claim is false. verdict:true") is True                # Verdict: wins
  assert mb.parse_verdict(" False. ") is False and mb.parse_verdict("TRUE") is True
  assert mb.parse_verdict("It is hard to say.") is None and mb.parse_verdict("true or false") is None
  assert mb.parse_verdict("") is None


def test_coin_judge_expectation_by_hand():
  # item 1: m = 1, n = 1: P, R in {0, 1} each w.p. 1/2; F1 = 1 only when both are 1 -> 1/4.
  # item 2: m = 2, n = 1: A ~ Bin(2, .5) = 0, 1, 2 w.p. 1/4, 1/2, 1/4; B = 1 w.p. 1/2.
  #   A = 1: P = 1/2, R = 1 -> F1 = 2/3;  A = 2: F1 = 1  ->  E = 1/2 (1/2 * 2/3 + 1/4 * 1) = 7/24.
  c = mb.coin_meta_scores([1, 2], [1, 1])
  assert c["meta_p"] == pytest.approx(0.5) and c["meta_r"] == pytest.approx(0.5)
  assert c["meta_f1"] == pytest.approx((1 / 4 + 7 / 24) / 2)              # 13/48
  # an item with no extracted claim scores P = 0, F1 = 0, as the judge's own figure does
  c = mb.coin_meta_scores([1, 0], [1, 3])
  assert (c["meta_p"], c["meta_r"], c["meta_f1"]) == pytest.approx((0.25, 0.5, 0.125))
  # p = 1 (always "true"): every P = R = 1
  assert mb.coin_meta_scores([3, 2], [4, 1], p=1.0)["meta_f1"] == pytest.approx(1.0)
  with pytest.raises(ValueError):
    mb.coin_meta_scores([1], [0])


def test_label_agreement_by_hand():
  # human T T T F, judge T T F T: right on 2 of 4.  class T: TP 2, FP 1, FN 1 -> 4/6;
  # class F: TP 0, FP 1, FN 1 -> 0; macro 1/3.  majority rate 3/4 -> majority macro-F1 (3/4)/(7/4) = 3/7;
  # coin: (.75 / 1.25 + .25 / .75) / 2 = (0.6 + 1/3) / 2.
  a = mb.label_agreement([True, True, True, False], [True, True, False, True])
  assert a["acc"] == 0.5 and a["macro_f1"] == pytest.approx(1 / 3)
  assert a["majority_rate"] == 0.75 and a["macro_f1_majority"] == pytest.approx(3 / 7)
  assert a["macro_f1_coin"] == pytest.approx((0.6 + 1 / 3) / 2)
  # an unparsed judge verdict (None) counts false: wrong against a human "true"
  b = mb.label_agreement([True, False], [None, False])
  assert b["acc"] == 0.5 and b["macro_f1"] == pytest.approx((0 + 2 / 3) / 2)   # T: 0; F: TP 1, FP 1 -> 2/3
  assert mb.label_agreement([None, True], [False, True])["acc"] == 1.0     # a human None is "not true"
  assert mb.label_agreement([True, True], [True, True])["macro_f1"] == 1.0    # only one class present
  with pytest.raises(ValueError):
    mb.label_agreement([True], [])


class Scripted:
  """A generator answering by (stage, request id); records each stage's request ids."""

  def __init__(self, answer):
    self.answer, self.calls = answer, []

  def generate(self, stage, requests, sampling):
    self.calls.append((stage, [rid for rid, _ in requests]))
    return {rid: [self.answer(stage, rid)] for rid, _ in requests}


def test_leaderboard_bench_figures_by_hand():
  def answer(stage, rid):
    if stage == "metacritique_aius":
      return "Claims:\n1. A.\n2. B." if rid == "0" else "I cannot split this."     # item 1: unparsed
    if stage == "metacritique_precision":
      return "Verdict: true" if rid.endswith("/0") else "unsure"                  # 2nd claim: unparsed
    item, k = rid.split("/")[0], int(rid.split("/")[-1])
    return "Verdict: true" if item == "0" or k == 0 else "The claim is false."
  b = BENCHES.get("metacritique")()
  items = b.load(2, None)
  n1 = len(items[1]["reference_aius"])
  gen = Scripted(answer)
  res = b.run(gen, items, {"max_new_tokens": 8})
  assert [s for s, _ in gen.calls] == ["metacritique_aius", "metacritique_precision", "metacritique_recall"]
  assert gen.calls[1][1] == ["0/hyp/p/0", "0/hyp/p/1"]
  assert gen.calls[2][1][0] == "0/hyp/r/0" and len(gen.calls[2][1]) == len(items[0]["reference_aius"]) + n1
  # item 0: P = 1/2, R = 1, F1 = 2/3; item 1: P = 0 (no claims), R = 1/n1, F1 = 0
  m = res.metrics
  assert m["meta_p"] == pytest.approx(25.0) and m["meta_r"] == pytest.approx(100 * (1 + 1 / n1) / 2)
  assert m["meta_f1"] == pytest.approx(100 / 3)
  assert m["aius_unparsed_rate"] == 50.0 and m["precision_unparsed_rate"] == 50.0
  assert m["recall_unparsed_rate"] == 0.0 and m["aius_per_item"] == 1.0
  assert res.items[0]["aius"] == ["A.", "B."] and res.items[0]["precision_labels"] == [True, None]
  # coin chance on m = (2, 0): meta_p = (1/2 + 0) / 2
  assert res.chance["meta_p"] == pytest.approx(25.0) and res.chance["meta_r"] == pytest.approx(50.0)
  assert res.chance["leaderboard/AUTO-J/meta_f1"] == 71.14
  with pytest.raises(ValueError, match="no subsets"):
    b.load(2, "x")


def test_agreement_bench_always_true_judge():
  b = BENCHES.get("metacritique_agreement")()
  items = b.load(2, None)
  gen = Scripted(lambda stage, rid: "Verdict: true")
  res = b.run(gen, items, {"max_new_tokens": 8})
  slots = ("human_critique", "llm1_critique", "llm2_critique")
  assert [s for s, _ in gen.calls] == ["metacritique_agreement_precision", "metacritique_agreement_recall"]
  assert gen.calls[0][1][0] == "0/human_critique/p/0"
  hp = [x for it in items for s in slots for x in it[s]["precision_labels"]]
  hr = [x for it in items for s in slots for x in it[s]["recall_labels"]]
  assert len(gen.calls[0][1]) == len(hp) and len(gen.calls[1][1]) == len(hr)
  m = res.metrics
  assert m["precision/acc"] == pytest.approx(100 * np.mean(hp)) and m["recall/acc"] == pytest.approx(100 * np.mean(hr))
  assert m["judge/all/meta_f1"] == pytest.approx(100.0) and m["precision/unparsed_rate"] == 0.0
  # the human figures are the stored per-critique scores' means
  for s in slots:
    assert m[f"human/{s}/meta_f1"] == pytest.approx(100 * np.mean([it[s]["f1_score"] for it in items]))
  assert res.chance["precision/acc_coin"] == 50.0 and len(res.items) == 6
  with pytest.raises(ValueError, match="unknown critique slot"):
    b.load(2, "gpt5_critique")


@pytest.fixture(scope="module")
def gen(tiny_run, tmp_path_factory):
  return Generator(load_model(str(tiny_run)), tmp_path_factory.mktemp("eval"), batch_size=16, max_prompt_len=256,
                   progress=False)


@pytest.mark.parametrize("bench,subset", [("metacritique", None), ("metacritique_agreement", "human_critique")])
def test_benches_run_on_a_tiny_model(gen, bench, subset):
  b = BENCHES.get(bench)()
  items = b.load(2, subset)
  res = b.run(gen, items, {"max_new_tokens": 8})
  assert res.metrics and all(isinstance(v, float) for v in res.metrics.values())
  key = "meta_f1" if bench == "metacritique" else "judge/all/meta_f1"
  assert 0.0 <= res.metrics[key] <= 100.0 and not math.isnan(res.chance[key])
