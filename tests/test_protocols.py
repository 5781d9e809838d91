"""Episode protocols (critjax.rl.protocols): a turn handed to another role's cache equals continuing
one cache; every token keeps the turn (and role) that wrote it and its writer's behaviour log-prob;
per-row contexts land where they belong; forks copy rows."""
import jax
import numpy as np
import pytest

from critjax.models import decoder as dec
from critjax.models.config import ModelConfig
from critjax.rl import protocols
from critjax.rl.protocols import Turn
from critjax.sampling.sampler import CONTEXT, Sampler
from critjax.sampling.token_choice import SamplingConfig
from critjax.train.logprobs import token_logprobs

CFG = ModelConfig(vocab_size=40, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)
CAP = 64
EOS = 39                 # never sampled by the fixed-length checks below unless by chance; harmless


class Problem:
  def __init__(self, i):
    self.id, self.problem = str(i), str(i)


class CharTokenizer:
  """ids 1..30 for characters; enough to decode rows, which the protocol only needs for texts."""
  eos_id, pad_id = EOS, 0

  def encode(self, text):
    return [1 + (ord(c) % 30) for c in text]

  def decode(self, ids, skip_special_tokens=True):
    return "".join(chr(97 + (i % 26)) for i in ids)


def engine(shared: bool, temperature: float):
  scfg = lambda t: SamplingConfig(max_new_tokens=5, temperature=t, eos_id=EOS, pad_id=0)
  mk = lambda name, owner: protocols.RoleRuntime(name, owner, Sampler(CFG, scfg(temperature), CAP),
                                                 Sampler(CFG, scfg(0.0), CAP))
  roles = {"actor": mk("actor", "actor"), "critic": mk("critic", "actor" if shared else "critic")}
  tok = CharTokenizer()
  return protocols.Engine(roles, tok, tok.encode, pad_id=0, max_prompt_len=8)


@pytest.fixture(scope="module")
def params():
  actor = dec.init_params(CFG, jax.random.key(0))[0]
  critic = dec.init_params(CFG, jax.random.key(1))[0]
  return actor, critic


PROBLEMS = [Problem(i) for i in range(3)]
PROMPTS = ["ab", "cdef", "g"]
# Critic's context differs per row (a critique prompt built from the row); the refine context is fixed.
per_row = lambda ep: [[7] * (1 + i % 3) for i in range(ep.rows)]
TURNS = (Turn("actor"), Turn("critic", per_row, fork=2), Turn("actor", [5, 6]))


def test_transfer_to_another_cache_equals_continuing_one(params):
  """Self-critique continues the actor's cache; with the critic as a separate role holding the same
  parameters, the critic's turn is a transfer (one prefill of the whole row) and the refinement
  continues the actor's cache after the critique. Greedy tokens and log-probs must agree."""
  actor, _ = params
  same = protocols.run(engine(True, 1.0), TURNS, PROBLEMS, PROMPTS, {"actor": actor}, jax.random.key(2), greedy=True)
  moved = protocols.run(engine(False, 1.0), TURNS, PROBLEMS, PROMPTS, {"actor": actor, "critic": actor},
                        jax.random.key(2), greedy=True)
  a, b = same.rollout, moved.rollout
  np.testing.assert_array_equal(np.asarray(a.tokens), np.asarray(b.tokens))
  np.testing.assert_array_equal(np.asarray(a.segment), np.asarray(b.segment))
  np.testing.assert_allclose(np.asarray(a.logp), np.asarray(b.logp), atol=2e-5)
  assert same.turn_roles == moved.turn_roles == ["actor", "critic", "actor"]
  assert set(same.rollouts) == {"actor"} and set(moved.rollouts) == {"actor", "critic"}


def test_behaviour_logprobs_are_each_writers_own(params):
  """Sampled episode, two roles with different parameters: every generated token's recorded log-prob
  equals a fresh forward pass of the role that wrote it over the final row (temperature 1)."""
  actor, critic = params
  ep = protocols.run(engine(False, 1.0), TURNS, PROBLEMS, PROMPTS, {"actor": actor, "critic": critic},
                     jax.random.key(3))
  ro = ep.rollout
  tokens, segment, logp = np.asarray(ro.tokens), np.asarray(ro.segment), np.asarray(ro.logp)
  by_role = {r: np.asarray(token_logprobs(p, ro.tokens, CFG)[0]) for r, p in (("actor", actor), ("critic", critic))}
  for k, role in enumerate(ep.turn_roles):
    where = segment == k
    assert where.any()
    np.testing.assert_allclose(logp[where], by_role[role][where], atol=2e-4, err_msg=f"turn {k} ({role})")
  assert np.all(logp[segment == CONTEXT] == 0.0)
  del tokens


def test_rows_forks_and_per_row_contexts(params):
  actor, critic = params
  ep = protocols.run(engine(False, 1.0), TURNS, PROBLEMS, PROMPTS, {"actor": actor, "critic": critic},
                     jax.random.key(4))
  assert ep.rows == 6 and [p.id for p in ep.problems] == ["0", "0", "1", "1", "2", "2"]
  tokens, segment = np.asarray(ep.rollout.tokens), np.asarray(ep.rollout.segment)
  first = [tokens[i][segment[i] == 0] for i in range(6)]
  for i in range(0, 6, 2):                   # a fork copies the attempt: both critiques judge one attempt
    np.testing.assert_array_equal(first[i], first[i + 1])
  for i in range(6):
    row_seg, row_tok = segment[i], tokens[i]
    end_attempt = np.nonzero(row_seg == 0)[0][-1] + 1
    n_ctx = 1 + i % 3
    np.testing.assert_array_equal(row_tok[end_attempt:end_attempt + n_ctx], [7] * n_ctx)
    assert np.all(row_seg[end_attempt:end_attempt + n_ctx] == CONTEXT)
    assert row_seg[end_attempt + n_ctx] == 1          # the critique starts right after its context
    end_critique = np.nonzero(row_seg == 1)[0][-1] + 1
    np.testing.assert_array_equal(row_tok[end_critique:end_critique + 2], [5, 6])
    assert row_seg[end_critique + 2] == 2
  assert ep.lengths().shape == (6, 3) and ep.turn_roles == ["actor", "critic", "actor"]


def test_unknown_role_is_named(params):
  actor, _ = params
  with pytest.raises(ValueError, match="role 'judge'"):
    protocols.run(engine(False, 1.0), (Turn("actor"), Turn("judge")), PROBLEMS, PROMPTS, {"actor": actor},
                  jax.random.key(0))
