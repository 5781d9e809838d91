"""SCoRe per-turn rewards and KL coefficients against tables worked out by hand (arXiv 2409.12917 eqs. (3), (4))."""
import numpy as np
import pytest

from critjax.rl import score_rewards as sr

# Rows: (y1, y2) = i->c, c->c, c->i, i->i.
PAIRS = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], dtype=bool)


def test_stage2_alpha10_matches_paper_table():
  r = sr.stage2_turn_rewards(PAIRS, alpha=10.0)
  # turn 1: r_hat(y1); turn 2: r_hat(y2) + 10 (r_hat(y2) - r_hat(y1)) -> 11, 1, -10, 0 (paper §5.2).
  np.testing.assert_array_equal(r, [[0, 11], [1, 1], [1, -10], [0, 0]])
  assert r.dtype == np.float32


def test_stage2_alpha0_and_no_shaping_are_plain_rewards():
  plain = [[0, 1], [1, 1], [1, 0], [0, 0]]
  np.testing.assert_array_equal(sr.stage2_turn_rewards(PAIRS, alpha=0.0), plain)
  np.testing.assert_array_equal(sr.stage2_turn_rewards(PAIRS, alpha=10.0, shaping=False), plain)


def test_stage2_k3_shapes_against_previous_turn():
  c = np.array([[0, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 1]])
  # alpha = 2: r_k = c_k + 2 (c_k - c_{k-1}).
  # row 0: 0, 1+2=3, 0-2=-2; row 1: 1, 1, 1; row 2: 0, 0, 1+2=3; row 3: 1, 0-2=-2, 1+2=3.
  expect = [[0, 3, -2], [1, 1, 1], [0, 0, 3], [1, -2, 3]]
  np.testing.assert_array_equal(sr.stage2_turn_rewards(c, alpha=2.0), expect)


def test_stage2_fractional_rewards():
  # Unit-test pass rates: 0.25 -> 0.75 with alpha 10: 0.75 + 10 * 0.5 = 5.75.
  np.testing.assert_allclose(sr.stage2_turn_rewards([[0.25, 0.75]], alpha=10.0), [[0.25, 5.75]])


def test_stage1_rewards_only_last_turn():
  np.testing.assert_array_equal(sr.stage1_turn_rewards(PAIRS), [[0, 1], [0, 1], [0, 0], [0, 0]])
  np.testing.assert_array_equal(sr.stage1_turn_rewards([[1, 0, 1], [1, 1, 0]]), [[0, 0, 1], [0, 0, 0]])


def test_k1_is_single_turn_reward():
  c = np.array([[1], [0]])
  np.testing.assert_array_equal(sr.stage2_turn_rewards(c), [[1], [0]])
  np.testing.assert_array_equal(sr.stage1_turn_rewards(c), [[1], [0]])


def test_registry_names():
  assert sr.TURN_REWARDS.get("score_stage2") is sr.stage2_turn_rewards
  assert sr.TURN_REWARDS.get("score_stage1") is sr.stage1_turn_rewards


@pytest.mark.parametrize("kwargs, field", [
    (dict(alpha=-1.0), "alpha"), (dict(alpha=float("nan")), "alpha"), (dict(beta1=-0.1), "beta1"),
    (dict(beta2=-1.0), "beta2"), (dict(num_attempts=0), "num_attempts"), (dict(num_attempts=1.5), "num_attempts"),
])
def test_validate_names_field(kwargs, field):
  with pytest.raises(ValueError, match=field):
    sr.validate_score_hparams(**kwargs)


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="alpha"):
    sr.stage2_turn_rewards(PAIRS, alpha=-0.5)
  with pytest.raises(ValueError, match="K"):
    sr.stage2_turn_rewards(np.zeros((3, 0)))
  with pytest.raises(ValueError, match=r"\(N, K\)"):
    sr.stage2_turn_rewards(np.zeros(3))


def test_kl_coefficients_stage1_and_stage2():
  b1, b2 = 0.01, 0.1
  np.testing.assert_allclose(sr.turn_kl_coefficients(2, stage=1, beta1=b1, beta2=b2), [b2, b1])
  np.testing.assert_allclose(sr.turn_kl_coefficients(2, stage=2, beta1=b1, beta2=b2), [b1, b1])


def test_kl_coefficients_anchored_turns_k3():
  np.testing.assert_allclose(sr.turn_kl_coefficients(3, stage=1, beta1=1.0, beta2=5.0, anchored_turns=2), [5, 5, 1])
  with pytest.raises(ValueError, match="stage"):
    sr.turn_kl_coefficients(2, stage=3)
  with pytest.raises(ValueError, match="beta2"):
    sr.turn_kl_coefficients(2, stage=1, beta2=-1.0)
