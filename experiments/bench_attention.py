"""Attention benchmark: our Pallas flash / flash-decoding kernels against XLA, cuDNN and the
Pallas reference ops that ship inside JAX (baselines only), plus end-to-end sampler tokens/s.

Command (one GPU; writes JSON to stdout and to --out):
  PYTHONPATH=. python experiments/bench_attention.py --out bench_attention.json
On a CPU it runs a tiny smoke configuration in Pallas interpret mode (correctness of the
plumbing and interpret-mode timings only; those timings say nothing about a GPU).

Reported, all bfloat16:
  flash:   causal forward and forward+backward, T = 1k, 4k, 16k, 32k, B * T = 32k tokens,
           H = 16 query heads, K = 4 kv heads, D = 128; ms and TFLOP/s (causal FLOPs: forward
           2 * B * H * T^2 * D, backward 2.5x that). JAX's Pallas `mha` has no GQA, so it gets K/V
           repeated to H heads (its time excludes the repeat).
  decode:  one query per row, B = 16, H = 32, K = 8, D = 128, full caches of 4k..128k positions
           stored as the decoder stores them, kv-head-major (B, K, S, D); GB/s of K and V read
           (2 * B * S * K * D * 2 bytes) against the measured copy bandwidth (read + write bytes
           of a 4 GiB device copy: the memory-bound ceiling). Rows: 'pallas' and 'xla' read the
           cache in place; 'pallas_bskd' is our kernel on a (B, S, K, D) copy (strided rows);
           'pallas_transposed' transposes the cache to (B, S, K, D) inside the timed call (what
           `attend` did before the kernels took 'bksd'); JAX's `gqa` takes (B, S, K, D) only and
           gets a copy made outside its timing.
  sampler: a 1B-class Llama config (random weights, no EOS), prompt 128, long greedy outputs,
           decode tokens/s (prefill and compile excluded) of `critjax.sampling.Sampler`,
           attention_impl 'pallas' vs 'xla'.
A failing entry (out of memory, unsupported) is recorded with its error and the run goes on.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from critjax.models import attention
from critjax.models.config import ModelConfig
from kernels.decode_attention import decode_attention
from kernels.flash_attention import flash_attention

GPU = dict(flash_t=(1024, 4096, 16384, 32768), flash_tokens=32768, flash_h=16, flash_k=4, d=128,
           decode_s=(4096, 8192, 16384, 32768, 65536, 131072), decode_b=16, decode_h=32,
           decode_k=8, copy_bytes=4 << 30, iters=10,
           sampler=dict(batch=16, prompt=128, new_tokens=16384))
SMOKE = dict(flash_t=(64,), flash_tokens=128, flash_h=4, flash_k=2, d=64, decode_s=(256,),
             decode_b=2, decode_h=4, decode_k=2, copy_bytes=1 << 24, iters=2,
             sampler=dict(batch=2, prompt=8, new_tokens=8))
LLAMA_1B = ModelConfig(vocab_size=128256, d_model=2048, n_layers=16, n_heads=32, n_kv_heads=8,
                       head_dim=64, d_ff=8192, rope_theta=500000.0, tie_embeddings=True,
                       dtype="bfloat16", param_dtype="bfloat16")
TINY = ModelConfig(dtype="bfloat16", param_dtype="bfloat16")


def _time_ms(fn, *args, iters: int) -> float:
  """Median wall ms of a jitted call after one compile+warm-up call."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(iters):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return 1e3 * float(np.median(times))


def _guard(row: dict, f):
  try:
    row.update(f())
  except Exception as e:  # a baseline that does not fit or is unsupported: record, go on
    row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
  return row


def _flash_impls(plat: str):
  def ours(q, k, v):
    b, t = q.shape[:2]
    return flash_attention(q, k, v, jnp.zeros((b,), jnp.int32), jnp.full((b,), t, jnp.int32),
                           scale=q.shape[-1] ** -0.5)
  impls = {"pallas": ours,
           "xla": lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation="xla")}
  if plat == "gpu":
    from jax.experimental.pallas.ops.gpu import attention as jax_mha
    impls["cudnn"] = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=True,
                                                                  implementation="cudnn")
    impls["jax_pallas_mha"] = lambda q, k, v: jax_mha.mha(q, k, v, None, sm_scale=q.shape[-1] ** -0.5,
                                                          causal=True)
  return impls


def bench_flash(c: dict, plat: str) -> list:
  rows, rng = [], np.random.default_rng(0)
  h, kh, d = c["flash_h"], c["flash_k"], c["d"]
  for t in c["flash_t"]:
    b = max(1, c["flash_tokens"] // t)
    mk = lambda *s: jnp.asarray(rng.standard_normal(s), jnp.bfloat16)
    q, k, v, do = mk(b, t, h, d), mk(b, t, kh, d), mk(b, t, kh, d), mk(b, t, h, d)
    flops = 2.0 * b * h * t * t * d          # causal: half of 4 * B * H * T^2 * D
    for name, f in _flash_impls(plat).items():
      kk, vv = (jnp.repeat(k, h // kh, 2), jnp.repeat(v, h // kh, 2)) if name == "jax_pallas_mha" else (k, v)
      fwd = jax.jit(f)
      fwdbwd = jax.jit(lambda q, k, v, f=f: jax.grad(lambda *a: jnp.vdot(f(*a).astype(jnp.float32),
                                                                          do.astype(jnp.float32)),
                                                     argnums=(0, 1, 2))(q, k, v))
      for mode, fn, fl in (("fwd", fwd, flops), ("fwd+bwd", fwdbwd, 3.5 * flops)):
        def run(fn=fn, fl=fl):
          ms = _time_ms(fn, q, kk, vv, iters=c["iters"])
          return {"ms": round(ms, 3), "tflops": round(fl / ms / 1e9, 1)}
        rows.append(_guard({"impl": name, "mode": mode, "B": b, "T": t, "H": h, "K": kh, "D": d}, run))
        print(json.dumps(rows[-1]), file=sys.stderr)
  return rows


def bench_copy(c: dict) -> float:
  """Device copy bandwidth in GB/s counting read + write bytes."""
  x = jnp.ones((c["copy_bytes"] // 4,), jnp.float32)
  ms = _time_ms(jax.jit(lambda x: x * 1.0 + 1.0), x, iters=c["iters"])
  return 2 * x.nbytes / ms / 1e6


def bench_decode(c: dict, plat: str, copy_gbs: float) -> list:
  rows, rng = [], np.random.default_rng(1)
  b, h, kh, d = c["decode_b"], c["decode_h"], c["decode_k"], c["d"]
  sc = d ** -0.5
  swap = lambda x: jnp.swapaxes(x, 1, 2)
  # name -> (fn(q, k, v, q_offset, kv_len), layout the fn is handed: 'bksd' cache or a 'bskd' copy)
  impls = {
      "pallas": (lambda q, k, v, qo, kl: decode_attention(q, k, v, qo, kl, scale=sc), "bksd"),
      "xla": (lambda q, k, v, qo, kl: attention.xla_attention(q, k, v, qo[:, None], kl, scale=sc,
                                                              kv_layout="bksd"), "bksd"),
      "pallas_bskd": (lambda q, k, v, qo, kl: decode_attention(q, k, v, qo, kl, scale=sc,
                                                               kv_layout="bskd"), "bskd"),
      "pallas_transposed": (lambda q, k, v, qo, kl: decode_attention(q, swap(k), swap(v), qo, kl,
                                                                     scale=sc, kv_layout="bskd"),
                            "bksd")}
  if plat == "gpu":
    from jax.experimental.pallas.ops.gpu import decode_attention as jax_decode
    impls["jax_pallas_decode"] = (lambda q, k, v, qo, kl: jax_decode.gqa(
        q[:, 0], k, v, kv_seq_len=kl, sm_scale=sc)[:, None], "bskd")
  for s in c["decode_s"]:
    mk = lambda *sh: jnp.asarray(rng.standard_normal(sh, np.float32), jnp.bfloat16)
    q, k, v = mk(b, 1, h, d), mk(b, kh, s, d), mk(b, kh, s, d)        # cache layout (B, K, S, D)
    qo, kl = jnp.full((b,), s - 1, jnp.int32), jnp.full((b,), s, jnp.int32)
    kv_bytes = 2 * b * s * kh * d * 2
    copies = {}
    for name, (f, lay) in impls.items():
      def run(f=f, lay=lay):
        if lay == "bskd" and not copies:   # one (B, S, K, D) copy per S, made outside the timing
          copies["kv"] = jax.block_until_ready((swap(k), swap(v)))
        kk, vv = copies["kv"] if lay == "bskd" else (k, v)
        ms = _time_ms(jax.jit(f), q, kk, vv, qo, kl, iters=c["iters"])
        gbs = kv_bytes / ms / 1e6
        return {"ms": round(ms, 4), "kv_GBps": round(gbs, 1), "frac_of_copy": round(gbs / copy_gbs, 3)}
      rows.append(_guard({"impl": name, "B": b, "S": s, "H": h, "K": kh, "D": d,
                          "kv_layout": lay}, run))
      print(json.dumps(rows[-1]), file=sys.stderr)
    del k, v, copies
  return rows


def bench_sampler(c: dict, cfg: ModelConfig) -> list:
  from critjax.models import decoder
  from critjax.sampling.sampler import Sampler
  from critjax.sampling.token_choice import SamplingConfig
  sc = c["sampler"]
  params = decoder.init_params(cfg, jax.random.key(0))[0]
  prompts = np.asarray(jax.random.randint(jax.random.key(1), (sc["batch"], sc["prompt"]), 2, cfg.vocab_size))
  scfg = SamplingConfig(max_new_tokens=sc["new_tokens"], temperature=0.0, eos_id=-1)
  rows = []
  for impl in ("xla", "pallas"):
    def run(impl=impl):
      s = Sampler(dataclasses.replace(cfg, attention_impl=impl), scfg, capacity=sc["prompt"] + sc["new_tokens"])
      lens = np.full((sc["batch"],), sc["prompt"])
      rows_on = jnp.ones((sc["batch"],), bool)
      # Compile the decode loop on a rollout whose rows are all inactive (exits at once), then
      # time decoding alone (prefill excluded) on a fresh rollout; the rollout is donated.
      jax.block_until_ready(s.decode(params, s.start(params, prompts, lens), jax.random.key(2),
                                     active_b=~rows_on).tokens)
      ro = jax.block_until_ready(s.start(params, prompts, lens))
      t0 = time.perf_counter()
      ro = s.decode(params, ro, jax.random.key(2), active_b=rows_on)
      jax.block_until_ready(ro.tokens)
      sec = time.perf_counter() - t0
      assert int(ro.length.min()) == sc["prompt"] + sc["new_tokens"], "decode stopped early"
      return {"seconds": round(sec, 4), "tokens_per_s": round(sc["batch"] * sc["new_tokens"] / sec, 1)}
    rows.append(_guard({"impl": impl, **sc, "layers": cfg.n_layers, "d_model": cfg.d_model}, run))
    print(json.dumps(rows[-1]), file=sys.stderr)
  return rows


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", default=None, help="also write the JSON here")
  ap.add_argument("--only", default="flash,decode,sampler", help="comma list of sections")
  ap.add_argument("--sampler-tokens", type=int, default=None, help="override new tokens per row")
  args = ap.parse_args(argv)
  plat = jax.default_backend()
  smoke = plat == "cpu"
  c = dict(SMOKE if smoke else GPU)
  if args.sampler_tokens:
    c["sampler"] = dict(c["sampler"], new_tokens=args.sampler_tokens)
  result = {"platform": plat, "device": str(jax.devices()[0].device_kind), "jax": jax.__version__,
            "mode": "cpu-interpret-smoke (timings are interpret-mode, not kernel performance)"
            if smoke else "compiled", "dtype": "bfloat16"}
  sections = args.only.split(",")
  if "flash" in sections:
    result["flash"] = bench_flash(c, plat)
  if "decode" in sections:
    result["copy_GBps"] = round(bench_copy(c), 1)
    result["decode"] = bench_decode(c, plat, result["copy_GBps"])
  if "sampler" in sections:
    result["sampler"] = bench_sampler(c, TINY if smoke else LLAMA_1B)
  text = json.dumps(result, indent=1)
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  main()
