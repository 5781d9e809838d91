"""Per-token log-probs and entropies of a sequence under a model, in float32.

Per-token arrays are aligned with the token they score: position t holds log p(token_t | tokens_<t),
and position 0 (no context) holds 0. Masks, advantages and old log-probs use the same alignment.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from critjax.models import decoder
from critjax.models.config import ModelConfig


AUTO_CHUNK_VOCAB = 32_768     # rl.logprob_chunk = -1: chunk from this vocabulary size on
AUTO_CHUNK = 1024             # positions per chunk then


def resolve_chunk(setting: int, vocab_size: int) -> int:
  """config.rl.logprob_chunk -> positions per chunk (0 = the whole sequence at once): -1 is
  AUTO_CHUNK for vocabularies of AUTO_CHUNK_VOCAB or more, else 0."""
  if setting < -1:
    raise ValueError(f"rl.logprob_chunk={setting} must be -1 (auto), 0 (off) or a positive chunk length")
  return (AUTO_CHUNK if vocab_size >= AUTO_CHUNK_VOCAB else 0) if setting == -1 else setting


def token_logprobs(params, tokens_bt, cfg: ModelConfig, temperature: float = 1.0, chunk: int = 0):
  """(B, T) tokens -> (log-probs (B, T), entropies (B, T)) of each token given its prefix.

  `temperature` divides the logits, matching the sampler's behaviour distribution. `chunk` > 0
  computes them `chunk` positions at a time from the final hidden states (chunked_logprobs)."""
  if chunk > 0:
    hidden, _ = decoder.forward(params, tokens_bt, cfg, return_hidden=True)
    return chunked_logprobs(hidden, params, tokens_bt, cfg, temperature, chunk)
  logits, _ = decoder.forward(params, tokens_bt, cfg)
  return logprobs_from_logits(logits, tokens_bt, temperature)


def chunked_logprobs(hidden_btd, params, tokens_bt, cfg: ModelConfig, temperature: float, chunk: int):
  """logprobs_from_logits without the (B, T, V) float32 logits: the head (tied embedding or
  lm_head, the final softcap, the temperature) is applied to `chunk` positions at a time in a
  lax.map whose body is rematerialised (jax.checkpoint), so the forward keeps only (B, T) results
  and the backward recomputes one (B, chunk, V) block at a time. Same values and gradients as the
  unchunked path to float32 rounding (tests/test_chunked_logprobs.py).

  Entropy per position: H = logsumexp(z) - sum_v softmax(z)_v z_v, which equals -sum p log p."""
  b, t, d = hidden_btd.shape
  n = -(-(t - 1) // chunk)
  pad = n * chunk - (t - 1)
  h = jnp.pad(hidden_btd[:, :-1], ((0, 0), (0, pad), (0, 0))).reshape(b, n, chunk, d).swapaxes(0, 1)
  y = jnp.pad(tokens_bt[:, 1:], ((0, 0), (0, pad))).reshape(b, n, chunk).swapaxes(0, 1)
  dt = hidden_btd.dtype
  w = params["embed"].astype(dt) if cfg.tie_embeddings else params["lm_head"].astype(dt)
  spec = "bcd,vd->bcv" if cfg.tie_embeddings else "bcd,dv->bcv"

  @jax.checkpoint
  def one(args):
    hc, yc = args                                                   # (B, C, D), (B, C)
    z = jnp.einsum(spec, hc, w, preferred_element_type=jnp.float32)
    if cfg.final_logit_softcap is not None:
      z = jnp.tanh(z / cfg.final_logit_softcap) * cfg.final_logit_softcap
    z = z / temperature
    lse = jax.nn.logsumexp(z, axis=-1)
    lp = jnp.take_along_axis(z, yc[..., None], axis=-1)[..., 0] - lse
    ent = lse - jnp.sum(jax.nn.softmax(z, axis=-1) * z, axis=-1)
    return lp, ent

  lp, ent = lax.map(one, (h, y))                                    # (n, B, C) each
  lp = lp.swapaxes(0, 1).reshape(b, n * chunk)[:, :t - 1]
  ent = ent.swapaxes(0, 1).reshape(b, n * chunk)[:, :t - 1]
  zero = jnp.zeros((b, 1), jnp.float32)
  return jnp.concatenate([zero, lp], axis=1), jnp.concatenate([zero, ent], axis=1)


def logprobs_from_logits(logits_btv, tokens_bt, temperature: float = 1.0):
  """(B, T, V) logits of a forward pass over (B, T) tokens -> (log-probs (B, T), entropies (B, T))."""
  logp_all = jax.nn.log_softmax(logits_btv[:, :-1].astype(jnp.float32) / temperature, axis=-1)  # (B, T-1, V)
  logp = jnp.take_along_axis(logp_all, tokens_bt[:, 1:, None], axis=-1)[..., 0]
  entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
  pad = jnp.zeros((tokens_bt.shape[0], 1), jnp.float32)
  return jnp.concatenate([pad, logp], axis=1), jnp.concatenate([pad, entropy], axis=1)
