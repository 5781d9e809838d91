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

Contract with the decoder: query positions are contiguous per row, q_pos[b, t] = q_pos[b, 0] + t
(the decoder builds them as start_b + arange(T)), so the kernels take q_offset = q_pos[:, 0].
"""
from __future__ import annotations

from typing import Optional

import jax
import numpy as np

from kernels import backend, layout
from kernels.decode_attention import decode_attention
from kernels.flash_attention import flash_attention

# At most this many query positions (and T * G query rows per kv head) use the decode kernel.
DECODE_MAX_T = 16
DECODE_MAX_ROWS = 128


def _check(q_bthd, k, v, q_pos_bt, kv_len_b, kv_layout):
  shapes = (f"q {q_bthd.shape}, k {k.shape}, v {v.shape}, q_pos {q_pos_bt.shape}, "
            f"kv_len {kv_len_b.shape}, kv_layout {kv_layout!r}")
  layout.check(kv_layout, f"({shapes})")
  b, t, h, d = q_bthd.shape
  s, kh = layout.seq_heads(k.shape, kv_layout)
  if h % kh:
    raise ValueError(f"attention: {h} query heads not divisible by {kh} kv heads ({shapes})")
  if k.shape != v.shape or k.shape[0] != b or k.shape[3] != d:
    raise ValueError(f"attention: q/k/v shapes disagree ({shapes})")
  if q_pos_bt.shape != (b, t) or kv_len_b.shape != (b,):
    raise ValueError(f"attention: q_pos must be (B, T)=({b}, {t}), kv_len (B,)=({b},) ({shapes})")
  if s < t:
    raise ValueError(f"attention: cache of {s} positions shorter than the {t} queries ({shapes})")
  # Concrete lengths (eager calls) can be checked against the cache; traced ones are clamped.
  try:
    kv_len = np.asarray(kv_len_b)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
    kv_len = None
  if kv_len is not None and kv_len.size and int(kv_len.max()) > s:
    raise ValueError(f"attention: kv_len {kv_len.tolist()} exceeds the cache length {s} ({shapes})")
  return shapes


def attend(q_bthd, k, v, q_pos_bt, kv_len_b, *, scale: float, softcap: Optional[float] = None,
           window: Optional[int] = None, kv_layout: str = "bskd"):
  """Same arguments and result as `critjax.models.attention.xla_attention` (k, v (B, S, K, D)
  for kv_layout 'bskd', (B, K, S, D) for 'bksd'); None when this platform has no Pallas path (the
  caller then uses XLA)."""
  if not backend.supported():
    return None
  _check(q_bthd, k, v, q_pos_bt, kv_len_b, kv_layout)
  b, t, h, d = q_bthd.shape
  s, kh = layout.seq_heads(k.shape, kv_layout)
  q_offset = q_pos_bt[:, 0]
  kw = dict(scale=scale, softcap=softcap, window=window, kv_layout=kv_layout)
  if t <= DECODE_MAX_T and t * (h // kh) <= DECODE_MAX_ROWS and s > t:
    return decode_attention(q_bthd, k, v, q_offset, kv_len_b, **kw)
  return flash_attention(q_bthd, k, v, q_offset, kv_len_b, **kw)
