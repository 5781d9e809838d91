"""Every kernel configuration lowers, on this CPU, to a Triton module that passes MLIR
verification, as it would for a GPU (`lower(lowering_platforms=('cuda',))`).

This is the part of the GPU path a CPU can check: the H100 run of `experiments/gpu_checks.sh`
found a non-causal backward whose Triton IR failed verification (an i1 operand of `arith.minsi`)
only when XLA parsed it on the GPU. Verifying the module right after Pallas builds it catches
that class of bug here. Numerics on the GPU are checked by the same script (tests compiled).
"""
import jax
import jax.numpy as jnp
import pytest

from kernels import backend
from kernels.decode_attention import decode_attention
from kernels.flash_attention import flash_attention

triton_lowering = pytest.importorskip("jax._src.pallas.triton.pallas_call_registration")


@pytest.fixture
def verified_gpu_lowering(monkeypatch):
  """Pretend the platform is a GPU and verify each Triton module Pallas builds."""
  monkeypatch.setattr(backend, "platform", lambda: "gpu")
  build = triton_lowering.lowering.lower_jaxpr_to_triton_module
  modules = []

  def build_and_verify(*args, **kwargs):
    result = build(*args, **kwargs)
    result.module.operation.verify()        # raises with the failing op on invalid IR
    modules.append(result)
    return result

  monkeypatch.setattr(triton_lowering.lowering, "lower_jaxpr_to_triton_module", build_and_verify)
  return modules


def _lower(fn, *args):
  jax.jit(fn).trace(*args).lower(lowering_platforms=("cuda",))


# (b, t, h, kh, d, causal, softcap, window, dtype, layout)
FLASH = {
    "mha_noncausal_one_tile": (1, 24, 2, 2, 64, False, None, None, jnp.float32, "bskd"),
    "gqa2_causal_odd": (2, 1000, 8, 4, 128, True, None, None, jnp.bfloat16, "bskd"),
    "gqa4_window_softcap": (1, 300, 8, 2, 128, True, 30.0, 64, jnp.float32, "bskd"),
    "gqa8_d256_bf16": (1, 200, 8, 1, 256, True, None, None, jnp.bfloat16, "bskd"),
    "cache_layout_noncausal": (2, 130, 4, 2, 64, False, None, None, jnp.bfloat16, "bksd"),
    "length1": (2, 1, 2, 1, 64, True, None, None, jnp.float32, "bskd"),
}


@pytest.mark.parametrize("name", list(FLASH))
def test_flash_forward_and_backward_lower_to_valid_triton(name, verified_gpu_lowering):
  b, t, h, kh, d, causal, cap, win, dtype, layout = FLASH[name]
  q = jnp.zeros((b, t, h, d), dtype)
  kv = jnp.zeros((b, t, kh, d) if layout == "bskd" else (b, kh, t, d), dtype)
  qo, kl = jnp.zeros((b,), jnp.int32), jnp.full((b,), t, jnp.int32)

  def loss(q, k, v):
    out = flash_attention(q, k, v, qo, kl, scale=d ** -0.5, causal=causal, softcap=cap,
                          window=win, kv_layout=layout, interpret=False)
    return out.astype(jnp.float32).sum()

  _lower(jax.grad(loss, argnums=(0, 1, 2)), q, kv, kv)
  assert len(verified_gpu_lowering) == 3      # forward, dq, dk/dv kernels


# (b, t, h, kh, d, s, softcap, window, dtype, layout)
DECODE = {
    "gqa4_bf16_cache": (4, 1, 32, 8, 128, 4096, None, None, jnp.bfloat16, "bksd"),
    "gqa1_t3_window": (2, 3, 4, 4, 64, 1000, None, 128, jnp.float32, "bksd"),
    "gqa8_softcap_d256": (1, 2, 8, 1, 256, 512, 50.0, None, jnp.bfloat16, "bskd"),
}


@pytest.mark.parametrize("name", list(DECODE))
def test_decode_lowers_to_valid_triton(name, verified_gpu_lowering):
  b, t, h, kh, d, s, cap, win, dtype, layout = DECODE[name]
  q = jnp.zeros((b, t, h, d), dtype)
  kv = jnp.zeros((b, kh, s, d) if layout == "bksd" else (b, s, kh, d), dtype)
  qo = jnp.full((b,), s - t, jnp.int32)
  _lower(lambda q, k, v: decode_attention(q, k, v, qo, qo + t, scale=d ** -0.5, softcap=cap,
                                          window=win, kv_layout=layout, interpret=False),
         q, kv, kv)
  assert len(verified_gpu_lowering) == 1
