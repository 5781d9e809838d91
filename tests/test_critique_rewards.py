"""Critique-RL episode rewards against a table written by hand from the spec.

Stage I (discrimination): +1 if the verdict equals the attempt's correctness, -1 if wrong or missing (None).
Stage II (helpfulness):   r_help + 0.2 if the verdict is right, -1 otherwise, with
  r_refine  = 1[after correct]
  r_correct = c->c 0.2, c->i 0, i->c 1, i->i 0
  r_delta   = c->c 0,   c->i -1, i->c 1, i->i 0
"""
import numpy as np
import pytest

from critjax.rl.critique_rewards import discrimination_reward, helpfulness_reward

C, I = True, False
TRANSITIONS = {"cc": (C, C), "ci": (C, I), "ic": (I, C), "ii": (I, I)}   # (attempt correct, refined correct)


def verdict_for(before, kind):
  """The verdict a critic gives: 'right' matches the attempt's correctness, 'wrong' flips it, 'missing' is None."""
  return {"right": before, "wrong": not before, "missing": None}[kind]


# Written by hand: (transition, verdict kind) -> reward.
STAGE1 = {
    ("cc", "right"): 1.0, ("cc", "wrong"): -1.0, ("cc", "missing"): -1.0,
    ("ci", "right"): 1.0, ("ci", "wrong"): -1.0, ("ci", "missing"): -1.0,
    ("ic", "right"): 1.0, ("ic", "wrong"): -1.0, ("ic", "missing"): -1.0,
    ("ii", "right"): 1.0, ("ii", "wrong"): -1.0, ("ii", "missing"): -1.0,
}

STAGE2 = {
    # refine: r_help = 1[after]; right -> r_help + 0.2
    "refine": {
        ("cc", "right"): 1.2, ("cc", "wrong"): -1.0, ("cc", "missing"): -1.0,
        ("ci", "right"): 0.2, ("ci", "wrong"): -1.0, ("ci", "missing"): -1.0,
        ("ic", "right"): 1.2, ("ic", "wrong"): -1.0, ("ic", "missing"): -1.0,
        ("ii", "right"): 0.2, ("ii", "wrong"): -1.0, ("ii", "missing"): -1.0,
    },
    # correct: c->c 0.2, c->i 0, i->c 1, i->i 0; right -> + 0.2
    "correct": {
        ("cc", "right"): 0.4, ("cc", "wrong"): -1.0, ("cc", "missing"): -1.0,
        ("ci", "right"): 0.2, ("ci", "wrong"): -1.0, ("ci", "missing"): -1.0,
        ("ic", "right"): 1.2, ("ic", "wrong"): -1.0, ("ic", "missing"): -1.0,
        ("ii", "right"): 0.2, ("ii", "wrong"): -1.0, ("ii", "missing"): -1.0,
    },
    # delta: c->c 0, c->i -1, i->c 1, i->i 0; right -> + 0.2
    "delta": {
        ("cc", "right"): 0.2, ("cc", "wrong"): -1.0, ("cc", "missing"): -1.0,
        ("ci", "right"): -0.8, ("ci", "wrong"): -1.0, ("ci", "missing"): -1.0,
        ("ic", "right"): 1.2, ("ic", "wrong"): -1.0, ("ic", "missing"): -1.0,
        ("ii", "right"): 0.2, ("ii", "wrong"): -1.0, ("ii", "missing"): -1.0,
    },
}

CASES = list(STAGE1)


def batch():
  before = [TRANSITIONS[tr][0] for tr, _ in CASES]
  after = [TRANSITIONS[tr][1] for tr, _ in CASES]
  verdict = [verdict_for(TRANSITIONS[tr][0], kind) for tr, kind in CASES]
  return before, after, verdict


def test_discrimination_reward_table():
  before, _, verdict = batch()
  got = discrimination_reward(before, verdict)
  assert got.shape == (len(CASES),)
  np.testing.assert_allclose(got, [STAGE1[k] for k in CASES], atol=1e-6)


@pytest.mark.parametrize("r_help", ["refine", "correct", "delta"])
def test_helpfulness_reward_table(r_help):
  before, after, verdict = batch()
  got = helpfulness_reward(before, verdict, after, r_help=r_help)
  assert got.shape == (len(CASES),)
  np.testing.assert_allclose(got, [STAGE2[r_help][k] for k in CASES], atol=1e-6)


@pytest.mark.parametrize("r_help", ["refine", "correct", "delta"])
@pytest.mark.parametrize("case", CASES)
def test_helpfulness_reward_single_episode(r_help, case):
  tr, kind = case
  b, a = TRANSITIONS[tr]
  got = helpfulness_reward([b], [verdict_for(b, kind)], [a], r_help=r_help)
  np.testing.assert_allclose(got, [STAGE2[r_help][case]], atol=1e-6)


def test_default_r_help_is_refine():
  before, after, verdict = batch()
  np.testing.assert_allclose(helpfulness_reward(before, verdict, after), [STAGE2["refine"][k] for k in CASES],
                             atol=1e-6)


def test_unknown_r_help_raises_key_error():
  with pytest.raises(KeyError):
    helpfulness_reward([True], [True], [True], r_help="bogus")
