"""Attention with one mask rule for training, prefill, multi-turn continuation and decode.

Dimension key: B batch, T query positions, S key/value positions, H query heads, K kv heads,
G = H // K queries per kv head, D head dim.

Every query at absolute position p attends to keys at positions s with
    s <= p            (causal)
    s <  kv_len[b]    (keys written so far; skips cache slots past the row's length)
    p - s < window    (sliding-window layers only)
so right-padded batches need no separate padding mask: a valid token never sees a later pad.
Positions may be anything (gaps, repeats, any order, packed rows whose positions restart): 'xla'
and 'pallas' mask by the actual q_pos values ('cudnn' with T == S assumes 0..T-1, see
`_cudnn_attention`). "No window" and "no soft-cap" are None (as in
`ModelConfig`); 0 or a negative value is an error, not "off".

Input checks (`check_inputs`) are Python on static shapes, dtypes and arguments, so they run once
at trace time and cost nothing per step; kv_len values are checked too when they are concrete
(eager calls). Every error names the entry point, the argument and the rule it breaks.
"""
from __future__ import annotations

import logging
import math
import operator
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

IMPLS = ("xla", "pallas", "cudnn")
KV_LAYOUTS = ("bskd", "bksd")

_warned: set = set()


def _warn_once(msg: str):
  if msg not in _warned:
    _warned.add(msg)
    logging.warning(msg)


def _dims(kv_layout: str) -> str:
  return "(B, S, K, D)" if kv_layout == "bskd" else "(B, K, S, D)"


def _is_int_dtype(x) -> bool:
  return jnp.issubdtype(x.dtype, jnp.integer)


def check_inputs(fn: str, q, k, v, q_pos, kv_len, *, scale, softcap, window, kv_layout):
  """Raises ValueError / TypeError naming `fn`, the argument and the constraint. Static: shapes,
  dtypes, scale / softcap / window / kv_layout. -> (S, K), the key length and kv head count."""
  if kv_layout not in KV_LAYOUTS:
    raise ValueError(f"{fn}: kv_layout must be 'bskd' or 'bksd', got {kv_layout!r}")
  dims = _dims(kv_layout)
  for name, x in (("q", q), ("k", k), ("v", v), ("q_pos", q_pos), ("kv_len", kv_len)):
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
      raise TypeError(f"{fn}: {name} must be an array, got {type(x).__name__}")
  if q.ndim != 4:
    raise ValueError(f"{fn}: q must be (B, T, H, D), got shape {q.shape}")
  for name, x in (("k", k), ("v", v)):
    if x.ndim != 4:
      raise ValueError(f"{fn}: {name} must be {dims} for kv_layout {kv_layout!r}, got shape {x.shape}")
  if k.shape != v.shape:
    raise ValueError(f"{fn}: k has shape {k.shape} but v has shape {v.shape}; they must match")
  b, t, h, d = q.shape
  s, kh = (k.shape[1], k.shape[2]) if kv_layout == "bskd" else (k.shape[2], k.shape[1])
  if k.shape[0] != b:
    raise ValueError(f"{fn}: q has batch {b} but k has batch {k.shape[0]} (q {q.shape}, k {k.shape})")
  if k.shape[3] != d:
    raise ValueError(f"{fn}: q has shape {q.shape} but k has head_dim {k.shape[3]} (k {k.shape}, "
                     f"kv_layout {kv_layout!r})")
  if h < 1 or kh < 1 or h % kh:
    raise ValueError(f"{fn}: q has {h} query heads, not a multiple of the {kh} kv heads of k "
                     f"(GQA needs H % K == 0; q {q.shape}, k {k.shape} {dims}, kv_layout "
                     f"{kv_layout!r})")
  if q_pos.shape != (b, t):
    raise ValueError(f"{fn}: q_pos must have shape (B, T) = ({b}, {t}) to match q {q.shape}, "
                     f"got {q_pos.shape}")
  if kv_len.shape != (b,):
    raise ValueError(f"{fn}: kv_len must have shape (B,) = ({b},) to match q {q.shape}, "
                     f"got {kv_len.shape}")
  for name, x in (("q_pos", q_pos), ("kv_len", kv_len)):
    if not _is_int_dtype(x):
      raise TypeError(f"{fn}: {name} must be an integer array, got {x.dtype}")
  if not all(jnp.issubdtype(x.dtype, jnp.floating) for x in (q, k, v)):
    raise TypeError(f"{fn}: q, k and v must be floating point, got q {q.dtype}, k {k.dtype}, "
                    f"v {v.dtype}")
  if not q.dtype == k.dtype == v.dtype:
    raise TypeError(f"{fn}: q, k and v must share one dtype, got q {q.dtype}, k {k.dtype}, "
                    f"v {v.dtype} (cast them first)")
  _check_scalars(fn, scale=scale, softcap=softcap, window=window)
  return s, kh


def _static_float(fn: str, name: str, x, rule: str):
  if isinstance(x, (bool, np.bool_)):
    raise TypeError(f"{fn}: {name} must be {rule}, got {x!r}")
  try:
    return float(x)
  except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
    raise TypeError(f"{fn}: {name} must be a static Python number ({rule}), got "
                    f"{type(x).__name__}") from None


def _check_scalars(fn: str, *, scale, softcap, window):
  sc = _static_float(fn, "scale", scale, "a finite number > 0")
  if not (math.isfinite(sc) and sc > 0):
    raise ValueError(f"{fn}: scale must be a finite number > 0, got {sc!r}")
  if softcap is not None:
    cap = _static_float(fn, "softcap", softcap, "> 0 or None (no soft-cap)")
    if not cap > 0:    # also NaN
      raise ValueError(f"{fn}: softcap must be > 0 or None (no soft-cap), got {cap!r}")
    if not math.isfinite(cap):
      raise ValueError(f"{fn}: softcap must be finite (> 0, or None for no soft-cap), got {cap!r}")
  if window is not None:
    rule = "an int >= 1 or None (no window)"
    if isinstance(window, (bool, np.bool_)):
      raise TypeError(f"{fn}: window must be {rule}, got {window!r}")
    try:
      w = operator.index(window)
    except TypeError:
      raise TypeError(f"{fn}: window must be {rule}, got {window!r}") from None
    if w < 1:
      raise ValueError(f"{fn}: window must be >= 1 or None (no window), got {w}")


def concrete(x):
  """x as a NumPy array when its values are known at trace time (an eager call), else None."""
  try:
    return np.asarray(x)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    return None


def check_kv_len_values(fn: str, kv_len, s: int, shapes: str = ""):
  """Concrete key counts must lie in [0, S]: more than S means a write past the cache's end
  (which `dynamic_update_slice` clamps onto earlier slots). Traced lengths are not checked."""
  n = concrete(kv_len)
  if n is None or not n.size:
    return
  if int(n.max()) > s:
    raise ValueError(f"{fn}: kv_len {n.tolist()} exceeds the cache length {s}{shapes}")
  if int(n.min()) < 0:
    raise ValueError(f"{fn}: kv_len {n.tolist()} must be >= 0{shapes}")


def _window_arg(window):
  return None if window is None else operator.index(window)


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
  step (two full copies of K and V per layer per token); kv-head-major storage needs none.

  q (B, T, H, D); q_pos (B, T) int absolute query positions (any values); kv_len (B,) int keys
  written per row; scale > 0; softcap > 0 or None; window int >= 1 or None. Bad input raises
  (see `check_inputs`)."""
  q_pos_bt, kv_len_b = jnp.asarray(q_pos_bt), jnp.asarray(kv_len_b)
  s, k = check_inputs("xla_attention", q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, scale=scale,
                      softcap=softcap, window=window, kv_layout=kv_layout)
  check_kv_len_values("xla_attention", kv_len_b, s)
  return _xla_attention(q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, scale=float(scale),
                        softcap=None if softcap is None else float(softcap),
                        window=_window_arg(window), kv_layout=kv_layout)


def _xla_attention(q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, *, scale, softcap, window, kv_layout):
  """`xla_attention` on checked inputs."""
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
  (see `_cudnn_attention`).

  Inputs are checked here, before any path is chosen (`check_inputs`). 'xla' and 'pallas' mask by
  the actual q_pos values, contiguous or not (the Pallas kernels take the (B, T) positions, not an
  offset). 'cudnn' with T == S assumes positions 0..T-1 per row, which the decoder's training and
  full-cache prefill calls satisfy (see `_cudnn_attention`)."""
  if impl not in IMPLS:
    raise ValueError(f"attend: impl must be one of {IMPLS}, got {impl!r}")
  q_pos_bt, kv_len_b = jnp.asarray(q_pos_bt), jnp.asarray(kv_len_b)
  s, _ = check_inputs("attend", q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, scale=scale,
                      softcap=softcap, window=window, kv_layout=kv_layout)
  check_kv_len_values("attend", kv_len_b, s)
  scale = float(scale)
  softcap = None if softcap is None else float(softcap)
  window = _window_arg(window)
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
  return _xla_attention(q_bthd, k_bskd, v_bskd, q_pos_bt, kv_len_b, scale=scale,
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
