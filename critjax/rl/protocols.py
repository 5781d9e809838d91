"""Episode protocols: which role writes each turn, after what context, continuing whose KV cache.

Dimension key: N rows (problems x samples, x forks), S capacity (one for every role's sampler),
C appended chunk length.

An episode is one growing row of tokens per row. A `Turn` names the role that writes it, the
per-row context appended before it (a fixed instruction, or a critique prompt built from the row's
own answer) and how many copies of every row to make first (`fork`: K critiques of one attempt).
Every token records the turn that wrote it (`segment`: -1 context, k the k-th turn) and
`Episode.turn_roles[k]` names that turn's role, so rewards, masks and per-role batches are read off
one array.

KV caches are kept per parameter owner: a role, or the role whose parameters it shares
(self-critique: critic = policy). A turn whose writer already holds a cache of the row continues it,
appending only what other roles wrote since plus the new context (turn 2 never re-prefills turn 1);
a writer with no cache yet receives the whole row once, as one batched prefill. Generated tokens
keep their writer's segment and behaviour log-probs when handed to another cache, so the update
reads them from whichever rollout wrote last.

SCoRe's attempts, Self-Refine, the fixed-first check, the GRPO rollout and Critique-RL's
actor -> critic -> actor episode are all `run(engine, turns, ...)`.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from critjax.rl import episodes
from critjax.sampling.sampler import CONTEXT, Rollout, Sampler

ContextFn = Callable[["Episode"], Sequence[Sequence[int]]]


@dataclasses.dataclass(frozen=True)
class Turn:
  """One generated turn: `role` writes it after `context` (ids for every row, or a function of the
  episode so far giving each row its own ids); `fork` copies every row first; `greedy` decodes at
  T = 0 even in a sampled episode (Critique-RL's actor refines greedily)."""
  role: str
  context: Union[None, Sequence[int], ContextFn] = None
  fork: int = 1
  greedy: bool = False


@dataclasses.dataclass
class RoleRuntime:
  """A role as the sampler sees it: its parameter owner and its two samplers."""
  name: str
  owner: str              # key of its parameters in the params dict (itself, or the role it shares)
  sampler: Sampler
  greedy_sampler: Sampler


class Engine:
  """The roles' samplers (one shared capacity) plus prompt encoding: what `run` needs besides params."""

  def __init__(self, roles: dict[str, RoleRuntime], tokenizer, encode_prompt: Callable[[str], list[int]],
               pad_id: int, max_prompt_len: int):
    self.roles, self.tokenizer, self.encode_prompt = roles, tokenizer, encode_prompt
    self.pad_id, self.max_prompt_len = pad_id, max_prompt_len

  @property
  def capacity(self) -> int:
    return next(iter(self.roles.values())).sampler.capacity

  def role(self, name: str) -> RoleRuntime:
    if name not in self.roles:
      raise ValueError(f"protocol turn written by role {name!r}, which the run does not have; roles: "
                       f"{sorted(self.roles)}")
    return self.roles[name]

  def alias(self, name: str, like: str) -> None:
    """A frozen copy of role `like` (a snapshot) sampled under its own parameters `name`."""
    r = self.roles[like]
    self.roles[name] = RoleRuntime(name, name, r.sampler, r.greedy_sampler)

  def with_capacity(self, capacity: int) -> "Engine":
    """The same roles with samplers of another capacity (an evaluation protocol with more turns)."""
    def resize(s: Sampler) -> Sampler:
      return Sampler(s.cfg, s.scfg, capacity)
    cache: dict[int, Sampler] = {}
    get = lambda s: cache.setdefault(id(s), resize(s))
    roles = {n: RoleRuntime(r.name, r.owner, get(r.sampler), get(r.greedy_sampler)) for n, r in self.roles.items()}
    return Engine(roles, self.tokenizer, self.encode_prompt, self.pad_id, self.max_prompt_len)


class Episode:
  """The state of a batch of episodes between turns (host metadata + one rollout per cache owner)."""

  def __init__(self, engine: Engine, problems: list, rollouts: dict, last: str):
    self.engine, self.problems, self.rollouts, self.last = engine, problems, rollouts, last
    self.turn_roles: list[str] = []
    self.truncated: list[np.ndarray] = []      # per turn, (N,) bool

  @property
  def rollout(self) -> Rollout:
    """The rollout of the latest writer: every token of every turn, with its segment and log-prob."""
    return self.rollouts[self.last]

  @property
  def rows(self) -> int:
    return len(self.problems)

  def texts(self, turn: int) -> list[str]:
    return episodes.turn_texts(self.engine.tokenizer, self.rollout, turn)

  def lengths(self) -> np.ndarray:
    """(N, K) generated tokens per turn."""
    return episodes.turn_lengths(self.rollout, len(self.turn_roles))

  def fork(self, k: int) -> None:
    """Repeat every row k times (rows i*k .. i*k+k-1 copy row i), caches included."""
    rep = lambda x: jnp.repeat(x, k, axis=0)
    self.rollouts = {o: jax.tree.map(rep, ro) for o, ro in self.rollouts.items()}
    self.problems = [p for p in self.problems for _ in range(k)]
    self.truncated = [np.repeat(t, k) for t in self.truncated]


def _pad_rows(rows: Sequence[Sequence], fill, dtype) -> tuple[np.ndarray, np.ndarray]:
  lens = np.array([len(r) for r in rows], np.int32)
  out = np.full((len(rows), max(int(lens.max(initial=0)), 1)), fill, dtype)
  for i, r in enumerate(rows):
    out[i, :len(r)] = r
  return out, lens


def start(engine: Engine, role: str, problems: Sequence, prompts: Sequence[str], params: dict,
          num_samples: int = 1, greedy: bool = False) -> Episode:
  """Prefill the prompts under `role`'s parameters once and share them across `num_samples` rows each."""
  rt = engine.role(role)
  ids, lens = episodes.encode_prompts(engine.encode_prompt, prompts, engine.max_prompt_len,
                                      [p.id for p in problems], pad_id=engine.pad_id)
  sampler = rt.greedy_sampler if greedy else rt.sampler
  ro = sampler.start(params[rt.owner], ids, lens, num_samples=num_samples)
  rows = [p for p in problems for _ in range(num_samples)]
  return Episode(engine, rows, {rt.owner: ro}, rt.owner)


def _context_rows(ep: Episode, context) -> list[list[int]]:
  if context is None:
    return [[] for _ in range(ep.rows)]
  rows = context(ep) if callable(context) else [list(context)] * ep.rows
  if len(rows) != ep.rows:
    raise ValueError(f"a turn's context gave {len(rows)} rows for {ep.rows} episode rows")
  return [list(r) for r in rows]


def _hand_over(ep: Episode, owner: str, sampler: Sampler, params, ctx: list[list[int]]) -> Rollout:
  """`owner`'s rollout brought up to the latest row plus `ctx`: its cache continued, or (first time
  it writes) the whole row prefilled once."""
  latest = ep.rollout
  if owner == ep.last:
    if not any(ctx):
      return latest
    chunk, lens = _pad_rows(ctx, ep.engine.pad_id, np.int32)
    return sampler.append(params, latest, chunk, lens)
  tokens, segment, logp = (np.asarray(x) for x in (latest.tokens, latest.segment, latest.logp))
  end = np.asarray(latest.length)
  mine = ep.rollouts.get(owner)
  begin = np.zeros_like(end) if mine is None else np.asarray(mine.length)
  toks = [list(tokens[i, begin[i]:end[i]]) + ctx[i] for i in range(ep.rows)]
  segs = [list(segment[i, begin[i]:end[i]]) + [CONTEXT] * len(ctx[i]) for i in range(ep.rows)]
  lps = [list(logp[i, begin[i]:end[i]]) + [0.0] * len(ctx[i]) for i in range(ep.rows)]
  chunk, lens = _pad_rows(toks, ep.engine.pad_id, np.int32)
  seg_c, _ = _pad_rows(segs, CONTEXT, np.int32)
  lp_c, _ = _pad_rows(lps, 0.0, np.float32)
  if mine is not None:
    return sampler.append(params, mine, chunk, lens, seg_c, lp_c)
  # Transfer: one prefill of the whole row (bucketed so few prompt shapes compile), then the
  # writers' segments and log-probs copied over the context marks the prefill leaves.
  width = episodes.bucket(chunk.shape[1], sampler.capacity)
  pad = lambda a, fill: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=fill)
  ro = sampler.start(params, pad(chunk, ep.engine.pad_id), lens)
  cap = sampler.capacity
  full = lambda a, fill: np.pad(a, ((0, 0), (0, cap - a.shape[1])), constant_values=fill)
  return ro.replace(segment=jnp.asarray(full(pad(seg_c, CONTEXT), CONTEXT)),
                    logp=jnp.asarray(full(pad(lp_c, 0.0), 0.0)))


def take_turn(ep: Episode, turn: Turn, params: dict, rng, greedy: bool = False) -> Episode:
  """Generate the next turn of every row (in place; returns `ep`)."""
  if turn.fork > 1:
    ep.fork(turn.fork)
  rt = ep.engine.role(turn.role)
  sampler = rt.greedy_sampler if (greedy or turn.greedy) else rt.sampler
  ro = _hand_over(ep, rt.owner, sampler, params[rt.owner], _context_rows(ep, turn.context))
  ro = sampler.decode(params[rt.owner], ro, rng, segment_id=len(ep.turn_roles))
  ep.rollouts[rt.owner], ep.last = ro, rt.owner
  ep.turn_roles.append(turn.role)
  ep.truncated.append(np.asarray(ro.truncated))
  return ep


def run(engine: Engine, turns: Sequence[Turn], problems: Sequence, prompts: Sequence[str], params: dict, rng,
        num_samples: int = 1, greedy: bool = False) -> Episode:
  """The whole protocol: prefill under the first turn's role, then every turn in order."""
  if not turns:
    raise ValueError("a protocol needs at least one turn")
  first = turns[0]
  ep = start(engine, first.role, problems, prompts, params, num_samples, greedy=greedy or first.greedy)
  keys = jax.random.split(rng, len(turns))
  for k, turn in enumerate(turns):
    take_turn(ep, turn, params, keys[k], greedy=greedy)
  return ep


def capacity(max_prompt_len: int, turn_budgets: Sequence[tuple[int, int]]) -> int:
  """Cache length for a protocol: the prompt plus, per turn, (context tokens, new tokens)."""
  return max_prompt_len + sum(c + n for c, n in turn_budgets)
