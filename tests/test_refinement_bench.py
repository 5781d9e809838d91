"""Refinement benches (critjax/eval/benches/refinement.py) and the scaling bench's self-judged
best-of-k: the verdict parser, each loop's bookkeeping on canned generations (a fake generator)
against figures worked out by hand in the comments, and all three benches end to end on a tiny
trained model (2 items, one round), continued from the cache."""
import types

import numpy as np
import pytest

from critjax.eval.benches import BENCHES
from critjax.eval.benches import refinement as rf
from critjax.eval.generation import Generator
from critjax.eval.models import load_model


class FakeGen:
  """generate() answers from `reply(stage, id, prompt) -> text` and records each stage's ids."""

  def __init__(self, reply):
    self.reply, self.calls = reply, []

  def generate(self, stage, requests, sampling=None):
    self.calls.append((stage, [rid for rid, _ in requests]))
    n = 1 if sampling is None else sampling.num_samples
    out = {}
    for rid, msgs in requests:
      r = self.reply(stage, rid, msgs[-1]["content"])
      out[rid] = list(r) if isinstance(r, (list, tuple)) else [r] * n
    return out


def problem(pid, gold):
  return types.SimpleNamespace(id=pid, question=f"question {pid}?", answer=gold)


@pytest.mark.parametrize("text,verdict", [
    ("Feedback: none\nVerdict: PASS", True), ("verdict: fail", False), ("**Verdict:** PASS", True),
    ("Verdict: **FAIL**", False), ("Verdict: PASSED", True), ("Verdict: FAIL ... on reflection Verdict: PASS", True),
    ("PASS", None), ("The solution passes.", None), ("", None), ("Verdict: maybe", None),
])
def test_parse_verdict(text, verdict):
  assert rf.parse_verdict(text) is verdict


def test_split_verification_takes_the_feedback_before_the_verdict():
  assert rf.split_verification("1. ok\nFeedback: step 2 adds wrong.\n**Verdict:** FAIL") == (False, "step 2 adds wrong.")
  assert rf.split_verification("Item 1 fails.\nVerdict: FAIL") == (False, "Item 1 fails.")   # no label: all but verdicts
  assert rf.split_verification("rambling") == (None, "rambling")


def test_rounds_come_from_subset():
  b = BENCHES.get("rubric_verify")()
  assert len(b.load(1, None)) == 1 and b.rounds == 3
  b.load(1, "2")
  assert b.rounds == 2
  for bad in ("0", "x"):
    with pytest.raises(ValueError, match="refinement rounds"):
      b.load(1, bad)


# a: right at once, PASSes in round 1 and is carried.    b: wrong, FAILs, fixed, then PASSes.
# c: right, but its verdict does not parse (= FAIL), so it is "fixed" to a wrong 8, FAILs, back to 7.
RUBRIC_ITEMS = [problem("a", "5"), problem("b", "4"), problem("c", "7")]
FIRST = {"a": "so The answer is 5.", "b": "The answer is 3.", "c": "The answer is 7."}
VERIFY = {("a", 1): "Feedback: none\nVerdict: PASS", ("b", 1): "Feedback: 2 + 2 is 4, not 3.\nVerdict: FAIL",
          ("c", 1): "looks fine", ("b", 2): "Verdict: PASS", ("c", 2): "Feedback: 8 is too many.\nVerdict: FAIL"}
FIX = {("b", 1): "The answer is 4.", ("c", 1): "The answer is 8.", ("c", 2): "The answer is 7."}


def rubric_reply(stage, rid, prompt):
  if stage == "scaling_greedy":
    return FIRST[rid]
  if stage == "rubric_verify_rubric":
    return f"1. use every number of {rid}"
  r = int(stage.rsplit("_", 1)[1])
  if stage.startswith("rubric_verify_verify_"):
    assert f"use every number of {rid}" in prompt            # the rubric is in every verify prompt
    return VERIFY[rid, r]
  assert stage.startswith("rubric_verify_refine_")
  return FIX[rid, r]


def test_rubric_verify_loop_bookkeeping_by_hand():
  gen = FakeGen(rubric_reply)
  loop = rf.rubric_verify_loop(gen, RUBRIC_ITEMS, rounds=2, max_new=8)
  assert gen.calls == [("scaling_greedy", ["a", "b", "c"]), ("rubric_verify_rubric", ["a", "b", "c"]),
                       ("rubric_verify_verify_1", ["a", "b", "c"]), ("rubric_verify_refine_1", ["b", "c"]),
                       ("rubric_verify_verify_2", ["b", "c"]), ("rubric_verify_refine_2", ["c"])]
  answers = [[rf.final_answer(t) for t in row] for row in loop["texts"]]
  assert answers == [["5", "5", "5"], ["3", "4", "4"], ["7", "8", "7"]]   # a PASS is carried
  assert loop["verdicts"] == [[True], [False, True], [None, False]]
  assert loop["feedback"][1][0] == "2 + 2 is 4, not 3."
  # gold 5, 4, 7
  correct = np.array([[1, 1, 1], [0, 1, 1], [1, 0, 1]], bool)
  m = rf.refinement_metrics(correct, answers)
  third = 100 / 3
  want = {"acc_t1": 2 * third, "acc_t2": 2 * third, "acc_t3": 100.0,
          "delta_i2c_t1_t2": third, "delta_c2i_t1_t2": third,     # b up, c down
          "delta_i2c_t2_t3": third, "delta_c2i_t2_t3": 0.0,       # c back up
          "delta": third, "delta_i2c": third, "delta_c2i": 0.0,    # t1 -> t3: b only
          "changed_t1_t2": 2 * third, "changed_t2_t3": third,
          "no_answer_t1": 0.0, "no_answer_t2": 0.0, "no_answer_t3": 0.0}
  assert m == pytest.approx(want)
  # verifications (label = the verified answer right?): a1 PASS/1 ok, b1 FAIL/0 ok, b2 PASS/1 ok,
  # c1 unparsed=FAIL/1 wrong, c2 FAIL/0 ok -> 4/5; on right answers 2/3, on wrong ones 2/2
  v = rf.verifier_metrics(loop["verdicts"], correct, rounds=2)
  assert v == pytest.approx({"verifier_acc": 80.0, "verifier_acc_on_correct": 2 * third,
                             "verifier_acc_on_incorrect": 100.0, "verdict_unparsed_rate": 20.0,
                             "in_loop_r1": 100.0, "pass_rate_r1": third, "in_loop_r2": 2 * third, "pass_rate_r2": 50.0})
  # labels 1, 0, 1, 1, 0: a constant PASS is right 3 times in 5
  assert rf.verifier_chance(loop["verdicts"], correct) == pytest.approx({"verifier_acc": 50.0,
                                                                         "verifier_acc_majority_class": 60.0})


def test_self_refine_loop_chains_untargeted_rounds():
  seen = {}

  def reply(stage, rid, prompt):
    seen[stage, rid] = prompt
    if stage == "scaling_greedy":
      return f"{rid} first"
    r = stage.rsplit("_", 1)[1]
    return f"{rid} critique {r}" if "critique" in stage else f"{rid} solution {r}"

  gen = FakeGen(reply)
  loop = rf.self_refine_loop(gen, [problem("p", "1"), problem("q", "2")], rounds=2, max_new=8)
  assert [s for s, _ in gen.calls] == ["scaling_greedy", "self_refine_critique_1", "self_refine_refine_1",
                                       "self_refine_critique_2", "self_refine_refine_2"]
  assert all(ids == ["p", "q"] for _, ids in gen.calls)            # nobody leaves this loop
  assert loop["texts"][0] == ["p first", "p solution 1", "p solution 2"]
  assert loop["critiques"][1] == ["q critique 1", "q critique 2"]
  assert "p solution 1" in seen["self_refine_critique_2", "p"]      # round 2 reviews round 1's answer
  assert "p critique 2" in seen["self_refine_refine_2", "p"] and "p solution 1" in seen["self_refine_refine_2", "p"]
  for word in ("wrong", "incorrect", "mistake", "error"):           # untargeted: no hint of correctness
    assert word not in rf.CRITIQUE_PROMPT.lower() and word not in rf.REFINE_PROMPT.lower()


def test_refinement_metrics_count_a_missing_answer_wrong_and_changed():
  # p: no number, then 3 (right); q: 2 and 2, both right
  m = rf.refinement_metrics([[0, 1], [1, 1]], [["", "3"], ["2", "2.0"]])
  assert m == pytest.approx({"acc_t1": 50.0, "acc_t2": 100.0, "no_answer_t1": 50.0, "no_answer_t2": 0.0,
                             "delta_i2c_t1_t2": 50.0, "delta_c2i_t1_t2": 0.0, "changed_t1_t2": 50.0,
                             "delta": 50.0, "delta_i2c": 50.0, "delta_c2i": 0.0})


def test_scaling_best_of_k_with_the_self_judge_by_hand():
  # item 0 (gold 5): samples 4, 5 judged incorrect, correct. item 1 (gold 7): samples 7, (no number)
  # judged unparsed (score 0), correct (score 1).
  samples = {"i0": ["The answer is 4.", "The answer is 5."], "i1": ["The answer is 7.", "no number here"]}
  judge = {"i0#0": "Judgment: incorrect", "i0#1": "Judgment: correct", "i1#0": "hmm", "i1#1": "Judgment: correct"}

  def reply(stage, rid, prompt):
    return {"scaling_greedy": "The answer is 5.", "scaling_samples": samples.get(rid), "scaling_judge": judge.get(rid)}[stage]

  b = BENCHES.get("scaling")()
  b.n = 2
  r = b.run(FakeGen(reply), [problem("i0", "5"), problem("i1", "7")], {"max_new_tokens": 8})
  m = r.metrics
  # bo@2: i0 takes sample 2 (right), i1 sample 2 (wrong) -> 50. wmaj@2: i0 "5" (weight 1) right; i1 "7"
  # (weight 0) is the only vote, the missing answer casts none -> 100. maj@2: i0 ties 4/5, first (4)
  # wins -> wrong; i1 right -> 50. judge: s0 right, s1 right, s2 (unparsed = incorrect on a right
  # answer) wrong, s3 wrong -> 50; 1 of 4 unparsed; 1 of 4 samples has no number.
  assert m == pytest.approx({"greedy_acc": 50.0, "pass@1": 50.0, "pass@2": 100.0, "maj@1": 50.0, "maj@2": 50.0,
                             "bo@2": 50.0, "wmaj@2": 100.0, "judge_acc": 50.0, "judge_acc_on_correct": 50.0,
                             "judge_acc_on_incorrect": 50.0, "judge_unparsed_rate": 25.0, "no_answer_rate": 25.0})
  assert r.chance == {"bo@2": 50.0, "judge_acc": 50.0}
  assert r.curves["bo@k"] == {"x": [1, 2], "y": [50.0, 50.0]} and r.curves["wmaj@k"]["y"] == [50.0, 100.0]
  assert r.items[1]["verdicts"] == [None, True]


@pytest.fixture(scope="module")
def run_dir(tiny_run):
  return tiny_run


def test_refinement_and_scaling_benches_run_on_a_tiny_model(run_dir, tmp_path):
  """End to end on 2 items and one round (the tiny model's text is noise: this checks plumbing,
  prompts, parsing and figures), then the same run again from the cache generates nothing."""
  model = load_model(str(run_dir))
  gen = Generator(model, tmp_path, batch_size=2, max_prompt_len=128, progress=False)
  results = {}
  for name, subset in (("self_refine", "1"), ("rubric_verify", "1"), ("scaling", "2")):
    b = BENCHES.get(name)()
    items = b.load(2, subset)
    results[name] = r = b.run(gen, items, {"max_new_tokens": 8})
    assert len(r.items) == 2 and r.metrics and all(isinstance(v, float) for v in r.metrics.values())
  for name in ("self_refine", "rubric_verify"):
    r = results[name]
    assert set(r.curves) == {"accuracy", "i→c", "c→i"} and r.curves["accuracy"]["x"] == [1, 2]
    assert all(len(row["answers"]) == 2 for row in r.items)
  v = results["rubric_verify"]
  assert all(len(row["verdicts"]) == 1 for row in v.items) and "verifier_acc" in v.metrics
  assert set(results["scaling"].curves) == {"pass@k", "maj@k", "bo@k", "wmaj@k"}
  again = Generator(model, tmp_path, batch_size=2, max_prompt_len=128, progress=False)
  b = BENCHES.get("rubric_verify")()
  assert b.run(again, b.load(2, "1"), {"max_new_tokens": 8}).items == v.items and again.generated_tokens == 0
