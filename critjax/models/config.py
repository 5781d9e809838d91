"""Decoder configuration: one frozen dataclass covers the Llama, Qwen2/3 and Gemma 1/2/3 families.

Family quirks are flags, not subclasses, so a reader sees every difference in one place.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

ATTENTION_IMPLS = ("xla", "pallas", "cudnn")
ACTIVATIONS = ("silu", "gelu_tanh")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  vocab_size: int = 256
  d_model: int = 64
  n_layers: int = 2
  n_heads: int = 4
  n_kv_heads: int = 2
  head_dim: int = 16
  d_ff: int = 128
  activation: str = "silu"             # gated MLP: act(x W_gate) * (x W_up)
  norm_eps: float = 1e-6
  rope_theta: float = 10_000.0
  # Llama-3 style frequency scaling: {'factor', 'low_freq_factor', 'high_freq_factor',
  # 'original_max_position_embeddings'}; None = plain RoPE.
  rope_scaling: Optional[tuple] = None
  tie_embeddings: bool = False
  qkv_bias: bool = False               # Qwen2
  qk_norm: bool = False                # Qwen3, Gemma 3: RMSNorm over head_dim of q and k
  norm_offset: bool = False            # Gemma: RMSNorm scales by (1 + w)
  embed_scale: bool = False            # Gemma: embeddings times sqrt(d_model)
  post_norms: bool = False             # Gemma 2/3: extra RMSNorm after attention and after MLP
  attn_logit_softcap: Optional[float] = None   # Gemma 2
  final_logit_softcap: Optional[float] = None  # Gemma 2
  query_pre_attn_scalar: Optional[float] = None  # Gemma 2/3: scores scaled by this**-0.5, not head_dim**-0.5
  sliding_window: Optional[int] = None         # Gemma 2/3 local layers
  sliding_window_pattern: int = 0              # every n-th layer is global (Gemma 2: 2, Gemma 3: 6); 0 = all global
  rope_local_theta: Optional[float] = None     # Gemma 3: RoPE base of local layers
  attention_impl: str = "xla"
  dtype: str = "float32"               # activations / compute
  param_dtype: str = "float32"
  remat: bool = False                  # rematerialise each block in the backward pass
  # A linear head D -> 1 on the final-normed hidden state (DeepSeek-GRM's meta RM, arXiv 2504.02495):
  # parameter `scalar_head`, read by `decoder.forward(..., return_scalar=True)`. No HF counterpart.
  scalar_head: bool = False

  def __post_init__(self):
    if self.n_heads % self.n_kv_heads:
      raise ValueError(f"model.n_heads={self.n_heads} is not a multiple of model.n_kv_heads={self.n_kv_heads}")
    if self.attention_impl not in ATTENTION_IMPLS:
      raise ValueError(f"model.attention_impl={self.attention_impl!r}; expected one of {ATTENTION_IMPLS}")
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"model.activation={self.activation!r}; expected one of {ACTIVATIONS}")
    for name in ("vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff"):
      if getattr(self, name) <= 0:
        raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
    # None is "off"; 0 would be all-zero attention (window) or uniform attention (soft-cap).
    if self.sliding_window is not None and self.sliding_window < 1:
      raise ValueError(f"model.sliding_window={self.sliding_window} must be >= 1 or None (no window)")
    for name in ("attn_logit_softcap", "final_logit_softcap"):
      if getattr(self, name) is not None and not getattr(self, name) > 0:
        raise ValueError(f"model.{name}={getattr(self, name)} must be > 0 or None (no soft-cap)")

  @property
  def group_size(self) -> int:
    return self.n_heads // self.n_kv_heads

  def layer_is_local(self, layer: int) -> bool:
    """Gemma 2/3 alternate sliding-window (local) and global layers; the n-th of every n is global."""
    if self.sliding_window is None or self.sliding_window_pattern <= 0:
      return False
    return (layer + 1) % self.sliding_window_pattern != 0

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
      raise ValueError(f"unknown model config field(s) {unknown}; known fields: {sorted(known)}")
    d = dict(d)
    if isinstance(d.get("rope_scaling"), dict):
      d["rope_scaling"] = tuple(sorted(d["rope_scaling"].items()))
    return cls(**d)

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    if self.rope_scaling is not None:
      d["rope_scaling"] = dict(self.rope_scaling)
    return d
