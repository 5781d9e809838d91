"""Pallas attention kernels (interpret mode on the CPU) against a float64 NumPy reference.

Interpret mode fills every output buffer with NaN before the kernel runs (checked by
`test_interpret_mode_poisons_outputs`), so an element a kernel fails to write shows up as NaN and
fails the comparison. Inputs are fresh standard-normal draws, never zeros.

K/V are drawn (B, S, K, D) and handed to a kernel in the layout under test ('bksd' = kv-head-major,
the KV cache's layout, by a NumPy transpose); the reference always reads the (B, S, K, D) draw.
"""
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import pallas as pl

from kernels import backend
from kernels.decode_attention import decode_attention
from kernels.flash_attention import flash_attention
from kernels.reference import flash_attention_reference


def np_attention(q, k, v, q_offset, kv_len, *, scale, causal=True, softcap=None, window=None):
  """float64 NumPy: the mask rule of `critjax.models.attention.attention_mask`, one row at a time."""
  q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
  b, t, h, d = q.shape
  s, kh = k.shape[1], k.shape[2]
  g = h // kh
  out = np.zeros((b, t, h, d))
  for bi in range(b):
    for ti in range(t):
      pos = int(q_offset[bi]) + ti
      keys = np.arange(s)
      vis = keys < min(int(kv_len[bi]), s)
      if causal:
        vis &= keys <= pos
      if window is not None:
        vis &= pos - keys < window
      if not vis.any():
        continue
      for hi in range(h):
        logits = k[bi, :, hi // g] @ q[bi, ti, hi] * scale
        if softcap is not None:
          logits = np.tanh(logits / softcap) * softcap
        logits = np.where(vis, logits, -np.inf)
        w = np.exp(logits - logits.max())
        out[bi, ti, hi] = (w / w.sum()) @ v[bi, :, hi // g]
  return out


# On a GPU (`experiments/gpu_checks.sh`) the same cases run compiled through Triton, whose tiles need
# head dims of 64, 128 or 256: smaller test head dims are raised to 64 there.
ON_GPU = backend.platform() == "gpu"


def _inputs(seed, b, t, s, h, kh, d, dtype=jnp.float32, gpu_head_dim=True):
  if ON_GPU and gpu_head_dim and d < 64:
    d = 64
  rng = np.random.default_rng(seed)
  mk = lambda *shape: jnp.asarray(rng.standard_normal(shape), dtype)
  return mk(b, t, h, d), mk(b, s, kh, d), mk(b, s, kh, d)


def _lay(x_bskd, layout):
  """A (B, S, K, D) array in `layout` (a real transpose, so strides differ from the draw)."""
  return x_bskd if layout == "bskd" else jnp.asarray(np.ascontiguousarray(
      np.swapaxes(np.asarray(x_bskd), 1, 2)))


def _assert_close(out, ref, dtype):
  out = np.asarray(out.astype(jnp.float32))
  assert not np.isnan(out).any(), "kernel left elements unwritten (NaN poison) or produced NaN"
  tol = dict(atol=2e-5, rtol=2e-5) if dtype == jnp.float32 else dict(atol=3e-2, rtol=3e-2)
  np.testing.assert_allclose(out, ref, **tol)


def test_interpret_mode_poisons_outputs():
  """The guarantee the other tests lean on: an output element no program writes reads NaN."""
  def kernel(x_ref, o_ref):
    @pl.when(pl.program_id(0) == 0)
    def _():
      o_ref[...] = x_ref[...]
  out = pl.pallas_call(kernel, grid=(2,), in_specs=[pl.BlockSpec((4,), lambda i: (i,))],
                       out_specs=pl.BlockSpec((4,), lambda i: (i,)),
                       out_shape=jax.ShapeDtypeStruct((8,), jnp.float32), interpret=True)(jnp.ones(8))
  assert np.all(np.asarray(out[:4]) == 1) and np.all(np.isnan(np.asarray(out[4:])))


# (b, t, s, h, kh, d, q_offset, kv_len, causal, softcap, window, dtype)
FLASH_CASES = {
    "train_mha_odd_pad": (2, 37, 37, 2, 2, 16, [0, 0], [37, 20], True, None, None, jnp.float32),
    "gqa2_window": (1, 50, 50, 4, 2, 16, [0], [50], True, None, 9, jnp.float32),
    "gqa4_softcap": (2, 33, 33, 8, 2, 16, [0, 0], [33, 1], True, 5.0, None, jnp.float32),
    "gqa8_noncausal": (2, 17, 17, 8, 1, 16, [0, 0], [17, 5], False, None, None, jnp.float32),
    "continuation_empty": (3, 21, 64, 4, 2, 16, [0, 10, 0], [21, 31, 0], True, None, None, jnp.float32),
    "length1": (2, 1, 1, 2, 1, 16, [0, 0], [1, 0], True, None, None, jnp.float32),
    "bf16_gqa2": (2, 40, 40, 4, 2, 32, [0, 0], [40, 27], True, None, None, jnp.bfloat16),
    "d64": (1, 20, 20, 2, 1, 64, [0], [20], True, None, None, jnp.float32),
    "d128_bf16": (1, 20, 20, 2, 1, 128, [0], [20], True, None, 6, jnp.bfloat16),
    "d256": (1, 18, 18, 2, 1, 256, [0], [18], True, 8.0, None, jnp.float32),
}


# Cases also run with the cache's kv-head-major layout (continuation chunks read the cache).
FLASH_BKSD = ("continuation_empty", "gqa4_softcap", "bf16_gqa2")


@pytest.mark.parametrize("name,layout", [(n, "bskd") for n in FLASH_CASES]
                         + [(n, "bksd") for n in FLASH_BKSD])
def test_flash_forward_matches_float64(name, layout):
  b, t, s, h, kh, d, qo, kl, causal, cap, win, dtype = FLASH_CASES[name]
  q, k, v = _inputs(zlib.crc32(name.encode()), b, t, s, h, kh, d, dtype)
  qo, kl = jnp.array(qo), jnp.array(kl)
  kw = dict(scale=d ** -0.5, causal=causal, softcap=cap, window=win)
  out = flash_attention(q, _lay(k, layout), _lay(v, layout), qo, kl, kv_layout=layout, **kw)
  assert out.shape == q.shape and out.dtype == dtype
  _assert_close(out, np_attention(q.astype(jnp.float32), k.astype(jnp.float32),
                                  v.astype(jnp.float32), qo, kl, **kw), dtype)


GRAD_CASES = {
    "gqa2_window_softcap": (2, 37, 37, 4, 2, 16, [0, 0], [37, 23], True, 4.0, 11, jnp.float32),
    "gqa4_continuation_empty": (3, 19, 48, 8, 2, 16, [0, 20, 0], [19, 39, 0], True, None, None,
                                jnp.float32),
    "mha_noncausal": (1, 24, 24, 2, 2, 16, [0], [15], False, None, None, jnp.float32),
    "bf16_gqa2": (1, 33, 33, 4, 2, 32, [0], [33], True, None, None, jnp.bfloat16),
}


@pytest.mark.parametrize("name,layout", [(n, "bskd") for n in GRAD_CASES]
                         + [("gqa4_continuation_empty", "bksd")])
def test_flash_gradients_match_reference(name, layout):
  b, t, s, h, kh, d, qo, kl, causal, cap, win, dtype = GRAD_CASES[name]
  q, k, v = _inputs(zlib.crc32(name.encode()), b, t, s, h, kh, d, dtype)
  cot = jnp.asarray(np.random.default_rng(1).standard_normal(q.shape), jnp.float32)
  qo, kl = jnp.array(qo), jnp.array(kl)
  kw = dict(scale=d ** -0.5, causal=causal, softcap=cap, window=win)

  def loss(fn, **extra):
    return lambda q, k, v: jnp.sum(fn(q, k, v, qo, kl, **kw, **extra).astype(jnp.float32) * cot)

  got = jax.grad(loss(flash_attention, kv_layout=layout), argnums=(0, 1, 2))(
      q, _lay(k, layout), _lay(v, layout))
  f32 = lambda x: x.astype(jnp.float32)
  want = jax.grad(loss(flash_attention_reference), argnums=(0, 1, 2))(f32(q), f32(k), f32(v))
  # The reference differentiates the (B, S, K, D) draw: bring its dK, dV into the kernel's layout.
  want = (want[0], _lay(want[1], layout), _lay(want[2], layout))
  for name_, g, w in zip("qkv", got, want):
    assert g.dtype == dtype, name_
    g = np.asarray(f32(g))
    assert not np.isnan(g).any(), f"d{name_} has NaN"
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == jnp.float32 else dict(atol=8e-2, rtol=5e-2)
    np.testing.assert_allclose(g, np.asarray(w), err_msg=f"d{name_}", **tol)


@pytest.mark.parametrize("layout", ["bskd", "bksd"])
def test_flash_skips_key_blocks_outside_the_mask(layout):
  """Keys in tiles past each row's length or before the window are never loaded: NaN there must
  not reach the output (masking alone would give 0 * NaN = NaN in the P @ V product)."""
  b, t, s, h, kh, d = 2, 64, 64, 2, 1, 16
  q, k, v = _inputs(3, b, t, s, h, kh, d)
  kl = np.array([20, 64])
  pos = np.arange(s)
  # Row 0: tiles from 32 on lie past kv_len 20. Row 1 (window 16, query tile 48..63): keys < 32.
  poison = np.stack([pos >= 32, np.zeros(s, bool)])
  kn = jnp.where(poison[:, :, None, None], jnp.nan, k)
  vn = jnp.where(poison[:, :, None, None], jnp.nan, v)
  out = flash_attention(q, _lay(kn, layout), _lay(vn, layout), jnp.zeros(2, jnp.int32),
                        jnp.array(kl), scale=0.25, block_q=16, block_k=16, kv_layout=layout)
  _assert_close(out, np_attention(q, k, v, [0, 0], kl, scale=0.25), jnp.float32)
  poison_w = pos < 32
  kn = jnp.where(poison_w[None, :, None, None], jnp.nan, k)
  vn = jnp.where(poison_w[None, :, None, None], jnp.nan, v)
  out = flash_attention(q[:, 48:], _lay(kn, layout), _lay(vn, layout), jnp.full((2,), 48),
                        jnp.array([64, 64]), scale=0.25, window=16, block_q=16, block_k=16,
                        kv_layout=layout)
  ref = np_attention(q[:, 48:], k, v, [48, 48], [64, 64], scale=0.25, window=16)
  _assert_close(out, ref, jnp.float32)


# (b, t, s, h, kh, d, q_offset, splits, softcap, window, dtype); kv_len = q_offset + t except
# where given as the last entry.
DECODE_CASES = {
    "g1_t1_odd_cache": (3, 1, 77, 2, 2, 16, [0, 40, 76], 4, None, None, jnp.float32),
    "g2_t1": (2, 1, 96, 4, 2, 16, [5, 95], 3, None, None, jnp.float32),
    "g4_t3_window": (2, 3, 96, 8, 2, 16, [10, 90], 4, None, 20, jnp.float32),
    "g8_t2_softcap": (2, 2, 80, 8, 1, 32, [0, 70], 8, 3.0, None, jnp.float32),
    "g4_bf16": (2, 1, 128, 4, 1, 64, [63, 127], 4, None, None, jnp.bfloat16),
    "one_split": (1, 4, 64, 4, 2, 16, [30], 1, None, None, jnp.float32),
    "d256": (1, 1, 48, 2, 1, 256, [47], 2, None, None, jnp.float32),
}


# The decode kernel reads the cache kv-head-major ('bksd', its default); 'bskd' still works.
DECODE_BSKD = ("g2_t1", "g4_t3_window")


@pytest.mark.parametrize("name,layout", [(n, "bksd") for n in DECODE_CASES]
                         + [(n, "bskd") for n in DECODE_BSKD])
def test_decode_matches_float64(name, layout):
  b, t, s, h, kh, d, qo, splits, cap, win, dtype = DECODE_CASES[name]
  q, k, v = _inputs(zlib.crc32(name.encode()), b, t, s, h, kh, d, dtype)
  qo = jnp.array(qo)
  kl = qo + t
  kw = dict(scale=d ** -0.5, softcap=cap, window=win)
  out = decode_attention(q, _lay(k, layout), _lay(v, layout), qo, kl, splits=splits,
                         kv_layout=layout, **kw)
  assert out.shape == q.shape and out.dtype == dtype
  f32 = lambda x: x.astype(jnp.float32)
  _assert_close(out, np_attention(f32(q), f32(k), f32(v), qo, kl, **kw), dtype)


def test_decode_empty_rows_and_short_lengths():
  """kv_len 0 gives zeros; kv_len shorter than q_offset + 1 (a row whose queries see fewer keys)."""
  b, t, s, h, kh, d = 3, 1, 64, 4, 2, 16
  q, k, v = _inputs(5, b, t, s, h, kh, d)
  qo, kl = np.array([0, 30, 63]), np.array([0, 1, 64])
  out = decode_attention(q, _lay(k, "bksd"), _lay(v, "bksd"), jnp.array(qo), jnp.array(kl),
                         scale=0.25, splits=4)
  _assert_close(out, np_attention(q, k, v, qo, kl, scale=0.25), jnp.float32)
  assert np.all(np.asarray(out[0]) == 0)


@pytest.mark.parametrize("layout", ["bksd", "bskd"])
def test_decode_skips_blocks_past_length(layout):
  """Cache tiles past each row's length hold NaN: they must be skipped, not loaded and masked."""
  b, t, s, h, kh, d = 2, 1, 128, 4, 1, 16
  q, k, v = _inputs(6, b, t, s, h, kh, d)
  qo = np.array([19, 49])
  kl = qo + 1
  poison = np.arange(s)[None, :] >= np.array([32, 64])[:, None]       # from the next 16-tile on
  kn = jnp.where(poison[:, :, None, None], jnp.nan, k)
  vn = jnp.where(poison[:, :, None, None], jnp.nan, v)
  out = decode_attention(q, _lay(kn, layout), _lay(vn, layout), jnp.array(qo), jnp.array(kl),
                         scale=0.25, block_k=16, splits=3, kv_layout=layout)
  _assert_close(out, np_attention(q, k, v, qo, kl, scale=0.25), jnp.float32)


def test_bad_shapes_raise_naming_them(monkeypatch):
  q, k, v = _inputs(7, 1, 4, 8, 3, 2, 16, gpu_head_dim=False)
  with pytest.raises(ValueError, match=r"H=3 not divisible by kv heads K=2.*\(1, 4, 3, 16\)"):
    flash_attention(q, k, v, jnp.zeros(1, jnp.int32), jnp.ones(1, jnp.int32), scale=1.0)
  with pytest.raises(ValueError, match="H=3 not divisible"):
    decode_attention(q, k, v, jnp.zeros(1, jnp.int32), jnp.ones(1, jnp.int32), scale=1.0,
                     kv_layout="bskd")
  kt, vt = _lay(k, "bksd"), _lay(v, "bksd")   # (1, 2, 8, 16): K = 2 read from axis 1
  with pytest.raises(ValueError, match=r"H=3 not divisible by kv heads K=2.*'bksd'"):
    decode_attention(q, kt, vt, jnp.zeros(1, jnp.int32), jnp.ones(1, jnp.int32), scale=1.0)
  with pytest.raises(ValueError, match=r"kv_layout='bsdk'; expected one of"):
    flash_attention(q, k, v, jnp.zeros(1, jnp.int32), jnp.ones(1, jnp.int32), scale=1.0,
                    kv_layout="bsdk")
  q, k, v = _inputs(7, 1, 4, 8, 2, 1, 48, gpu_head_dim=False)
  monkeypatch.setattr(backend, "platform", lambda: "gpu")
  with pytest.raises(ValueError, match=r"head dim 48 unsupported.*\(1, 4, 2, 48\)"):
    flash_attention(q, k, v, jnp.zeros(1, jnp.int32), jnp.ones(1, jnp.int32), scale=1.0,
                    interpret=False)
