"""Per-token log-probs and entropies of a sequence under a model, in float32.

Per-token arrays are aligned with the token they score: position t holds log p(token_t | tokens_<t),
and position 0 (no context) holds 0. Masks, advantages and old log-probs use the same alignment.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from critjax.models import decoder
from critjax.models.config import ModelConfig


def token_logprobs(params, tokens_bt, cfg: ModelConfig, temperature: float = 1.0, *, score_from: int = 0,
                   entropy_grad: bool = True):
  """(B, T) tokens -> (log-probs (B, T), entropies (B, T)) of each token given its prefix.

  `temperature` divides the logits, matching the sampler's behaviour distribution. `score_from`
  (static) skips the LM head at positions < score_from (prompt tokens no loss reads; their outputs
  are 0): the vocab projection is the costliest matmul per position. `entropy_grad=False` keeps the
  entropy out of the backward pass (it is then a metric only)."""
  hidden, _ = decoder.forward(params, tokens_bt, cfg, return_hidden=True)           # (B, T, D)
  logits = decoder.lm_head(params, hidden[:, score_from:-1], cfg) / temperature     # (B, T-1-s, V)
  lse = jax.nn.logsumexp(logits, axis=-1)
  logp = jnp.take_along_axis(logits, tokens_bt[:, score_from + 1:, None], axis=-1)[..., 0] - lse
  ent_logits, ent_lse = (logits, lse) if entropy_grad else jax.lax.stop_gradient((logits, lse))
  entropy = ent_lse - jnp.sum(jax.nn.softmax(ent_logits, axis=-1) * ent_logits, axis=-1)
  pad = jnp.zeros((tokens_bt.shape[0], score_from + 1), jnp.float32)
  return jnp.concatenate([pad, logp], axis=1), jnp.concatenate([pad, entropy], axis=1)
