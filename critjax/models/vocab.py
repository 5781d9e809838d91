"""Growing a decoder's vocabulary for tokens added to its tokenizer (ReVISE's [refine] token, arXiv
2502.14565, ALGORITHMS.md §9; Tokenizer.add_special_tokens).

New rows are initialised to the mean of the existing ones, in the embedding and, when it is not
tied, in the output head (our documented choice; Hewitt's "mean initialisation" of new embeddings):
for a tied head the new token's first logit is then the mean of the old logits, so it starts as
probable as an average token, never dominating the softmax the way a large random row can, and
every old token's logit is unchanged. The model config's vocab_size grows with the rows; the
Hugging Face export writes the arrays as they are, so it carries the new rows.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from critjax.models.config import ModelConfig


def resize_vocab(params: dict, cfg: ModelConfig, new_size: int) -> tuple[dict, ModelConfig]:
  """(params, cfg) with vocab_size = new_size, the new rows (columns of an untied lm_head) the mean
  of the old ones. new_size < vocab_size is refused (ids would lose their rows)."""
  old = cfg.vocab_size
  if new_size < old:
    raise ValueError(f"resize_vocab: new_size={new_size} < model.vocab_size={old}; a vocabulary only grows")
  if new_size == old:
    return params, cfg
  out = dict(params)
  e = params["embed"]                                       # (V, D)
  if e.shape[0] != old:
    raise ValueError(f"resize_vocab: params['embed'] has {e.shape[0]} rows but model.vocab_size={old}")
  mean = jnp.mean(e.astype(jnp.float32), axis=0, keepdims=True).astype(e.dtype)
  out["embed"] = jnp.concatenate([e, jnp.repeat(mean, new_size - old, axis=0)], axis=0)
  if not cfg.tie_embeddings:
    h = params["lm_head"]                                   # (D, V)
    col = jnp.mean(h.astype(jnp.float32), axis=1, keepdims=True).astype(h.dtype)
    out["lm_head"] = jnp.concatenate([h, jnp.repeat(col, new_size - old, axis=1)], axis=1)
  return out, dataclasses.replace(cfg, vocab_size=new_size)
