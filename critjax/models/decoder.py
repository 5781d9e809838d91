"""A pure-functional decoder-only transformer (Llama / Qwen2 / Qwen3 / Gemma 1-3 as config flags).

Parameters are a plain pytree; `Decoder(cfg).apply({'params': p}, tokens, ...)` has no hidden state.
Every parameter carries logical axis names (see `critjax.sharding.LOGICAL_RULES`).

Dimension key: B batch, T chunk length, S cache length, D d_model, H heads, K kv heads,
E head dim, F MLP width, V vocab, L layers.

One call covers the three uses:
  * training / scoring:  `apply(p, tokens_bt)` -> logits (B, T, V); positions 0..T-1, causal.
  * prefill / continue:  `apply(p, tokens_bt, cache=c, start_b=s)` writes the chunk's K/V at
    positions s[b]..s[b]+T-1 of each row and attends over everything before it. Decode is T = 1;
    a multi-turn episode appends its next turn with the row's current length as `start_b`.
With `cfg.scalar_head`, `apply(p, tokens_bt, return_scalar=True)` -> (logits, scalar (B, T)): a
linear D -> 1 head on the final-normed hidden state (DeepSeek-GRM's meta RM; `scalar_scores`).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from critjax.models.attention import attend
from critjax.models.config import ModelConfig

Cache = dict  # {'k': [ (B, K, S, E) ] * L, 'v': [ (B, K, S, E) ] * L}, kv-head-major


def _dtype(name: str):
  return jnp.dtype(name)


def rope_inv_freq(head_dim: int, theta: float, scaling: Optional[tuple]) -> jnp.ndarray:
  """Inverse frequencies (E/2,); `scaling` as in HF `rope_scaling` ('llama3' or 'linear')."""
  inv = 1.0 / (theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim))
  if scaling is None:
    return inv
  s = dict(scaling)
  kind = s.get("rope_type", s.get("type", "llama3"))
  if kind == "linear":
    return inv / s["factor"]
  if kind != "llama3":
    raise ValueError(f"model.rope_scaling type {kind!r} not supported (llama3, linear)")
  # Llama 3.1 frequency-dependent scaling (Meta's reference / HF `_compute_llama3_parameters`).
  factor, lo, hi = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
  old = s["original_max_position_embeddings"]
  wavelen = 2 * math.pi / inv
  scaled = jnp.where(wavelen > old / lo, inv / factor, inv)
  smooth = (old / wavelen - lo) / (hi - lo)
  smoothed = (1 - smooth) * scaled / factor + smooth * scaled
  medium = (wavelen >= old / hi) & (wavelen <= old / lo)
  return jnp.where(medium, smoothed, scaled)


def apply_rope(x_bthe, pos_bt, inv_freq):
  """Rotate-half RoPE (the HF convention: first and second halves of E form the pairs)."""
  ang = pos_bt[:, :, None].astype(jnp.float32) * inv_freq[None, None, :]   # (B, T, E/2)
  cos = jnp.cos(ang)[:, :, None, :]
  sin = jnp.sin(ang)[:, :, None, :]
  x = x_bthe.astype(jnp.float32)
  x1, x2 = jnp.split(x, 2, axis=-1)
  out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
  return out.astype(x_bthe.dtype)


class RMSNorm(nn.Module):
  eps: float
  offset: bool          # Gemma: scale by (1 + w), weights initialised at 0
  dtype: Any
  param_dtype: Any
  axis_name: str = "norm"

  @nn.compact
  def __call__(self, x):
    init = nn.initializers.zeros if self.offset else nn.initializers.ones
    w = self.param("scale", nn.with_logical_partitioning(init, (self.axis_name,)), (x.shape[-1],),
                   self.param_dtype)
    x32 = x.astype(jnp.float32)
    y = x32 * lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
    w32 = w.astype(jnp.float32)
    return (y * (1.0 + w32) if self.offset else y * w32).astype(self.dtype)


def _dense_init(fan_in: int):
  return nn.initializers.normal(stddev=fan_in ** -0.5)


class Attention(nn.Module):
  cfg: ModelConfig
  layer: int

  @nn.compact
  def __call__(self, x_btd, pos_bt, kv_len_b, cache_kv, start_b):
    cfg = self.cfg
    dt, pdt = _dtype(cfg.dtype), _dtype(cfg.param_dtype)
    d, h, k, e = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim

    def proj(name, shape, axes, fan_in):
      return self.param(name, nn.with_logical_partitioning(_dense_init(fan_in), axes), shape, pdt)

    wq = proj("q_proj", (d, h, e), ("embed", "heads", "head_dim"), d)
    wk = proj("k_proj", (d, k, e), ("embed", "kv_heads", "head_dim"), d)
    wv = proj("v_proj", (d, k, e), ("embed", "kv_heads", "head_dim"), d)
    wo = proj("o_proj", (h, e, d), ("heads", "head_dim", "embed"), h * e)
    x = x_btd.astype(dt)
    q = jnp.einsum("btd,dhe->bthe", x, wq.astype(dt))
    kk = jnp.einsum("btd,dke->btke", x, wk.astype(dt))
    v = jnp.einsum("btd,dke->btke", x, wv.astype(dt))
    if cfg.qkv_bias:
      zeros = nn.initializers.zeros
      q = q + self.param("q_bias", nn.with_logical_partitioning(zeros, ("heads", "head_dim")), (h, e), pdt).astype(dt)
      kk = kk + self.param("k_bias", nn.with_logical_partitioning(zeros, ("kv_heads", "head_dim")), (k, e), pdt).astype(dt)
      v = v + self.param("v_bias", nn.with_logical_partitioning(zeros, ("kv_heads", "head_dim")), (k, e), pdt).astype(dt)
    if cfg.qk_norm:
      q = RMSNorm(cfg.norm_eps, cfg.norm_offset, dt, pdt, "head_dim", name="q_norm")(q)
      kk = RMSNorm(cfg.norm_eps, cfg.norm_offset, dt, pdt, "head_dim", name="k_norm")(kk)

    local = cfg.layer_is_local(self.layer)
    theta = cfg.rope_local_theta if (local and cfg.rope_local_theta) else cfg.rope_theta
    inv_freq = rope_inv_freq(e, theta, None if local else cfg.rope_scaling)
    q = apply_rope(q, pos_bt, inv_freq)
    kk = apply_rope(kk, pos_bt, inv_freq)

    if cache_kv is None:
      keys, values, layout = kk, v, "bskd"
    else:  # write this chunk at each row's own offset, then attend over the whole cache
      # The cache is kv-head-major (B, K, S, E): the layout the attention dots read without a copy.
      write = jax.vmap(lambda c, n, s: lax.dynamic_update_slice(c, jnp.swapaxes(n, 0, 1).astype(c.dtype),
                                                                (0, s, 0)))
      keys = write(cache_kv["k"], kk, start_b)
      values = write(cache_kv["v"], v, start_b)
      cache_kv = {"k": keys, "v": values}
      keys, values, layout = keys.astype(dt), values.astype(dt), "bksd"

    scale = (cfg.query_pre_attn_scalar or e) ** -0.5
    out = attend(q, keys, values, pos_bt, kv_len_b, impl=cfg.attention_impl, scale=scale,
                 softcap=cfg.attn_logit_softcap, window=cfg.sliding_window if local else None,
                 kv_layout=layout)
    y = jnp.einsum("bthe,hed->btd", out, wo.astype(dt))
    return y, cache_kv


class Mlp(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_btd):
    cfg = self.cfg
    dt, pdt = _dtype(cfg.dtype), _dtype(cfg.param_dtype)
    d, f = cfg.d_model, cfg.d_ff
    wg = self.param("gate_proj", nn.with_logical_partitioning(_dense_init(d), ("embed", "mlp")), (d, f), pdt)
    wu = self.param("up_proj", nn.with_logical_partitioning(_dense_init(d), ("embed", "mlp")), (d, f), pdt)
    wd = self.param("down_proj", nn.with_logical_partitioning(_dense_init(f), ("mlp", "embed")), (f, d), pdt)
    act = jax.nn.silu if cfg.activation == "silu" else (lambda z: jax.nn.gelu(z, approximate=True))
    hidden = act(x_btd @ wg.astype(dt)) * (x_btd @ wu.astype(dt))
    hidden = nn.with_logical_constraint(hidden, ("activation_batch", "activation_length", "activation_mlp"))
    return hidden @ wd.astype(dt)


class Block(nn.Module):
  cfg: ModelConfig
  layer: int

  @nn.compact
  def __call__(self, x_btd, pos_bt, kv_len_b, cache_kv, start_b):
    cfg = self.cfg
    dt, pdt = _dtype(cfg.dtype), _dtype(cfg.param_dtype)
    norm = lambda name: RMSNorm(cfg.norm_eps, cfg.norm_offset, dt, pdt, name=name)
    h, cache_kv = Attention(cfg, self.layer, name="attn")(norm("input_norm")(x_btd), pos_bt, kv_len_b,
                                                            cache_kv, start_b)
    if cfg.post_norms:
      h = norm("post_attn_norm")(h)
    x_btd = x_btd + h
    h = Mlp(cfg, name="mlp")(norm("pre_mlp_norm")(x_btd))
    if cfg.post_norms:
      h = norm("post_mlp_norm")(h)
    x_btd = x_btd + h
    x_btd = nn.with_logical_constraint(x_btd, ("activation_batch", "activation_length", "activation_embed"))
    return x_btd, cache_kv


class ScalarHead(nn.Module):
  """A linear D -> 1 head with bias: DeepSeek-GRM's meta RM (arXiv 2504.02495) reads it at the last token.

  Zero init: every sequence starts at p = 0.5. The kernel's gradient h (sigma(s) - y) is not zero and
  one linear unit has no symmetry to break, so zeros do not stall training; an HF / GGUF import
  initialises the head the same way (`fresh_scalar_head`), with no key needed."""
  cfg: ModelConfig

  @nn.compact
  def __call__(self, x_btd):
    pdt = _dtype(self.cfg.param_dtype)
    zeros = nn.initializers.zeros
    w_d1 = self.param("kernel", nn.with_logical_partitioning(zeros, ("embed", None)), (self.cfg.d_model, 1), pdt)
    bias_1 = self.param("bias", nn.with_logical_partitioning(zeros, (None,)), (1,), pdt)
    s_bt1 = jnp.einsum("btd,dk->btk", x_btd, w_d1.astype(x_btd.dtype), preferred_element_type=jnp.float32)
    return s_bt1[..., 0] + bias_1.astype(jnp.float32)[0]                  # (B, T) float32


def _scan_group(cfg: ModelConfig) -> int:
  """Layers per step of the scanned stack: 1, or the sliding-window pattern when layers differ by
  position (Gemma 2's local / global pairs); 0 when the layer count is not a whole number of groups
  (Gemma 3's 26 layers in sixes), which keeps the unrolled loop."""
  kinds = [cfg.layer_is_local(i) for i in range(cfg.n_layers)]
  g = 1 if len(set(kinds)) <= 1 else cfg.sliding_window_pattern
  return g if cfg.n_layers % g == 0 else 0


def _scanned_layers(cfg: ModelConfig, group: int, params, x, pos_bt, kv_len_b, start_b):
  """The layer stack as a lax.scan over groups of `group` layers, each group rematerialised.

  Why: remat on an unrolled loop of layers saves nothing on XLA's CPU backend (its scheduler runs
  the recomputed forwards early; a 4-layer Qwen2.5-1.5B step held the same 11.7 GiB with and
  without it, experiments/memory_report.py), while a scan holds one group's intermediates at a time
  whatever the scheduler does. The parameter tree keeps its per-layer names (checkpoints, HF and
  GGUF import unchanged): the layers' parameters are stacked here, one extra sharded copy of them.
  Layer i of group k is layer k * group + i, so position-dependent layers (local / global) match."""
  n = cfg.n_layers // group
  stacked = [jax.tree.map(lambda *ls: jnp.stack(ls), *[params[f"layer_{k * group + i}"] for k in range(n)])
             for i in range(group)]

  @jax.checkpoint
  def body(h, group_params):
    for i, p in enumerate(group_params):
      h, _ = Block(cfg, i).apply({"params": p}, h, pos_bt, kv_len_b, None, start_b)
    return h, None

  x, _ = lax.scan(body, x, stacked)
  return x


class Decoder(nn.Module):
  cfg: ModelConfig

  @nn.compact
  def __call__(self, tokens_bt, *, cache: Optional[Cache] = None, start_b=None,
               return_hidden: bool = False, return_scalar: bool = False):
    """tokens (B, T) int32 -> (logits (B, T, V) float32, new cache or None).

    With `cache`, `start_b` (B,) gives each row's write offset (its current length).
    `return_scalar` (needs cfg.scalar_head; no cache): -> (logits, scalar (B, T) float32) instead."""
    cfg = self.cfg
    if return_scalar and not cfg.scalar_head:
      raise ValueError("return_scalar=True needs model.scalar_head=True; this model config has no scalar head")
    if return_scalar and (cache is not None or return_hidden):
      raise ValueError("return_scalar=True scores whole sequences: it takes no cache and no return_hidden")
    dt, pdt = _dtype(cfg.dtype), _dtype(cfg.param_dtype)
    b, t = tokens_bt.shape
    embed = self.param("embed", nn.with_logical_partitioning(nn.initializers.normal(cfg.d_model ** -0.5), ("vocab", "embed")),
                       (cfg.vocab_size, cfg.d_model), pdt)
    x = jnp.take(embed, tokens_bt, axis=0).astype(dt)
    if cfg.embed_scale:
      x = x * jnp.asarray(math.sqrt(cfg.d_model), dt)
    x = nn.with_logical_constraint(x, ("activation_batch", "activation_length", "activation_embed"))

    if cache is None:
      start_b = jnp.zeros((b,), jnp.int32)
      kv_len_b = jnp.full((b,), t, jnp.int32)
    else:
      start_b = jnp.asarray(start_b, jnp.int32)
      kv_len_b = start_b + t
    pos_bt = start_b[:, None] + jnp.arange(t, dtype=jnp.int32)[None, :]

    group = _scan_group(cfg)
    if cache is None and cfg.remat and group and not self.is_initializing():
      x = _scanned_layers(cfg, group, self.variables["params"], x, pos_bt, kv_len_b, start_b)
      layers = range(0)
    else:
      layers = range(cfg.n_layers)
    block_cls = nn.remat(Block, static_argnums=()) if cfg.remat else Block
    new_cache = None if cache is None else {"k": [], "v": []}
    for i in layers:
      layer_cache = None if cache is None else {"k": cache["k"][i], "v": cache["v"][i]}
      x, layer_cache = block_cls(cfg, i, name=f"layer_{i}")(x, pos_bt, kv_len_b, layer_cache, start_b)
      if cache is not None:
        new_cache["k"].append(layer_cache["k"])
        new_cache["v"].append(layer_cache["v"])

    x = RMSNorm(cfg.norm_eps, cfg.norm_offset, dt, pdt, name="final_norm")(x)
    scalar_bt = None
    if cfg.scalar_head and (return_scalar or self.is_initializing()):
      scalar_bt = ScalarHead(cfg, name="scalar_head")(x)
    if return_hidden:
      return x, new_cache
    if cfg.tie_embeddings:
      logits = jnp.einsum("btd,vd->btv", x, embed.astype(dt), preferred_element_type=jnp.float32)
    else:
      head = self.param("lm_head", nn.with_logical_partitioning(_dense_init(cfg.d_model), ("embed", "vocab")),
                        (cfg.d_model, cfg.vocab_size), pdt)
      logits = jnp.einsum("btd,dv->btv", x, head.astype(dt), preferred_element_type=jnp.float32)
    if cfg.final_logit_softcap is not None:
      logits = jnp.tanh(logits / cfg.final_logit_softcap) * cfg.final_logit_softcap
    if return_scalar:
      return logits, scalar_bt
    return logits, new_cache


def init_cache(cfg: ModelConfig, batch: int, length: int, dtype=None) -> Cache:
  """Zeroed KV cache: per layer (B, K, S, E) keys and values (kv-head-major, see attention.py)."""
  dtype = dtype or _dtype(cfg.dtype)
  shape = (batch, cfg.n_kv_heads, length, cfg.head_dim)
  return {"k": [jnp.zeros(shape, dtype) for _ in range(cfg.n_layers)],
          "v": [jnp.zeros(shape, dtype) for _ in range(cfg.n_layers)]}


def init_params(cfg: ModelConfig, rng) -> tuple[Any, Any]:
  """Returns (params, logical_axes): a plain pytree of arrays and a matching tree of axis-name tuples."""
  boxed = Decoder(cfg).init(rng, jnp.zeros((1, 4), jnp.int32))["params"]
  return nn.unbox(boxed), logical_axes_of(boxed)


def logical_axes(cfg: ModelConfig) -> Any:
  """The logical axis names of every parameter, computed from shapes alone (no FLOPs, no memory)."""
  boxed = jax.eval_shape(lambda: Decoder(cfg).init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"])
  return logical_axes_of(boxed)


def logical_axes_of(boxed) -> Any:
  return jax.tree.map(lambda x: tuple(x.names) if isinstance(x, nn.Partitioned) else (None,) * x.ndim,
                      boxed, is_leaf=lambda x: isinstance(x, nn.Partitioned))


def forward(params, tokens_bt, cfg: ModelConfig, **kw):
  """Functional entry point: (params, tokens (B, T)) -> (logits (B, T, V), cache); with
  `return_scalar=True` (cfg.scalar_head) -> (logits, scalar (B, T) float32)."""
  return Decoder(cfg).apply({"params": params}, tokens_bt, **kw)


@functools.partial(jax.jit, static_argnames=("cfg",))
def scalar_scores(params, tokens_bt, length_b, cfg: ModelConfig):
  """The scalar head at each row's last real token: (B, T) right-padded tokens, (B,) lengths -> (B,) float32.

  DeepSeek-GRM's meta RM (arXiv 2504.02495) scores each of the k sampled GRM trajectories this way.
  Attention is causal, so padding after position length-1 does not change the score; a length-0 row
  reads position 0. Under jit the unused logits are dead code and cost nothing."""
  b, t = tokens_bt.shape
  if jnp.shape(length_b) != (b,):
    raise ValueError(f"length_b must be (B,) = ({b},), got {jnp.shape(length_b)}")
  _, scalar_bt = forward(params, tokens_bt, cfg, return_scalar=True)
  pos_b = jnp.clip(jnp.asarray(length_b, jnp.int32) - 1, 0, t - 1)
  return jnp.take_along_axis(scalar_bt, pos_b[:, None], axis=1)[:, 0]


def fresh_scalar_head(cfg: ModelConfig) -> dict:
  """The scalar head's initial parameters (zeros, as `init_params` makes them) as host arrays, the
  `params['scalar_head']` subtree; for checkpoints without one (a Hugging Face or GGUF import)."""
  dtype = jnp.dtype(cfg.param_dtype)
  return {"kernel": np.zeros((cfg.d_model, 1), dtype), "bias": np.zeros((1,), dtype)}
