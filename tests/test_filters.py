"""DAPO filters and soft overlong punishment against hand-computed values."""
import numpy as np
import pytest

from critjax.rl import filters as F


def test_dynamic_sampling_correct():
  correct = np.array([[1, 0, 0], [1, 1, 1], [0, 0, 0], [0, 1, 1]], bool)
  rewards = correct.astype(np.float32)
  np.testing.assert_array_equal(F.dynamic_sampling_mask(rewards, correct), [True, False, False, True])


def test_dynamic_sampling_valid_and_reward_variance():
  rewards = np.array([[1.0, 1.0, -1.0], [0.3, 0.3, 0.3], [2.0, 2.0, 7.0]])
  valid = np.array([[1, 1, 1], [1, 1, 1], [1, 1, 0]], bool)
  # row 2: the differing reward is in an invalid slot -> the valid rewards are constant
  np.testing.assert_array_equal(F.dynamic_sampling_mask(rewards, None, valid), [True, False, False])
  correct = rewards > 1.5
  np.testing.assert_array_equal(F.dynamic_sampling_mask(rewards, correct, valid), [False, False, False])


def test_overlong_filter():
  np.testing.assert_array_equal(F.overlong_filter_mask([[True, False]]), [[False, True]])


def test_soft_overlong_penalty_hand():
  # L_max = 20, L_cache = 4: free up to 16, then (16 - |y|) / 4, then -1 past 20
  got = F.soft_overlong_penalty(np.array([10, 16, 17, 18, 20, 21]), max_len=20, cache_len=4)
  np.testing.assert_allclose(got, [0.0, 0.0, -0.25, -0.5, -1.0, -1.0])
  with pytest.raises(ValueError, match="cache_len"):
    F.soft_overlong_penalty([1], max_len=4, cache_len=5)
