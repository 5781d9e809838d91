"""Per-token log-probs and entropies of a sequence under a model, in float32.

Per-token arrays are aligned with the token they score: position t holds log p(token_t | tokens_<t),
and position 0 (no context) holds 0. Masks, advantages and old log-probs use the same alignment.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from critjax.models import decoder
from critjax.models.config import ModelConfig


def token_logprobs(params, tokens_bt, cfg: ModelConfig, temperature: float = 1.0):
  """(B, T) tokens -> (log-probs (B, T), entropies (B, T)) of each token given its prefix.

  `temperature` divides the logits, matching the sampler's behaviour distribution."""
  logits, _ = decoder.forward(params, tokens_bt, cfg)
  return logprobs_from_logits(logits, tokens_bt, temperature)


def logprobs_from_logits(logits_btv, tokens_bt, temperature: float = 1.0):
  """(B, T, V) logits of a forward pass over (B, T) tokens -> (log-probs (B, T), entropies (B, T))."""
  logp_all = jax.nn.log_softmax(logits_btv[:, :-1].astype(jnp.float32) / temperature, axis=-1)  # (B, T-1, V)
  logp = jnp.take_along_axis(logp_all, tokens_bt[:, 1:, None], axis=-1)[..., 0]
  entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)
  pad = jnp.zeros((tokens_bt.shape[0], 1), jnp.float32)
  return jnp.concatenate([pad, logp], axis=1), jnp.concatenate([pad, entropy], axis=1)
