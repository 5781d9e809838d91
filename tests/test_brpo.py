"""BRPO's bootstrapped rewards and the pairwise judge's reward and position bias, by hand."""
import numpy as np
import pytest

from critjax.rl import brpo
from critjax.rl.grm_scores import GRMScores, parse_scores

V = lambda a, b: GRMScores((a, b))
BAD = GRMScores(None, "missing")


def test_rewards_advantages_and_the_filter_by_hand():
  # G = 4. Query 0: ref = 1; rollout 0 wins both orders (+1), 2 wins only shown first (-1),
  # 3 loses both (-1): sum -1, |-1| / 4 = 0.25 <= 0.6, kept.
  # Query 1: ref = 0; all three others win both: sum 3, 3 / 4 = 0.75 > 0.6, dropped.
  # Query 2: ref = 3; all lose: sum -3, dropped.
  fwd = np.array([[1, 0, 1, 0], [0, 1, 1, 1], [0, 0, 0, 1]], bool)
  rev = np.array([[1, 1, 0, 0], [0, 1, 1, 1], [0, 0, 0, 1]], bool)
  out = brpo.brpo_rewards(fwd, rev, np.array([1, 0, 3]))
  np.testing.assert_array_equal(out.reward_bg, [[1, 0, -1, -1], [0, 1, 1, 1], [-1, -1, -1, 0]])
  np.testing.assert_array_equal(out.keep_b, [True, False, False])
  np.testing.assert_array_equal(out.adv_bg, [[1, 0, -1, -1], [0, 0, 0, 0], [0, 0, 0, 0]])
  np.testing.assert_array_equal(out.valid_bg, [[1, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
  # judged rollouts: 9; winning in exactly one order: query 0 rollout 2 only
  assert out.inconsistent == pytest.approx(1 / 9)


def test_threshold_is_inclusive_and_checked_shapes():
  # G = 5, ref 0, others +1 +1 +1 -1: sum 2, 2 / 5 = 0.4 kept; at threshold 0.4 still kept; 0.39 dropped
  fwd = rev = np.array([[0, 1, 1, 1, 0]], bool)
  assert brpo.brpo_rewards(fwd, rev, np.array([0])).keep_b.tolist() == [True]
  assert brpo.brpo_rewards(fwd, rev, np.array([0]), threshold=0.4).keep_b.tolist() == [True]
  assert brpo.brpo_rewards(fwd, rev, np.array([0]), threshold=0.39).keep_b.tolist() == [False]
  with pytest.raises(ValueError, match="ref_b must index"):
    brpo.brpo_rewards(fwd, rev, np.array([5]))
  with pytest.raises(ValueError, match=r"\(B, G\)"):
    brpo.brpo_rewards(fwd[0], rev[0], np.array([0]))


def test_references_and_the_judged_pairs():
  with pytest.raises(ValueError, match="G >= 2"):
    brpo.pick_references(3, 1, np.random.default_rng(0))
  ref = brpo.pick_references(2000, 4, np.random.default_rng(0))
  assert set(ref.tolist()) == {0, 1, 2, 3} and abs(np.bincount(ref) / 2000 - 0.25).max() < 0.05
  assert brpo.judged_pairs(np.array([1]), 3) == [(0, 0, 0), (0, 0, 1), (0, 2, 0), (0, 2, 1)]


def test_wins_from_parsed_judgments():
  parsed = [parse_scores(" Scores: [[7, 3]]", 2), parse_scores(" Scores: [[3, 3]]", 2),
            parse_scores(" no block", 2), parse_scores(" Scores: [[2, 9]]", 2)]
  assert brpo.first_wins(parsed).tolist() == [True, False, False, False]
  assert brpo.second_wins(parsed).tolist() == [False, False, False, True]


def test_pairwise_judge_reward_by_hand():
  parsed = [V(8, 2), V(8, 2), V(5, 5), BAD, V(1, 9)]
  preferred = [0, 1, 0, 0, 1]
  assert brpo.pairwise_judge_reward(parsed, preferred).tolist() == [1.0, 0.0, 0.0, -1.0, 1.0]
  with pytest.raises(ValueError, match="preferred"):
    brpo.pairwise_judge_reward([V(1, 2)], [2])


def test_position_bias_by_hand():
  # pair 0: fwd prefers A (first), rev prefers A (shown second): consistent
  # pair 1: fwd prefers first (A), rev prefers first (B): the winner flips with the order
  # pair 2: fwd ties, rev prefers B (first): flips (a tie becomes a win)
  # pair 3: fwd invalid: not counted for consistency
  fwd = [V(9, 1), V(9, 1), V(4, 4), BAD]
  rev = [V(1, 9), V(9, 1), V(9, 1), V(9, 1)]
  out = brpo.position_bias(fwd, rev)
  # valid judgments: 7; preferring Response 1: fwd 0, fwd 1, rev 1, rev 2, rev 3 = 5
  assert out["first_preferred"] == pytest.approx(5 / 7)
  assert out["inconsistent"] == pytest.approx(2 / 3)
  assert out["pairs"] == 4 and out["valid"] == pytest.approx(7 / 8)
