"""KV-cache sampler for multi-turn episodes: prefill once, share across the group, decode in place.

Dimension key: B rows (prompts x samples), P prompt length, C appended chunk length, K kv heads,
S capacity (cache length), V vocab.

An episode is one growing row of tokens. `Rollout` holds it together with its KV cache:
  start()   prefill the prompts once, then repeat rows (and caches) for the G samples of a group;
  decode()  sample a turn with `lax.while_loop`, writing each token at the row's own length and
            stopping per row at EOS; exits early when every row is done;
  append()  add context tokens (an instruction, a critique, feedback) at each row's length,
            continuing from the cache: turn 2 never re-prefills the prompt and turn 1.
`segment` records who wrote each token: -1 context, k >= 0 the k-th generated turn. That is what
the trainer turns into per-turn loss masks, rewards and KL coefficients.
"""
from __future__ import annotations

import functools
from typing import Any, Optional

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from critjax.models import decoder
from critjax.models.config import ModelConfig
from critjax.sampling.token_choice import SamplingConfig, choose

CONTEXT = -1  # segment id of tokens the policy did not generate


@flax.struct.dataclass
class Rollout:
  tokens: jax.Array        # (B, S) int32, right-padded with pad_id
  logp: jax.Array          # (B, S) float32 behaviour log-prob of generated tokens, 0 elsewhere
  segment: jax.Array       # (B, S) int32: CONTEXT or the generated turn's index
  length: jax.Array        # (B,) int32 tokens written so far
  truncated: jax.Array     # (B,) bool: the last decoded turn ended without EOS
  last_logits: jax.Array   # (B, V) float32 logits for the next token
  cache: Any               # KV cache, per layer (B, K, S, E)

  @property
  def capacity(self) -> int:
    return self.tokens.shape[1]


def _last_logits(logits_btv, chunk_len_b):
  idx = jnp.maximum(chunk_len_b - 1, 0)
  return jnp.take_along_axis(logits_btv, idx[:, None, None], axis=1)[:, 0]


def _write_rows(buf_bs, chunk_bc, start_b):
  return jax.vmap(lambda row, new, s: lax.dynamic_update_slice(row, new.astype(row.dtype), (s,)))(
      buf_bs, chunk_bc, start_b)


def start(params, prompt_bp, prompt_len_b, *, cfg: ModelConfig, capacity: int, num_samples: int = 1,
          pad_id: int = 0, cache_dtype=None) -> Rollout:
  """Prefill B right-padded prompts once; return B * num_samples rows (row i -> prompt i // G)."""
  b, p = prompt_bp.shape
  if p > capacity:
    raise ValueError(f"prompt length {p} exceeds the cache capacity {capacity}")
  cache = decoder.init_cache(cfg, b, capacity, cache_dtype)
  logits, cache = decoder.forward(params, prompt_bp, cfg, cache=cache, start_b=jnp.zeros((b,), jnp.int32))
  tokens = jnp.full((b, capacity), pad_id, jnp.int32)
  tokens = lax.dynamic_update_slice(tokens, jnp.where(jnp.arange(p) < prompt_len_b[:, None], prompt_bp, pad_id),
                                    (0, 0))
  ro = Rollout(tokens=tokens, logp=jnp.zeros((b, capacity), jnp.float32),
               segment=jnp.full((b, capacity), CONTEXT, jnp.int32), length=prompt_len_b.astype(jnp.int32),
               truncated=jnp.zeros((b,), bool), last_logits=_last_logits(logits, prompt_len_b), cache=cache)
  if num_samples > 1:  # share the prefill: copy rows, not compute
    ro = jax.tree.map(lambda x: jnp.repeat(x, num_samples, axis=0), ro)
  return ro


def append(params, ro: Rollout, chunk_bc, chunk_len_b, segment_bc=None, logp_bc=None, *, cfg: ModelConfig,
           pad_id: int = 0) -> Rollout:
  """Append tokens (B, C), row b taking its first chunk_len_b[b], at each row's length.

  By default they are context (segment CONTEXT, log-prob 0). A turn another model wrote, handed to
  this model's cache, keeps its writer's `segment_bc` and behaviour `logp_bc` (both (B, C))."""
  logits, cache = decoder.forward(params, chunk_bc, cfg, cache=ro.cache, start_b=ro.length)
  live = jnp.arange(chunk_bc.shape[1]) < chunk_len_b[:, None]
  chunk = jnp.where(live, chunk_bc, pad_id)
  seg = jnp.full_like(chunk, CONTEXT) if segment_bc is None else jnp.where(live, segment_bc, CONTEXT)
  logp = jnp.zeros(chunk.shape, jnp.float32) if logp_bc is None else jnp.where(live, logp_bc, 0.0)
  return ro.replace(tokens=_write_rows(ro.tokens, chunk, ro.length),
                    segment=_write_rows(ro.segment, seg, ro.length),
                    logp=_write_rows(ro.logp, logp, ro.length),
                    length=ro.length + chunk_len_b, cache=cache,
                    last_logits=_last_logits(logits, chunk_len_b))


def decode(params, ro: Rollout, rng, *, cfg: ModelConfig, scfg: SamplingConfig, segment_id: int = 0,
           active_b=None) -> Rollout:
  """Generate one turn of at most scfg.max_new_tokens tokens per row (rows with active_b False skip)."""
  b = ro.length.shape[0]
  rows = jnp.arange(b)
  done0 = jnp.zeros((b,), bool) if active_b is None else ~active_b

  watch = jnp.asarray([t for t, _ in scfg.stop_after], jnp.int32)      # (W,) ids counted per row
  limit = jnp.asarray([n for _, n in scfg.stop_after], jnp.int32)      # (W,) a row stops at its n-th

  def cond(state):
    i, _, done, _, _ = state
    return (i < scfg.max_new_tokens) & ~jnp.all(done)

  def body(state):
    i, ro, done, rng, seen = state
    rng, key = jax.random.split(rng)
    tok, lp = choose(ro.last_logits, key, scfg)
    tok = jnp.where(done, scfg.pad_id, tok)
    live = ~done
    pos = jnp.where(live, ro.length, ro.capacity)  # out-of-range index: the write is dropped
    ro = ro.replace(tokens=ro.tokens.at[rows, pos].set(tok, mode="drop"),
                    logp=ro.logp.at[rows, pos].set(lp, mode="drop"),
                    segment=ro.segment.at[rows, pos].set(segment_id, mode="drop"))
    logits, cache = decoder.forward(params, tok[:, None], cfg, cache=ro.cache, start_b=ro.length)
    ro = ro.replace(cache=cache, length=ro.length + live.astype(jnp.int32),
                    last_logits=jnp.where(live[:, None], logits[:, 0], ro.last_logits))
    stop = tok == scfg.eos_id
    for extra in scfg.extra_stop_ids:
      stop |= tok == extra
    seen = seen + ((tok[:, None] == watch[None, :]) & live[:, None]).astype(jnp.int32)   # (B, W)
    stop |= jnp.any(seen >= limit[None, :], axis=1)
    return i + 1, ro, done | stop, rng, seen

  seen0 = jnp.zeros((b, len(scfg.stop_after)), jnp.int32)
  _, ro, done, _, _ = lax.while_loop(cond, body, (jnp.int32(0), ro, done0, rng, seen0))
  return ro.replace(truncated=~done)


class Sampler:
  """Jitted `start` / `append` / `decode` for one model and sampling config.

  The rollout is donated to `append` and `decode`, so the KV cache is updated in place."""

  def __init__(self, cfg: ModelConfig, scfg: SamplingConfig, capacity: int, cache_dtype=None):
    self.cfg, self.scfg, self.capacity = cfg, scfg, capacity
    self._start = jax.jit(functools.partial(start, cfg=cfg, capacity=capacity, pad_id=scfg.pad_id,
                                            cache_dtype=cache_dtype), static_argnames=("num_samples",))
    self._append = jax.jit(functools.partial(append, cfg=cfg, pad_id=scfg.pad_id), donate_argnums=(1,))
    self._decode = jax.jit(functools.partial(decode, cfg=cfg, scfg=scfg),
                           static_argnames=("segment_id",), donate_argnums=(1,))

  def start(self, params, prompt_bp, prompt_len_b, num_samples: int = 1) -> Rollout:
    return self._start(params, jnp.asarray(prompt_bp, jnp.int32), jnp.asarray(prompt_len_b, jnp.int32),
                       num_samples=num_samples)

  def append(self, params, ro: Rollout, chunk_bc, chunk_len_b, segment_bc=None, logp_bc=None) -> Rollout:
    self._check_room(ro, int(np.max(chunk_len_b)) if len(chunk_len_b) else 0)
    opt = lambda x, dt: None if x is None else jnp.asarray(x, dt)
    return self._append(params, ro, jnp.asarray(chunk_bc, jnp.int32), jnp.asarray(chunk_len_b, jnp.int32),
                        opt(segment_bc, jnp.int32), opt(logp_bc, jnp.float32))

  def decode(self, params, ro: Rollout, rng, segment_id: int = 0, active_b=None) -> Rollout:
    self._check_room(ro, self.scfg.max_new_tokens)
    return self._decode(params, ro, rng, segment_id=segment_id, active_b=active_b)

  def generate(self, params, prompt_bp, prompt_len_b, rng, num_samples: int = 1) -> Rollout:
    """Single-turn convenience: start + decode."""
    return self.decode(params, self.start(params, prompt_bp, prompt_len_b, num_samples), rng)

  def _check_room(self, ro: Rollout, needed: int):
    longest = int(jnp.max(ro.length))
    if longest + needed > self.capacity:
      raise ValueError(f"sampler capacity {self.capacity} too small: a row holds {longest} tokens and the next "
                       f"step may add {needed}; raise sampling capacity (max_prompt + turns * max_new_tokens)")


def completions(ro: Rollout, segment_id: int) -> list[np.ndarray]:
  """Host-side: the token ids of one generated turn for every row (EOS included if produced)."""
  tokens, segment = np.asarray(ro.tokens), np.asarray(ro.segment)
  return [tokens[i][segment[i] == segment_id] for i in range(tokens.shape[0])]
