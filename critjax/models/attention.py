"""Attention with one mask rule for training, prefill, multi-turn continuation and decode.

Dimension key: B batch, T query positions, S key/value positions, H query heads, K kv heads,
G = H // K queries per kv head, D head dim.

Every query at absolute position p attends to keys at positions s with
    s <= p            (causal)
    s <  kv_len[b]    (keys written so far; skips cache slots past the row's length)
    p - s < window    (sliding-window layers only)
so right-padded batches need no separate padding mask: a valid token never sees a later pad.
"""
from __future__ import annotations

import functools
import logging
from typing import Optional

import jax
import jax.numpy as jnp

_warned: set = set()


def _warn_once(msg: str):
  if msg not in _warned:
    _warned.add(msg)
    logging.warning(msg)


def attention_mask(q_pos_bt, kv_len_b, s: int, window: Optional[int]):
  """(B, T) query positions, (B,) key counts -> bool (B, 1, 1, T, S) mask."""
  kv_pos = jnp.arange(s)[None, None, :]
  mask = (kv_pos <= q_pos_bt[:, :, None]) & (kv_pos < kv_len_b[:, None, None])
  if window is not None:
    mask &= (q_pos_bt[:, :, None] - kv_pos) < window
  return mask[:, None, None, :, :]


def xla_attention(q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, *, scale: float,
                  softcap: Optional[float] = None, window: Optional[int] = None, kv_layout: str = "bskd"):
  """Plain einsum attention, GQA without repeating K/V. Softmax in float32.

  kv_layout 'bksd': K/V arrive kv-head-major (B, K, S, D), the KV cache's layout. The dots batch
  over (b, k), so with (B, S, K, D) XLA transposes the whole cache into that order at every decode
  step (two full copies of K and V per layer per token); kv-head-major storage needs none."""
  b, t, h, d = q_bthd.shape
  hm = kv_layout == "bksd"
  k = k_bskd.shape[1] if hm else k_bskd.shape[2]
  kv = "bksd" if hm else "bskd"
  q = q_bthd.reshape(b, t, k, h // k, d)                      # (B, T, K, G, D)
  scores = jnp.einsum(f"btkgd,{kv}->bkgts", q, k_bskd, preferred_element_type=jnp.float32) * scale
  if softcap is not None:
    scores = jnp.tanh(scores / softcap) * softcap
  mask = attention_mask(q_pos_bt, kv_len_b, k_bskd.shape[2 if hm else 1], window)
  scores = jnp.where(mask, scores, -1e30)
  probs = jax.nn.softmax(scores, axis=-1)
  # A query with no visible key (only padding rows) gets zeros rather than a uniform average.
  probs = jnp.where(mask, probs, 0.0).astype(v_bskd.dtype)
  out = jnp.einsum(f"bkgts,{kv}->btkgd", probs, v_bskd)
  return out.reshape(b, t, h, d)


def attend(q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, *, impl: str, scale: float,
           softcap: Optional[float] = None, window: Optional[int] = None, kv_layout: str = "bskd"):
  """Dispatch on `impl` ('xla' | 'pallas' | 'cudnn'); falls back to 'xla' with a one-line warning
  where the chosen path cannot express the request, never silently giving a different result.

  kv_layout: 'bskd' (B, S, K, D) or 'bksd' (kv-head-major, the KV cache's layout). XLA and the
  Pallas kernels read either layout in place; only cuDNN gets a transposed copy of a 'bksd' cache
  (see `_cudnn_attention`)."""
  if kv_layout not in ("bskd", "bksd"):
    raise ValueError(f"attention kv_layout={kv_layout!r}; expected 'bskd' or 'bksd'")
  if impl == "pallas":
    try:
      from critjax.models import pallas_attention
    except ImportError as e:  # kernels not available in this install
      _warn_once(f"attention_impl='pallas' unavailable ({e}); using 'xla'")
    else:
      out = pallas_attention.attend(q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, scale=scale,
                                    softcap=softcap, window=window, kv_layout=kv_layout)
      if out is not None:
        return out
      _warn_once(f"attention_impl='pallas' has no kernels for platform {jax.default_backend()!r}; "
                 "using 'xla'")
  elif impl == "cudnn":
    if (jax.default_backend() != "gpu" or softcap is not None or window is not None
        or q_bthd.dtype not in (jnp.bfloat16, jnp.float16)):
      _warn_once("attention_impl='cudnn' needs a GPU, bfloat16/float16 and no soft-cap/window; "
                 "using 'xla'")
    else:
      return _cudnn_attention(q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, scale=scale,
                              kv_layout=kv_layout)
  return xla_attention(q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, scale=scale,
                       softcap=softcap, window=window, kv_layout=kv_layout)


def _cudnn_attention(q, k, v, q_pos_bt, kv_len_b, *, scale, kv_layout: str = "bskd"):
  """cuDNN fused attention (GQA native). T == S only arises with positions 0..T-1 (training, or
  a prefill into a cache of exactly T), where causal + key lengths say the whole mask and cuDNN
  needs no (B, 1, T, S) tensor; otherwise the mask is passed explicitly.

  `jax.nn.dot_product_attention` takes K/V as (B, S, N, H) only, so a 'bksd' cache is transposed
  here: a full copy of K and V per layer per call, which makes cuDNN a poor choice for decode
  (use 'pallas' or 'xla', which read the cache in place)."""
  if kv_layout == "bksd":
    k, v = jnp.swapaxes(k, 1, 2), jnp.swapaxes(v, 1, 2)                # (B, S, K, D) copies
  t, s = q.shape[1], k.shape[1]
  if t == s:
    return jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=True,
                                        key_value_seq_lengths=kv_len_b, implementation="cudnn")
  mask = attention_mask(q_pos_bt, kv_len_b, s, None)[:, 0]   # (B, 1, T, S)
  return jax.nn.dot_product_attention(q, k, v, mask=mask, scale=scale, implementation="cudnn")
