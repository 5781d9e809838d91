"""Hugging Face `config.json` <-> `ModelConfig`, and HF tensor names <-> critjax parameter paths.

One `Family` per HF `model_type`: llama (3.x), qwen2 (2 / 2.5), qwen3, gemma, gemma2, gemma3_text.
Both spellings of RoPE settings are read: the legacy one real checkpoints carry (`rope_theta`,
`rope_scaling`, Gemma 3's `rope_local_base_freq`) and transformers 5's `rope_parameters`
(flat, or keyed by layer type for Gemma 3). Export writes the legacy spelling, which every
transformers release reads.

Tensor layouts (HF `nn.Linear` stores (out, in)); dimension key D d_model, H heads, K kv heads,
E head dim, F MLP width, V vocab:
  q_proj (H*E, D) -> (D, H, E)      k_proj / v_proj (K*E, D) -> (D, K, E)
  o_proj (D, H*E) -> (H, E, D)      q/k/v bias (N*E,) -> (N, E)
  gate/up (F, D) -> (D, F)          down (D, F) -> (F, D)
  embed (V, D) -> (V, D)            lm_head (V, D) -> (D, V)
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import numpy as np

from critjax.models.config import ModelConfig
from critjax.registry import Registry

FAMILIES: Registry = Registry("model family")

# HF activation names that mean the tanh-approximated GELU. Gemma 1's released configs say
# "gelu" but mean the tanh form (transformers rewrites it the same way).
_GELU_TANH = ("gelu_pytorch_tanh", "gelu_tanh", "gelu_new", "gelu")
_SUPPORTED_ROPE = ("default", "linear", "llama3")


@dataclasses.dataclass(frozen=True)
class Family:
  model_type: str
  architecture: str               # HF class written to `architectures` on export
  norm_names: tuple               # ((critjax block norm, HF layer norm suffix), ...)
  default_tie: bool               # HF's default `tie_word_embeddings` for this family
  from_hf: Callable[[dict], dict]  # family-specific ModelConfig fields
  to_hf: Callable[[ModelConfig], dict]


def register(fam: Family) -> Family:
  FAMILIES.register(fam.model_type)(fam)
  return fam


# ---------------------------------------------------------------------------- config fields

def _rope(hf: dict, layer_type: Optional[str] = None) -> tuple[Optional[float], Optional[tuple]]:
  """(theta, scaling) from either spelling; scaling None for plain RoPE."""
  rp = hf.get("rope_parameters")
  if rp:
    if layer_type is not None and layer_type in rp:
      rp = rp[layer_type]
    theta, scaling = rp.get("rope_theta"), dict(rp)
    scaling.pop("rope_theta", None)
  else:
    theta = hf.get("rope_theta")
    scaling = dict(hf["rope_scaling"]) if hf.get("rope_scaling") else {}
  kind = scaling.get("rope_type", scaling.get("type", "default"))
  if kind not in _SUPPORTED_ROPE:
    raise ValueError(f"config.json rope_scaling type {kind!r} is not supported; supported: {_SUPPORTED_ROPE}")
  if kind == "default":
    return theta, None
  scaling.pop("type", None)
  scaling["rope_type"] = kind
  return theta, tuple(sorted(scaling.items()))


def _layer_pattern(hf: dict, n_layers: int, default: int) -> int:
  """Gemma 2/3 `layer_types` -> the period n of 'every n-th layer is global'; raises if irregular."""
  types = hf.get("layer_types")
  if not types:
    return int(hf.get("sliding_window_pattern", hf.get("_sliding_window_pattern", default)))
  if len(types) != n_layers:
    raise ValueError(f"config.json layer_types has {len(types)} entries for num_hidden_layers={n_layers}")
  full = [i for i, t in enumerate(types) if t == "full_attention"]
  pattern = full[0] + 1 if full else n_layers + 1
  expected = ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(n_layers)]
  if list(types) != expected:
    raise ValueError(f"config.json layer_types {types} is not 'every n-th layer global'; critjax cannot "
                     "express it (ModelConfig.sliding_window_pattern)")
  return pattern


def _no_sliding(hf: dict) -> None:
  if hf.get("use_sliding_window"):
    raise ValueError("config.json use_sliding_window=true (Qwen max_window_layers layout) is not supported")


def _common(hf: dict, fam: Family) -> dict:
  need = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
  for k in need:
    if k not in hf:
      raise ValueError(f"config.json lacks {k!r} (model_type {fam.model_type!r})")
  heads = hf["num_attention_heads"]
  act = hf.get("hidden_activation") or hf.get("hidden_act") or "silu"
  if act in _GELU_TANH and fam.model_type.startswith("gemma"):
    act = "gelu_tanh"
  if act not in ("silu", "gelu_tanh"):
    raise ValueError(f"config.json hidden_act={act!r} is not supported (silu, gelu_pytorch_tanh)")
  theta, scaling = _rope(hf)
  return dict(
      vocab_size=hf["vocab_size"], d_model=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
      n_heads=heads, n_kv_heads=hf.get("num_key_value_heads") or heads,
      head_dim=hf.get("head_dim") or hf["hidden_size"] // heads, d_ff=hf["intermediate_size"],
      activation=act, norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
      rope_theta=float(theta if theta is not None else 10_000.0), rope_scaling=scaling,
      tie_embeddings=bool(hf.get("tie_word_embeddings", fam.default_tie)))


def config_from_hf(hf: dict, **overrides) -> tuple[ModelConfig, Family]:
  """HF config.json dict -> (ModelConfig, Family). `overrides` set non-shape fields (dtype, remat, ...)."""
  mt = hf.get("model_type")
  if mt not in FAMILIES:
    arch = hf.get("architectures")
    raise ValueError(f"config.json model_type={mt!r} (architectures {arch}) is not supported; "
                     f"supported: {FAMILIES.names()}")
  fam = FAMILIES.get(mt)
  fields = _common(hf, fam)
  fields.update(fam.from_hf(hf))
  fields.update(overrides)
  return ModelConfig(**fields), fam


def config_to_hf(cfg: ModelConfig, fam: Family, base: Optional[dict] = None, dtype: str = "float32") -> dict:
  """ModelConfig -> HF config.json dict; `base` (e.g. the imported config.json) keeps token ids etc."""
  out = dict(base or {})
  for stale in ("rope_parameters", "layer_types", "_sliding_window_pattern", "auto_map"):
    out.pop(stale, None)   # rewritten below in the legacy spelling
  out.update(
      architectures=[fam.architecture], model_type=fam.model_type, vocab_size=cfg.vocab_size,
      hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
      num_key_value_heads=cfg.n_kv_heads, head_dim=cfg.head_dim, intermediate_size=cfg.d_ff,
      rms_norm_eps=cfg.norm_eps, rope_theta=cfg.rope_theta,
      rope_scaling=dict(cfg.rope_scaling) if cfg.rope_scaling else None,
      tie_word_embeddings=cfg.tie_embeddings, torch_dtype=dtype)
  out.update(fam.to_hf(cfg))
  return out


def _check_flags(cfg: ModelConfig, fam: str, **allowed):
  """A family cannot express every ModelConfig flag: refuse to export what it would drop."""
  flags = dict(qkv_bias=False, qk_norm=False, norm_offset=False, embed_scale=False, post_norms=False,
               attn_logit_softcap=None, final_logit_softcap=None, query_pre_attn_scalar=None,
               sliding_window=None, rope_local_theta=None)
  for name, default in flags.items():
    if name in allowed:
      continue
    if getattr(cfg, name) != default:
      raise ValueError(f"model.{name}={getattr(cfg, name)!r} cannot be exported as {fam}")


# ---------------------------------------------------------------------------- families

_PLAIN_NORMS = (("input_norm", "input_layernorm"), ("pre_mlp_norm", "post_attention_layernorm"))
_SANDWICH_NORMS = (("input_norm", "input_layernorm"), ("post_attn_norm", "post_attention_layernorm"),
                   ("pre_mlp_norm", "pre_feedforward_layernorm"), ("post_mlp_norm", "post_feedforward_layernorm"))


def _llama_from(hf):
  _no_sliding(hf)
  if hf.get("attention_bias") or hf.get("mlp_bias"):
    raise ValueError("config.json attention_bias/mlp_bias=true (o_proj / MLP biases) is not supported for llama")
  return {}


def _llama_to(cfg):
  _check_flags(cfg, "llama")
  return dict(hidden_act=cfg.activation if cfg.activation == "silu" else "gelu_pytorch_tanh",
              attention_bias=False, mlp_bias=False)


def _qwen2_from(hf):
  _no_sliding(hf)
  return dict(qkv_bias=True)


def _qwen2_to(cfg):
  _check_flags(cfg, "qwen2", qkv_bias=True)
  if not cfg.qkv_bias:
    raise ValueError("model.qkv_bias=False cannot be exported as qwen2 (Qwen2 always has q/k/v biases)")
  return dict(hidden_act="silu", use_sliding_window=False)


def _qwen3_from(hf):
  _no_sliding(hf)
  return dict(qk_norm=True, qkv_bias=bool(hf.get("attention_bias", False)))


def _qwen3_to(cfg):
  _check_flags(cfg, "qwen3", qk_norm=True, qkv_bias=True)
  return dict(hidden_act="silu", attention_bias=cfg.qkv_bias, use_sliding_window=False)


_GEMMA_COMMON = dict(norm_offset=True, embed_scale=True)


def _gemma_from(hf):
  return dict(_GEMMA_COMMON)


def _gemma_to(cfg):
  _check_flags(cfg, "gemma", norm_offset=True, embed_scale=True)
  return dict(hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh")


def _gemma2_from(hf):
  n = hf["num_hidden_layers"]
  return dict(_GEMMA_COMMON, post_norms=True, attn_logit_softcap=hf.get("attn_logit_softcapping"),
              final_logit_softcap=hf.get("final_logit_softcapping"),
              query_pre_attn_scalar=hf.get("query_pre_attn_scalar"), sliding_window=hf.get("sliding_window"),
              sliding_window_pattern=_layer_pattern(hf, n, 2))


def _sliding_types(cfg):
  return ["sliding_attention" if cfg.layer_is_local(i) else "full_attention" for i in range(cfg.n_layers)]


def _gemma2_to(cfg):
  _check_flags(cfg, "gemma2", **{k: 1 for k in ("norm_offset", "embed_scale", "post_norms", "attn_logit_softcap",
                                                 "final_logit_softcap", "query_pre_attn_scalar", "sliding_window")})
  return dict(hidden_activation="gelu_pytorch_tanh", attn_logit_softcapping=cfg.attn_logit_softcap,
              final_logit_softcapping=cfg.final_logit_softcap,
              query_pre_attn_scalar=cfg.query_pre_attn_scalar or cfg.head_dim,
              sliding_window=cfg.sliding_window, layer_types=_sliding_types(cfg))


def _gemma3_from(hf):
  n = hf["num_hidden_layers"]
  global_theta, global_scaling = _rope(hf, "full_attention")
  if hf.get("rope_parameters"):
    local_theta, local_scaling = _rope(hf, "sliding_attention")
    if local_scaling is not None:
      raise ValueError("config.json: RoPE scaling on Gemma 3's sliding-window layers is not supported")
  else:  # legacy spelling: rope_scaling applies to global layers only
    local_theta = hf.get("rope_local_base_freq", 10_000.0)
  return dict(_GEMMA_COMMON, post_norms=True, qk_norm=True,
              attn_logit_softcap=hf.get("attn_logit_softcapping"),
              final_logit_softcap=hf.get("final_logit_softcapping"),
              query_pre_attn_scalar=hf.get("query_pre_attn_scalar"), sliding_window=hf.get("sliding_window"),
              sliding_window_pattern=_layer_pattern(hf, n, 6),
              rope_theta=float(global_theta if global_theta is not None else 1_000_000.0),
              rope_scaling=global_scaling, rope_local_theta=float(local_theta))


def _gemma3_to(cfg):
  d = _gemma2_to(dataclasses.replace(cfg, qk_norm=False, rope_local_theta=None))
  d.update(rope_local_base_freq=cfg.rope_local_theta or cfg.rope_theta,
           sliding_window_pattern=cfg.sliding_window_pattern)
  return d


register(Family("llama", "LlamaForCausalLM", _PLAIN_NORMS, False, _llama_from, _llama_to))
register(Family("qwen2", "Qwen2ForCausalLM", _PLAIN_NORMS, False, _qwen2_from, _qwen2_to))
register(Family("qwen3", "Qwen3ForCausalLM", _PLAIN_NORMS, False, _qwen3_from, _qwen3_to))
register(Family("gemma", "GemmaForCausalLM", _PLAIN_NORMS, True, _gemma_from, _gemma_to))
register(Family("gemma2", "Gemma2ForCausalLM", _SANDWICH_NORMS, True, _gemma2_from, _gemma2_to))
register(Family("gemma3_text", "Gemma3ForCausalLM", _SANDWICH_NORMS, True, _gemma3_from, _gemma3_to))


# ---------------------------------------------------------------------------- tensor names

@dataclasses.dataclass(frozen=True)
class TensorSpec:
  """One HF tensor and the critjax parameter it becomes."""
  hf_name: str
  path: tuple                 # keys into the critjax params tree
  hf_shape: tuple
  shape: tuple                # critjax shape
  kind: str                   # layout rule: 'same' | 'linear' | 'in_proj' | 'out_proj' | 'bias'


def transpose_2d(x: np.ndarray, rows: int = 256) -> np.ndarray:
  """Contiguous x.T, copied in row blocks: about 2x faster than numpy's whole-matrix strided copy on
  (8192, 2048) weights, which dominated the import time of a 1B model."""
  out = np.empty(x.shape[::-1], x.dtype)
  for i in range(0, x.shape[0], rows):
    out[:, i:i + rows] = x[i:i + rows].T
  return out


def to_critjax(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
  """HF layout -> critjax layout (see the module docstring); contiguous."""
  if spec.kind == "same":
    return x
  if spec.kind in ("linear", "in_proj", "out_proj"):   # (out, in) -> (in, out) -> split heads
    return transpose_2d(x).reshape(spec.shape)
  if spec.kind == "bias":
    return x.reshape(spec.shape)
  raise ValueError(spec.kind)


def to_hf(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
  """critjax layout -> HF layout; the inverse of `to_critjax`; contiguous."""
  if spec.kind == "same":
    return x
  if spec.kind in ("linear", "in_proj"):   # (D, N, E) -> (D, N*E) -> (N*E, D)
    return transpose_2d(x.reshape(x.shape[0], -1))
  if spec.kind == "out_proj":              # (H, E, D) -> (H*E, D) -> (D, H*E)
    return transpose_2d(x.reshape(-1, x.shape[-1]))
  if spec.kind == "bias":
    return x.reshape(-1)
  raise ValueError(spec.kind)


def tensor_specs(cfg: ModelConfig, fam: Family) -> list[TensorSpec]:
  """Every tensor of an HF checkpoint of this family and config, in a stable order."""
  d, h, k, e, f, v = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.d_ff, cfg.vocab_size
  specs = [TensorSpec("model.embed_tokens.weight", ("embed",), (v, d), (v, d), "same")]
  for i in range(cfg.n_layers):
    p, a = f"model.layers.{i}.", (f"layer_{i}",)
    at = a + ("attn",)
    specs += [
        TensorSpec(p + "self_attn.q_proj.weight", at + ("q_proj",), (h * e, d), (d, h, e), "in_proj"),
        TensorSpec(p + "self_attn.k_proj.weight", at + ("k_proj",), (k * e, d), (d, k, e), "in_proj"),
        TensorSpec(p + "self_attn.v_proj.weight", at + ("v_proj",), (k * e, d), (d, k, e), "in_proj"),
        TensorSpec(p + "self_attn.o_proj.weight", at + ("o_proj",), (d, h * e), (h, e, d), "out_proj")]
    if cfg.qkv_bias:
      specs += [TensorSpec(p + f"self_attn.{n}_proj.bias", at + (f"{n}_bias",), (m * e,), (m, e), "bias")
                for n, m in (("q", h), ("k", k), ("v", k))]
    if cfg.qk_norm:
      specs += [TensorSpec(p + f"self_attn.{n}_norm.weight", at + (f"{n}_norm", "scale"), (e,), (e,), "same")
                for n in ("q", "k")]
    specs += [
        TensorSpec(p + "mlp.gate_proj.weight", a + ("mlp", "gate_proj"), (f, d), (d, f), "linear"),
        TensorSpec(p + "mlp.up_proj.weight", a + ("mlp", "up_proj"), (f, d), (d, f), "linear"),
        TensorSpec(p + "mlp.down_proj.weight", a + ("mlp", "down_proj"), (d, f), (f, d), "linear")]
    for ours, theirs in fam.norm_names:
      specs.append(TensorSpec(p + theirs + ".weight", a + (ours, "scale"), (d,), (d,), "same"))
  specs.append(TensorSpec("model.norm.weight", ("final_norm", "scale"), (d,), (d,), "same"))
  if not cfg.tie_embeddings:
    specs.append(TensorSpec("lm_head.weight", ("lm_head",), (v, d), (d, v), "linear"))
  return specs


def get_path(tree: Any, path: tuple) -> Any:
  for key in path:
    tree = tree[key]
  return tree


def set_path(tree: dict, path: tuple, value: Any) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value
