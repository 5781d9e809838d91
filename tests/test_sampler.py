"""Sampler equivalences: cached greedy == argmax with full recomputation; returned log-probs == a
separate forward pass; a continued (multi-turn) cache == recomputing the whole context."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.models import decoder as dec
from critjax.sampling.sampler import CONTEXT, Sampler, completions
from critjax.sampling.token_choice import SamplingConfig, choose
from critjax.train.logprobs import token_logprobs

N_NEW = 8


@pytest.fixture(scope="module")
def setup():
  from critjax.models.config import ModelConfig
  cfg = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)
  params, _ = dec.init_params(cfg, jax.random.key(0))
  return cfg, params


def naive_greedy(params, cfg, prompt, n):
  seq = list(prompt)
  fwd = jax.jit(lambda p, t: dec.forward(p, t, cfg)[0])
  for _ in range(n):
    seq.append(int(jnp.argmax(fwd(params, jnp.array([seq]))[0, -1])))
  return seq[len(prompt):]


def test_greedy_equals_full_recompute(setup):
  cfg, params = setup
  prompts = np.array([[5, 6, 7, 8, 0, 0], [9, 10, 11, 12, 13, 14]])
  lens = np.array([4, 6])
  s = Sampler(cfg, SamplingConfig(max_new_tokens=N_NEW, temperature=0.0, eos_id=-1), capacity=24)
  ro = s.generate(params, prompts, lens, jax.random.key(1))
  got = completions(ro, 0)
  for b in range(2):
    assert list(got[b]) == naive_greedy(params, cfg, prompts[b, :lens[b]], N_NEW)


def test_logprobs_equal_separate_forward(setup):
  cfg, params = setup
  s = Sampler(cfg, SamplingConfig(max_new_tokens=N_NEW, temperature=0.7, eos_id=-1), capacity=24)
  ro = s.generate(params, np.array([[5, 6, 7, 0], [9, 10, 11, 12]]), np.array([3, 4]), jax.random.key(2),
                  num_samples=2)
  ref, _ = token_logprobs(params, ro.tokens, cfg, temperature=0.7)
  m = np.asarray(ro.segment) >= 0
  assert m.sum() == 4 * N_NEW
  np.testing.assert_allclose(np.asarray(ro.logp)[m], np.asarray(ref)[m], atol=2e-5)


def test_group_rows_share_the_prompt(setup):
  cfg, params = setup
  s = Sampler(cfg, SamplingConfig(max_new_tokens=4, temperature=1.0, eos_id=-1), capacity=16)
  ro = s.start(params, np.array([[5, 6, 7], [9, 10, 11]]), np.array([3, 2]), num_samples=3)
  assert ro.tokens.shape == (6, 16)
  np.testing.assert_array_equal(np.asarray(ro.length), [3, 3, 3, 2, 2, 2])
  np.testing.assert_array_equal(np.asarray(ro.tokens)[3:, :2], [[9, 10]] * 3)


def test_eos_stops_each_row_and_continuation_matches_recompute(setup):
  cfg, params = setup
  # EOS = the first greedy token of row 0, so row 0 stops at once while row 1 keeps going.
  s0 = Sampler(cfg, SamplingConfig(max_new_tokens=1, temperature=0.0, eos_id=-1), capacity=40)
  first = completions(s0.generate(params, np.array([[5, 6, 7]]), np.array([3]), jax.random.key(0)), 0)[0][0]
  s = Sampler(cfg, SamplingConfig(max_new_tokens=6, temperature=0.0, eos_id=int(first)), capacity=40)
  ro = s.generate(params, np.array([[5, 6, 7], [20, 21, 22]]), np.array([3, 3]), jax.random.key(0))
  lengths = np.asarray(ro.length)
  assert lengths[0] == 4 and bool(np.asarray(ro.truncated)[0]) is False
  # Turn 2: append an instruction at each row's own length and decode from the cache.
  ro = s.append(params, ro, np.array([[30, 31, 32], [33, 34, 0]]), np.array([3, 2]))
  ro = s.decode(params, ro, jax.random.key(0), segment_id=1)
  tokens, segment = np.asarray(ro.tokens), np.asarray(ro.segment)
  for b in range(2):
    ctx_end = int(np.argmax(segment[b] == 1))
    assert (segment[b, :ctx_end] != 1).all()
    n2 = int((segment[b] == 1).sum())
    expect = naive_greedy(params, cfg, tokens[b, :ctx_end], n2)
    assert list(tokens[b, ctx_end:ctx_end + n2]) == expect
  assert (segment[0, 4:7] == CONTEXT).all()


def test_capacity_error_names_the_sizes(setup):
  cfg, params = setup
  s = Sampler(cfg, SamplingConfig(max_new_tokens=8, eos_id=-1), capacity=10)
  ro = s.start(params, np.array([[5, 6, 7, 8]]), np.array([4]))
  with pytest.raises(ValueError, match="capacity 10"):
    s.decode(params, ro, jax.random.key(0))


def test_top_k_and_top_p_restrict_support():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  keys = jax.random.split(jax.random.key(0), 400)
  draw = lambda cfg: np.array([int(choose(logits, k, cfg)[0][0]) for k in keys[:200]])
  assert set(draw(SamplingConfig(top_k=2))) <= {0, 1}
  assert set(draw(SamplingConfig(top_p=0.75))) <= {0, 1}      # 0.5 + 0.3 reaches 0.75
  assert set(draw(SamplingConfig(top_p=0.5))) == {0}
  tok, lp = choose(logits, keys[0], SamplingConfig(temperature=0.0))
  assert int(tok[0]) == 0 and np.isclose(float(lp[0]), np.log(0.5), atol=1e-6)
