"""Choosing the next token: greedy, temperature, top-k, top-p (nucleus).

All functions take logits (B, V) float32 and are jit-friendly; the config is static.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
  max_new_tokens: int = 64
  temperature: float = 1.0     # 0 = greedy
  top_k: int = 0               # 0 = off
  top_p: float = 1.0           # 1 = off
  eos_id: int = 1
  pad_id: int = 0
  extra_stop_ids: tuple = ()   # more ids that end a turn (chat end-of-turn markers)
  # ((token_id, n), ...): a row also stops once it has written token_id n times in the turn
  # (ReVISE: at most n attempts, each new one after a [refine] token)
  stop_after: tuple = ()

  def __post_init__(self):
    if self.max_new_tokens < 1:
      raise ValueError(f"sampling.max_new_tokens must be >= 1, got {self.max_new_tokens}")
    if self.temperature < 0:
      raise ValueError(f"sampling.temperature must be >= 0, got {self.temperature}")
    if not 0 < self.top_p <= 1:
      raise ValueError(f"sampling.top_p must be in (0, 1], got {self.top_p}")
    if self.top_k < 0:
      raise ValueError(f"sampling.top_k must be >= 0, got {self.top_k}")
    if any(len(p) != 2 or p[1] < 1 for p in self.stop_after):
      raise ValueError(f"sampling.stop_after must be (token_id, n >= 1) pairs, got {self.stop_after}")

  @property
  def greedy(self) -> bool:
    return self.temperature == 0.0


def scaled_log_probs(logits_bv, cfg: SamplingConfig):
  """log softmax(logits / T): the behaviour policy's log-probs (T = 1 for greedy).

  The trainer scores tokens with the same temperature, so PPO ratios compare like with like
  (top-k / top-p truncation is not part of the scored distribution, as in verl and TRL)."""
  t = cfg.temperature if cfg.temperature > 0 else 1.0
  return jax.nn.log_softmax(logits_bv.astype(jnp.float32) / t, axis=-1)


def _truncate(logp_bv, cfg: SamplingConfig):
  neg = jnp.finfo(jnp.float32).min
  if cfg.top_k:
    kth = jax.lax.top_k(logp_bv, cfg.top_k)[0][:, -1:]
    logp_bv = jnp.where(logp_bv < kth, neg, logp_bv)
  if cfg.top_p < 1.0:
    sorted_lp = jnp.sort(logp_bv, axis=-1)[:, ::-1]
    cum = jnp.cumsum(jnp.exp(sorted_lp), axis=-1)
    # keep the smallest prefix whose mass reaches top_p: a token is kept if the mass before it < top_p
    keep_sorted = (cum - jnp.exp(sorted_lp)) < cfg.top_p
    threshold = jnp.min(jnp.where(keep_sorted, sorted_lp, jnp.inf), axis=-1, keepdims=True)
    logp_bv = jnp.where(logp_bv < threshold, neg, logp_bv)
  return logp_bv


def choose(logits_bv, rng, cfg: SamplingConfig):
  """-> (token (B,) int32, its log-prob under `scaled_log_probs` (B,) float32)."""
  logp = scaled_log_probs(logits_bv, cfg)
  if cfg.greedy:
    tok = jnp.argmax(logp, axis=-1)
  else:
    tok = jax.random.categorical(rng, _truncate(logp, cfg), axis=-1)
  tok = tok.astype(jnp.int32)
  return tok, jnp.take_along_axis(logp, tok[:, None], axis=-1)[:, 0]
