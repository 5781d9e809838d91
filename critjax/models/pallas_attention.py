"""`attention_impl='pallas'`: the model's attention call routed to the Pallas kernels in `kernels/`.

Dimension key: B batch, T query positions, S key/value positions, H query heads, K kv heads,
G = H // K, D head dim.

Routing: a few query positions against a longer cache (decode, speculative steps) go to the
flash-decoding kernel; everything else (training T == S, prefill of a prompt or of a continuation
chunk against the cache) goes to the flash kernel. Both kernels read K/V in the layout given:
(B, S, K, D) 'bskd' from training, the kv-head-major cache (B, K, S, D) 'bksd' from cached calls,
which is never transposed or copied on its way in. On a platform without a Pallas lowering here
(TPU for now) `attend` returns None and the dispatch in `attention.py` falls back to XLA with a
one-line warning. On the CPU the kernels run in interpret mode: correct, slow, for tests.

Query positions: the kernels take the (B, T) positions themselves and mask each query by its
own position, so any positions give XLA's result: the decoder's contiguous start_b + arange(T),
but also gaps, repeats, any order or packed rows whose positions restart. Only the set of key
tiles a query tile visits is derived from the tile's smallest and largest position; for the
contiguous positions of the decoder that is the set an offset gives, so the fast path costs
nothing more than one (Q,) int32 load per tile. Unsorted positions may make a tile visit key tiles
that none of its queries sees; those are masked (correct, only slower). The kernels used to take
q_offset = q_pos[:, 0] and assume q_pos = q_offset + arange(T): under jit the positions are traced,
so that could not be checked, and any other positions silently gave a result other than XLA's.
"""
from __future__ import annotations

import operator
from typing import Optional

import jax.numpy as jnp

from critjax.models import attention
from kernels import backend, layout
from kernels.decode_attention import decode_attention
from kernels.flash_attention import flash_attention

# At most this many query positions (and T * G query rows per kv head) use the decode kernel.
DECODE_MAX_T = 16
DECODE_MAX_ROWS = 128


def _check(q_bthd, k, v, q_pos_bt, kv_len_b, kv_layout, scale=1.0, softcap=None, window=None):
  fn = "attention"
  shapes = (f" (q {q_bthd.shape}, k {k.shape}, v {v.shape}, q_pos {q_pos_bt.shape}, "
            f"kv_len {kv_len_b.shape}, kv_layout {kv_layout!r})")
  s, _ = attention.check_inputs(fn, q_bthd, k, v, q_pos_bt, kv_len_b, scale=scale,
                                softcap=softcap, window=window, kv_layout=kv_layout)
  t = q_bthd.shape[1]
  if s < t:
    raise ValueError(f"{fn}: cache of {s} positions shorter than the {t} queries{shapes}")
  # Concrete lengths (eager calls) can be checked against the cache; traced ones are clamped.
  attention.check_kv_len_values(fn, kv_len_b, s, shapes)
  return shapes


def attend(q_bthd, k, v, q_pos_bt, kv_len_b, *, scale: float, softcap: Optional[float] = None,
           window: Optional[int] = None, kv_layout: str = "bskd"):
  """Same arguments and result as `critjax.models.attention.xla_attention` (k, v (B, S, K, D)
  for kv_layout 'bskd', (B, K, S, D) for 'bksd'), for any query positions; None when this
  platform has no Pallas path (the caller then uses XLA)."""
  if not backend.supported():
    return None
  q_pos_bt, kv_len_b = jnp.asarray(q_pos_bt), jnp.asarray(kv_len_b)
  _check(q_bthd, k, v, q_pos_bt, kv_len_b, kv_layout, scale, softcap, window)
  b, t, h, d = q_bthd.shape
  s, kh = layout.seq_heads(k.shape, kv_layout)
  if t == 0:                                   # an empty chunk: nothing to launch
    return jnp.zeros(q_bthd.shape, q_bthd.dtype)
  kw = dict(scale=float(scale), softcap=None if softcap is None else float(softcap),
            window=None if window is None else operator.index(window), kv_layout=kv_layout)
  # The kernels take the positions themselves ((B, T), not an offset): see the module docstring.
  if t <= DECODE_MAX_T and t * (h // kh) <= DECODE_MAX_ROWS and s > t:
    return decode_attention(q_bthd, k, v, q_pos_bt, kv_len_b, **kw)
  return flash_attention(q_bthd, k, v, q_pos_bt, kv_len_b, **kw)
