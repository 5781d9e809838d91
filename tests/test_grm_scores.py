"""GRM scores (DeepSeek-GRM / SPCT, arXiv 2504.02495): parser, correctness rule, reward, voting,
shuffling and the scaling curve against hand-computed cases; the GRM toy's examples and oracle."""
import json

import numpy as np
import pytest

from critjax.data import templates as tp
from critjax.data.arithmetic import ArithmeticTask
from critjax.data.grm_toy import GRMToy, label_score, wrong_steps
from critjax.rl import grm_scores as gs


# --- parser --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, n, scores, invalid", [
    ("P: check 3 columns ; R1: ok ; Scores: [[7, 3]]", 2, (7, 3), None),
    ("critique...\nscores:[[ 10,1 ,5 ]]\n<eos> trailing", 3, (10, 1, 5), None),
    ("Scores: [[07]]", 1, (7,), None),
    ("Scores: [[s_1, s_2]] echoed, then Scores: [[2, 9]]", 2, (2, 9), None),   # non-numeric block ignored
    ("no scores here", 2, None, "missing"),
    ("", 2, None, "missing"),
    ("\x00}}]][[Scores: [[ ,, ]] {{", 2, None, "missing"),                       # garbage
    ("Scores: [7, 3]", 2, None, "missing"),                                      # single bracket
    ("Scores: [[7, 3]] ... Scores: [[7, 3]]", 2, None, "duplicated"),
    ("Scores: [[7, 3]] Scores: [[3, 7]]", 2, None, "duplicated"),
    ("Scores: [[7, 3, 2]]", 2, None, "wrong_count"),
    ("Scores: [[7]]", 2, None, "wrong_count"),
    ("Scores: [[]]", 1, None, "wrong_count"),
    ("Scores: [[0, 3]]", 2, None, "out_of_range"),
    ("Scores: [[11, 3]]", 2, None, "out_of_range"),
    ("Scores: [[-3, 3]]", 2, None, "out_of_range"),
    ("Scores: [[7.5, 3]]", 2, None, "out_of_range"),
    ("Scores: [[7, 3, 99]]", 2, None, "wrong_count"),                           # count checked before range
])
def test_parse_scores(text, n, scores, invalid):
  p = gs.parse_scores(text, n)
  assert (p.scores, p.invalid, p.valid) == (scores, invalid, scores is not None)


def test_parse_scores_is_total_and_round_trips():
  rng = np.random.default_rng(0)
  alphabet = list("Scores:[], 0123456789.-+ \n")
  for _ in range(300):
    text = "".join(rng.choice(alphabet, size=int(rng.integers(0, 40))))
    p = gs.parse_scores(text, 2)
    assert p.valid != (p.invalid is not None) and p.invalid in (None, *gs.INVALID_REASONS)
  assert gs.parse_scores(gs.format_scores([4, 1, 7, 10]), 4).scores == (4, 1, 7, 10)
  with pytest.raises(ValueError, match="n=0"):
    gs.parse_scores("Scores: [[1]]", 0)


# --- correctness rule and reward -----------------------------------------------------------------

def test_trajectory_correct():
  assert gs.trajectory_correct((7, 3), best=0)
  assert not gs.trajectory_correct((7, 3), best=1)
  assert not gs.trajectory_correct((7, 7), best=0)                 # a tie is not strictly highest
  assert gs.trajectory_correct((2, 9, 8, 1), best=1)
  assert not gs.trajectory_correct((2, 9, 9, 1), best=1)
  assert gs.trajectory_correct((7,), label=7) and not gs.trajectory_correct((7,), label=6)
  assert gs.trajectory_correct(gs.GRMScores((1, 5)), best=1)
  assert not gs.trajectory_correct(gs.GRMScores(None, "missing"), best=0)
  assert not gs.trajectory_correct(None)
  with pytest.raises(ValueError, match="label is required"):
    gs.trajectory_correct((7,))
  with pytest.raises(ValueError, match="best=2"):
    gs.trajectory_correct((7, 3), best=2)
  with pytest.raises(ValueError, match="best=None"):
    gs.trajectory_correct((7, 3))


def test_grm_reward_and_invalid_counts():
  parsed = [gs.parse_scores(t, n) for t, n in [("Scores: [[9, 2]]", 2), ("Scores: [[2, 9]]", 2), ("junk", 2),
                                               ("Scores: [[4]]", 1), ("Scores: [[5]]", 1), ("Scores: [[0, 1]]", 2)]]
  reward, invalid = gs.grm_reward(parsed, best=[0, 0, 0, None, None, 1], label=[None, None, None, 4, 3, None])
  np.testing.assert_array_equal(reward, [1, -1, -1, 1, -1, -1])
  assert reward.dtype == np.float32
  np.testing.assert_array_equal(invalid, [False, False, True, False, False, True])
  assert gs.invalid_counts(parsed) == {"missing": 1, "duplicated": 0, "wrong_count": 0, "out_of_range": 1, "total": 2}
  with pytest.raises(ValueError, match="6 trajectories but 2 best"):
    gs.grm_reward(parsed, best=[0, 0])


# --- voting --------------------------------------------------------------------------------------

SCORES_KN = np.array([[8, 3, 5],
                      [2, 9, 4],
                      [7, 6, 1],
                      [0, 0, 0]])      # sample 3 invalid
VALID_K = np.array([True, True, True, False])
META_K = np.array([0.9, 0.1, 0.5, 5.0])


def test_vote_hand_sums():
  np.testing.assert_array_equal(gs.vote(SCORES_KN, VALID_K), [17, 18, 10])
  np.testing.assert_array_equal(gs.vote(SCORES_KN, [False] * 4), [0, 0, 0])
  with pytest.raises(ValueError, match=r"\(K, n\)"):
    gs.vote(SCORES_KN, VALID_K[:3])


def test_meta_vote_hand_sums_and_refusals():
  # default k_meta = 4 // 2 = 2; the invalid sample's meta score 5.0 does not earn it a place.
  np.testing.assert_array_equal(gs.meta_vote(SCORES_KN, VALID_K, META_K), [15, 9, 6])      # samples 0, 2
  np.testing.assert_array_equal(gs.meta_vote(SCORES_KN, VALID_K, META_K, k_meta=1), [8, 3, 5])
  np.testing.assert_array_equal(gs.meta_vote(SCORES_KN, VALID_K, META_K, k_meta=4), [17, 18, 10])
  # equal meta scores: the earlier sample ranks higher
  np.testing.assert_array_equal(gs.meta_vote(SCORES_KN, VALID_K, [1, 1, 1, 1], k_meta=1), [8, 3, 5])
  assert gs.default_k_meta(1) == 1 and gs.default_k_meta(5) == 2 and gs.default_k_meta(32) == 16
  for bad in (0, 5, -1):
    with pytest.raises(ValueError, match=f"k_meta={bad} must be in"):
      gs.meta_vote(SCORES_KN, VALID_K, META_K, k_meta=bad)
  with pytest.raises(ValueError, match="meta_k must be"):
    gs.meta_vote(SCORES_KN, VALID_K, META_K[:2])


def test_strict_argmax_tie_rule():
  assert gs.strict_argmax([17, 18, 10]) == 1
  assert gs.strict_argmax([18, 18, 10]) is None
  assert gs.strict_argmax([0, 0]) is None


# --- shuffling -----------------------------------------------------------------------------------

def test_shuffle_round_trip():
  responses = ["r0", "r1", "r2", "r3"]
  shuffled, perm = gs.shuffle_responses(responses, np.random.default_rng(3))
  assert [responses[i] for i in perm] == shuffled and sorted(shuffled) == responses
  true_scores = {"r0": 4, "r1": 9, "r2": 1, "r3": 6}
  shown = gs.GRMScores(tuple(true_scores[r] for r in shuffled))        # a GRM scoring in shown order
  assert gs.unshuffle_scores(shown, perm) == gs.GRMScores((4, 9, 1, 6))
  assert gs.unshuffle_scores(tuple(shown.scores), perm) == (4, 9, 1, 6)
  assert shuffled[np.argsort(perm)[1]] == "r1"                          # where the best (index 1) shows
  missing = gs.GRMScores(None, "missing")
  assert gs.unshuffle_scores(missing, perm) is missing
  with pytest.raises(ValueError, match="not a permutation"):
    gs.unshuffle_scores((1, 2), [0, 0])


# --- scaling curve -------------------------------------------------------------------------------

def test_scaling_curve_hand_array():
  # N = 2 problems, K_max = 4 samples, n = 2 responses; best = 0 then 1.
  scores = np.array([[[6, 5], [3, 5], [9, 1], [2, 8]],
                     [[5, 5], [1, 9], [1, 1], [7, 2]]])
  valid = np.array([[True, True, True, True],
                    [True, True, False, True]])
  meta = np.array([[0.2, 0.9, 0.1, 0.8],
                   [0.5, 0.4, 0.9, 0.3]])
  greedy = np.array([[7, 2], [8, 3]])
  out = gs.scaling_curve(scores, valid, [0, 1], meta_nk=meta, greedy_nn=greedy, greedy_valid_n=[True, False])
  # voting@1: p0 (6,5) right, p1 (5,5) tie -> wrong. @2: p0 (9,10) wrong, p1 (6,14) right.
  # @4: p0 (20,19) right; p1 skips the invalid sample: (13,16) right.
  assert out["k"] == [1, 2, 4] and out["voting"] == [0.5, 0.5, 1.0]
  # meta@1 (k_meta 1): as voting@1. meta@2 (k_meta 1): p0 sample 1 (3,5) wrong; p1 sample 0 tie.
  # meta@4 (k_meta 2): p0 samples 1, 3 -> (5, 13) wrong; p1 valid 0, 1 (invalid 2 ranks last) -> (6, 14) right.
  assert out["k_meta"] == [1, 1, 2] and out["meta_voting"] == [0.5, 0.0, 0.5]
  assert out["greedy"] == 0.5                          # p0 right, p1's greedy trajectory invalid
  assert out["invalid_rate"] == 0.125 and (out["problems"], out["samples"], out["responses"]) == (2, 4, 2)
  assert out["tie_rule"] == gs.TIE_RULE
  json.dumps(out)                                      # ready to write as JSON
  assert gs.scaling_curve(scores, valid, [0, 1], ks=[3])["voting"] == [1.0]   # p0 (18, 11), p1 (6, 14)
  with pytest.raises(ValueError, match=r"ks=\[8\]"):
    gs.scaling_curve(scores, valid, [0, 1], ks=[8])
  with pytest.raises(ValueError, match="n >= 2"):
    gs.scaling_curve(scores[:, :, :1], valid, [0, 0])
  with pytest.raises(ValueError, match="meta_nk must be"):
    gs.scaling_curve(scores, valid, [0, 1], meta_nk=meta[:, :2])


# --- the GRM toy ---------------------------------------------------------------------------------

def _recount(task, a, b, completion):
  got, want = task.steps_of(completion), task.solution_steps(a, b)
  return sum(g != w for g, w in zip(got, want)) + abs(len(got) - len(want))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_toy_examples_have_known_wrong_steps_and_a_unique_best(n):
  task = ArithmeticTask(min_digits=1, max_digits=3)
  toy = GRMToy(task=task, n_responses=n)
  for ex in toy.examples(seed=7, start=0, count=60):
    a, b = ex.a, ex.b
    assert len(ex.responses) == len(ex.wrong) == n
    for response, w in zip(ex.responses, ex.wrong):
      assert _recount(task, a, b, response) == w == wrong_steps(task, a, b, response)
      assert (task.first_wrong_step(a, b, response) == -1) == (w == 0)
      assert (task.reward(response, task.answer(a, b)) == 1.0) == (w == 0)    # the answer follows the steps
    if n == 1:
      assert ex.best is None and ex.label == label_score(ex.wrong[0], len(task.solution_steps(a, b)))
    else:
      assert ex.label is None and sorted(ex.wrong).count(min(ex.wrong)) == 1 and ex.wrong[ex.best] == min(ex.wrong)
  assert toy.example(7, 5) == toy.example(7, 5)                             # a pure function of (seed, index)


def test_toy_slipped_solution_by_hand():
  toy = GRMToy()
  assert toy.slipped_solution(358, 267, set(), np.random.default_rng(0)) == ArithmeticTask().solution(358, 267)
  slipped = toy.slipped_solution(358, 267, {1}, np.random.default_rng(0))
  assert slipped in (" 8+7=15 c1 ; 5+6+1=11 c1 ; 3+2+1=6 c0 ; A: 615", " 8+7=15 c1 ; 5+6+1=13 c1 ; 3+2+1=6 c0 ; A: 635")


def test_label_score():
  assert [label_score(w, 3) for w in range(4)] == [10, 7, 4, 1]
  assert [label_score(w, 2) for w in range(3)] == [10, 6, 1]
  assert [label_score(w, 1) for w in range(2)] == [10, 1]
  with pytest.raises(ValueError, match="columns=10"):
    label_score(0, 10)


def test_toy_refusals():
  with pytest.raises(ValueError, match="n_responses=5"):
    GRMToy(n_responses=5)
  with pytest.raises(ValueError, match="task.answer_first"):
    GRMToy(task=ArithmeticTask(answer_first=True))


@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("principles", [True, False])
def test_oracle_trajectory_parses_to_a_correct_trajectory(n, principles):
  toy = GRMToy(n_responses=n)
  for ex in toy.examples(seed=1, start=0, count=40):
    text = toy.oracle_trajectory(ex.a, ex.b, ex.responses, principles=principles)
    assert text.startswith(" P: check ") == principles
    parsed = gs.parse_scores(text, n)
    assert gs.trajectory_correct(parsed, best=ex.best, label=ex.label)
    reward, invalid = gs.grm_reward([parsed], best=[ex.best], label=[ex.label])
    assert reward.tolist() == [1.0] and not invalid.any()


def test_oracle_trajectory_by_hand():
  toy = GRMToy()
  right = ArithmeticTask().solution(358, 267)
  slip = " 8+7=15 c1 ; 5+6+1=13 c1 ; 3+2+1=6 c0 ; A: 635"
  assert toy.oracle_trajectory(358, 267, [right, slip]) == (
      " P: check 3 columns ; 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; R1: ok ok ok ; R2: ok bad ok ; Scores: [[10, 7]]")
  assert toy.oracle_trajectory(358, 267, [slip], principles=False) == (
      " 8+7=15 c1 ; 5+6+1=12 c1 ; 3+2+1=6 c0 ; R1: ok bad ok ; Scores: [[7]]")


# --- templates -----------------------------------------------------------------------------------

def test_grm_templates():
  assert tp.get_template("grm_arith") is tp.GRM_ARITH and tp.get_template("grm_chat") is tp.GRM_CHAT
  assert tp.GRM_ARITH.prompt("358+267", [" x ; A: 1", " y ; A: 2"], hint_best=1) == (
      "Q: 358+267 =\nR1: x ; A: 1\nR2: y ; A: 2\nBest: R2\nJudge:")
  chat = tp.GRM_CHAT.prompt("What is 2+2?", ["4", "5"])
  assert "[Response 2]\n5\n[End of Response 2]" in chat and chat.endswith("Principles:\n")
  assert "Scores: [[" in tp.GRM_CHAT.instruction
  assert not gs.parse_scores(tp.GRM_CHAT.instruction, 2).valid        # echoing the format line scores nothing
  assert "Scores: [[" in tp.GRM_ARITH.vocabulary and " ok " in tp.GRM_ARITH.vocabulary
  with pytest.raises(ValueError, match="hint_best=2"):
    tp.GRM_ARITH.prompt("1+2", ["a", "b"], hint_best=2)
  with pytest.raises(ValueError, match=r"template 'g': response_format has placeholders \['response'\]"):
    tp.GRMTemplate(name="g", first_turn="{problem}", response_format="{response}", instruction="go")
  with pytest.raises(ValueError, match="template 'g2': instruction is empty"):
    tp.GRMTemplate(name="g2", first_turn="{problem}", response_format="{index}{response}", instruction=" ")
