"""Import GGUF files (llama.cpp's single-file format) as critjax parameters, tokenizer and chat template.

A GGUF file holds the model config, the tokenizer and the chat template as metadata, and every
tensor, often block-quantized. Import goes through the Hugging Face path (`critjax.models.families`)
so the layout code exists once:

  1. the metadata (`llama.block_count`, `llama.attention.head_count`, ...) becomes an HF config.json
     dict, and `families.config_from_hf` turns it into a ModelConfig and a tensor list;
  2. every GGUF tensor name (`blk.3.attn_q.weight`) is mapped to its HF name
     (`model.layers.3.self_attn.q_proj.weight`), and the whole file is checked against that list
     (names, shapes, quantization types, data inside the file) before any tensor is dequantized;
  3. each tensor is dequantized alone by the `gguf` package to float32 in HF layout (out, in),
     llama.cpp's interleaving of the q/k projection rows is undone (convert_hf_to_gguf permutes them
     for llama so its RoPE can rotate adjacent pairs), and `families.to_critjax` converts it to
     critjax layout and `param_dtype`, as `hf_io.import_hf` does.

Dequantized weights are float values of the quantized ones: the model computes what llama.cpp's
weights hold, not what the original float checkpoint held. Host memory peaks at the memory-mapped
file plus about two float copies of the largest tensor.

Supported: architectures `ARCHITECTURES`, tensor types `TENSOR_TYPES`, byte-level BPE tokenizers
(`tokenizer.ggml.model == 'gpt2'`) with the pre-tokenizers `PRE_TOKENIZERS`. Anything else is refused
naming the file and the key, tensor or type, before any weight is read.

`gguf` (pip install gguf, or critjax[gguf]) is imported only when a file is read; torch and
transformers are never imported here.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, NamedTuple, Optional

import ml_dtypes
import numpy as np

from critjax.models import families, hf_io
from critjax.models.config import ModelConfig

ARCHITECTURES = ("llama", "qwen2")          # general.architecture; llama.cpp's name = HF model_type here
# ggml tensor types read (dequantized by the gguf package); each is round-tripped in tests/test_gguf.py.
# K-quants (Q4_K, Q6_K, ...) and i-quants are refused: the gguf package cannot write them, so no test
# here can build a file holding them.
TENSOR_TYPES = ("F32", "F16", "BF16", "Q8_0", "Q5_0", "Q5_1", "Q4_0", "Q4_1")
_PERMUTED_QK = ("llama",)                   # architectures whose q/k rows convert_hf_to_gguf interleaves

# GPT-2's split (tokenizers' ByteLevel(use_regex=True)) and Qwen2's (its tokenizer.json's Split).
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def _pre_gpt2():
  from tokenizers import pre_tokenizers
  return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def _pre_smollm():
  # llama.cpp's 'smollm' splits every digit off first (as SmolLM's tokenizer.json does: Digits, ByteLevel).
  from tokenizers import pre_tokenizers
  return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                  pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def _pre_qwen2():
  from tokenizers import Regex, pre_tokenizers
  return pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(_QWEN2_SPLIT), behavior="isolated"),
                                  pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


# tokenizer.ggml.pre -> the pre-tokenizer llama.cpp applies for it.
PRE_TOKENIZERS = {"gpt-2": _pre_gpt2, "smollm": _pre_smollm, "qwen2": _pre_qwen2}

# llama.cpp token types (tokenizer.ggml.token_type)
_CONTROL, _USER_DEFINED = 3, 4
_MISSING = object()


class GGUFError(hf_io.CheckpointError):
  """A GGUF file that is unreadable, truncated, or holds something critjax cannot import."""


def _gguf():
  try:
    import gguf
  except ImportError:
    raise ImportError("reading GGUF files needs the `gguf` package: pip install gguf "
                      "(or pip install 'critjax[gguf]')") from None
  return gguf


# ---------------------------------------------------------------------------- tensor names

_GLOBAL = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
           "output.weight": "lm_head.weight"}
_BLOCK = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
          "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
          "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
          "ffn_down": "mlp.down_proj"}
_BLOCK_HF = {v: k for k, v in _BLOCK.items()}
_GLOBAL_HF = {v: k for k, v in _GLOBAL.items()}


def hf_name(gguf_name: str) -> Optional[str]:
  """GGUF tensor name -> HF name ('blk.3.attn_q.weight' -> 'model.layers.3.self_attn.q_proj.weight');
  None for a name outside the llama/qwen2 set."""
  if gguf_name in _GLOBAL:
    return _GLOBAL[gguf_name]
  m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", gguf_name)
  if m and m.group(2) in _BLOCK:
    return f"model.layers.{m.group(1)}.{_BLOCK[m.group(2)]}.{m.group(3)}"
  return None


def gguf_name(hf: str) -> str:
  """HF tensor name -> GGUF name; the inverse of `hf_name`."""
  if hf in _GLOBAL_HF:
    return _GLOBAL_HF[hf]
  m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.(weight|bias)", hf)
  if not m or m.group(2) not in _BLOCK_HF:
    raise KeyError(f"no GGUF name for HF tensor {hf!r}")
  return f"blk.{m.group(1)}.{_BLOCK_HF[m.group(2)]}.{m.group(3)}"


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """HF q/k rows -> llama.cpp's order (convert_hf_to_gguf's `permute`): within each head, the rotary
  halves [x0..x_{E/2}), [x_{E/2}..x_E) become interleaved pairs."""
  return w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """llama.cpp's q/k row order -> HF's; the inverse of `permute_qk`."""
  return w.reshape(n_heads, w.shape[0] // n_heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# ---------------------------------------------------------------------------- reading a file

@dataclasses.dataclass
class GGUFFile:
  """An opened, size-checked GGUF file: metadata and tensor table, no tensor dequantized yet."""
  path: Path
  reader: Any                    # gguf.GGUFReader (memory-maps the file)
  tensors: dict                  # GGUF tensor name -> gguf ReaderTensor

  @property
  def architecture(self) -> str:
    return self.value("general.architecture")

  def value(self, key: str, default: Any = _MISSING) -> Any:
    """A metadata value as Python (str, int, float, bool, or a list of them)."""
    field = self.reader.fields.get(key)
    if field is None:
      if default is _MISSING:
        raise GGUFError(f"{self.path}: metadata key {key!r} not found")
      return default
    try:
      return field.contents()
    except Exception as e:   # a torn string or array
      raise GGUFError(f"{self.path}: metadata key {key!r} is unreadable ({e}); corrupt file?") from None

  def shape(self, name: str) -> tuple:
    """A tensor's logical shape in numpy order (GGUF lists dimensions innermost first)."""
    return tuple(int(n) for n in reversed(self.tensors[name].shape))

  def type_name(self, name: str) -> str:
    return self.tensors[name].tensor_type.name


def read_gguf(path: str | Path) -> GGUFFile:
  """Open a GGUF file; raises GGUFError naming it when it is not GGUF, is torn, or is truncated
  (a tensor's data running past the end of the file)."""
  gguf = _gguf()
  path = Path(path)
  if not path.is_file():
    raise GGUFError(f"{path}: GGUF file not found")
  size = path.stat().st_size
  try:
    reader = gguf.GGUFReader(str(path), "r")
  except Exception as e:   # ValueError (bad magic/version, a short read), IndexError, OverflowError ...
    msg = " ".join(str(e).split()) or type(e).__name__
    raise GGUFError(f"{path}: not a readable GGUF file ({msg}); truncated or corrupt file? "
                    f"({size} bytes)") from None
  tensors = {}
  for t in reader.tensors:
    end = int(t.data_offset) + int(t.n_bytes)
    if end > size:
      raise GGUFError(f"{path}: truncated GGUF file: tensor {t.name!r} ends at byte {end}, the file has {size}")
    tensors[t.name] = t
  return GGUFFile(path, reader, tensors)


def _open(src: str | Path | GGUFFile) -> GGUFFile:
  return src if isinstance(src, GGUFFile) else read_gguf(src)


def _one(f: GGUFFile, key: str, value):
  """A per-layer array whose entries agree -> that entry; differing entries are refused."""
  if isinstance(value, list):
    if not value or any(v != value[0] for v in value):
      raise GGUFError(f"{f.path}: metadata {key} differs between layers ({value}); not supported")
    return value[0]
  return value


def hf_config(src: str | Path | GGUFFile) -> dict:
  """The HF config.json dict that a GGUF file's metadata describes (llama / qwen2)."""
  f = _open(src)
  arch = f.architecture
  if arch not in ARCHITECTURES:
    raise GGUFError(f"{f.path}: general.architecture={arch!r} is not supported; supported: {list(ARCHITECTURES)}")

  def get(key, default=_MISSING):
    return _one(f, f"{arch}.{key}", f.value(f"{arch}.{key}", default))

  if get("expert_count", 0):
    raise GGUFError(f"{f.path}: {arch}.expert_count={get('expert_count')}: mixture-of-experts models are not supported")
  heads = get("attention.head_count")
  d = get("embedding_length")
  head_dim = get("attention.key_length", None) or d // heads   # llama.cpp's n_embd_head_k
  if get("attention.value_length", head_dim) != head_dim:
    raise GGUFError(f"{f.path}: {arch}.attention.value_length={get('attention.value_length')} differs from the key "
                    f"length {head_dim}; not supported")
  if get("rope.dimension_count", head_dim) != head_dim:
    raise GGUFError(f"{f.path}: {arch}.rope.dimension_count={get('rope.dimension_count')} rotates part of each "
                    f"{head_dim}-wide head; partial RoPE is not supported")
  kind = get("rope.scaling.type", "none")
  if kind == "none":
    scaling = None
  elif kind == "linear":
    scaling = {"rope_type": "linear", "factor": float(get("rope.scaling.factor"))}
  else:
    raise GGUFError(f"{f.path}: {arch}.rope.scaling.type={kind!r} is not supported (none, linear)")
  if "rope_freqs.weight" in f.tensors:
    raise GGUFError(f"{f.path}: tensor 'rope_freqs.weight' (per-frequency RoPE factors, Llama 3.1 style) is not "
                    "supported")
  if "token_embd.weight" not in f.tensors:
    raise GGUFError(f"{f.path}: missing tensor 'token_embd.weight'")
  vocab = f.shape("token_embd.weight")[0]
  if get("vocab_size", vocab) != vocab:
    raise GGUFError(f"{f.path}: {arch}.vocab_size={get('vocab_size')} but token_embd.weight has {vocab} rows")
  hf = dict(model_type=arch, vocab_size=vocab, hidden_size=d, num_hidden_layers=get("block_count"),
            num_attention_heads=heads, num_key_value_heads=get("attention.head_count_kv", heads), head_dim=head_dim,
            intermediate_size=get("feed_forward_length"), rms_norm_eps=get("attention.layer_norm_rms_epsilon"),
            rope_theta=float(get("rope.freq_base", 10_000.0)), rope_scaling=scaling, hidden_act="silu",
            tie_word_embeddings="output.weight" not in f.tensors)
  ctx = get("context_length", None)
  if ctx is not None:
    hf["max_position_embeddings"] = ctx
  for key in ("bos", "eos", "padding"):
    v = f.value(f"tokenizer.ggml.{key}_token_id", None)
    if v is not None:
      hf[f"{'pad' if key == 'padding' else key}_token_id"] = v
  return hf


def _plan(f: GGUFFile, **cfg_overrides) -> tuple[ModelConfig, families.Family, list]:
  """(cfg, family, [(spec, gguf name)]) after checking every tensor's name, type and shape."""
  hf = hf_config(f)
  try:
    cfg, fam = families.config_from_hf(hf, **cfg_overrides)
  except ValueError as e:
    raise GGUFError(f"{f.path}: its metadata maps to an unsupported model config ({e})") from None
  specs = families.tensor_specs(cfg, fam)
  want = {gguf_name(s.hf_name): s for s in specs}
  missing = [n for n in want if n not in f.tensors]
  if missing:
    raise GGUFError(f"{f.path}: missing tensor(s) {missing[:8]}{' ...' if len(missing) > 8 else ''} that its "
                    f"{fam.model_type} metadata implies")
  extra = [n for n in f.tensors if n not in want]
  if extra:
    raise GGUFError(f"{f.path}: unexpected tensor(s) {extra[:8]}{' ...' if len(extra) > 8 else ''} that its "
                    f"{fam.model_type} metadata does not account for")
  for name, spec in want.items():
    kind = f.type_name(name)
    if kind not in TENSOR_TYPES:
      raise GGUFError(f"{f.path}: tensor {name!r} has type {kind}, which is not supported; supported: "
                      f"{list(TENSOR_TYPES)}")
    if f.shape(name) != spec.hf_shape:
      raise GGUFError(f"{f.path}: tensor {name!r} has shape {f.shape(name)}; its metadata implies {spec.hf_shape}")
  return cfg, fam, [(spec, name) for name, spec in want.items()]


def _dequantize(f: GGUFFile, name: str, gguf) -> np.ndarray:
  t = f.tensors[name]
  try:
    x = gguf.quants.dequantize(t.data, t.tensor_type)
  except Exception as e:
    raise GGUFError(f"{f.path}: cannot dequantize tensor {name!r} ({t.tensor_type.name}): {e}") from None
  x = np.asarray(x, np.float32).reshape(f.shape(name))
  if np.may_share_memory(x, f.reader.data):   # F32 tensors come back as views of the memory-mapped file
    x = x.copy()
  return x


def _overrides(dtype, param_dtype, cfg_overrides) -> dict:
  out = dict(cfg_overrides)
  for k, v in (("dtype", dtype), ("param_dtype", param_dtype)):
    if v is not None:
      out[k] = v
  return out


def import_gguf(path: str | Path | GGUFFile, *, dtype: Optional[str] = None, param_dtype: Optional[str] = None,
                shardings: Any = None, **cfg_overrides) -> tuple[dict, ModelConfig]:
  """GGUF file -> (params, ModelConfig), in the order `hf_io.import_hf` returns them.

  `dtype` / `param_dtype`: compute and parameter dtypes (None: ModelConfig's float32 defaults; the
  dequantized weights are float32). `shardings`: optional pytree of `jax.sharding.Sharding` matching
  the params tree; each tensor goes straight onto its sharding. `cfg_overrides`: other non-shape
  ModelConfig fields (`attention_impl`, `remat`). Raises GGUFError naming the file and the tensor,
  key or type on anything unsupported or inconsistent, before dequantizing any tensor.
  """
  gguf = _gguf()
  f = _open(path)
  cfg, fam, plan = _plan(f, **_overrides(dtype, param_dtype, cfg_overrides))
  target = np.dtype(ml_dtypes.bfloat16) if cfg.param_dtype == "bfloat16" else np.dtype(cfg.param_dtype)
  bits = np.dtype(f"u{target.itemsize}")   # see hf_io.import_hf: fast strided copies of bfloat16
  permuted = fam.model_type in _PERMUTED_QK
  params: dict = {}
  for spec, name in plan:
    x = _dequantize(f, name, gguf)
    if permuted and spec.hf_name.endswith("self_attn.q_proj.weight"):
      x = unpermute_qk(x, cfg.n_heads)
    elif permuted and spec.hf_name.endswith("self_attn.k_proj.weight"):
      x = unpermute_qk(x, cfg.n_kv_heads)
    x = x.astype(target, copy=False)
    x = np.ascontiguousarray(families.to_critjax(x.view(bits), spec).view(target))
    sharding = None if shardings is None else families.get_path(shardings, spec.path)
    families.set_path(params, spec.path, hf_io._place(x, sharding))
    del x
  return hf_io.add_fresh_scalar_head(params, cfg, shardings), cfg


# ---------------------------------------------------------------------------- tokenizer, chat template

def _bytes_to_unicode() -> dict[int, str]:
  """GPT-2's byte -> printable character table, in which byte-level BPE vocabularies are spelled."""
  bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
  cs = bs[:]
  n = 0
  for b in range(256):
    if b not in bs:
      bs.append(b)
      cs.append(256 + n)
      n += 1
  return dict(zip(bs, map(chr, cs)))


def _special_tokens(f: GGUFFile, tokens: list) -> dict:
  out = {}
  for name, key in (("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"), ("pad_token", "padding")):
    i = f.value(f"tokenizer.ggml.{key}_token_id", None)
    if i is None:
      continue
    if not 0 <= i < len(tokens):
      raise GGUFError(f"{f.path}: tokenizer.ggml.{key}_token_id={i} is outside the {len(tokens)}-token vocabulary")
    out[name] = tokens[i]
  return out


def gguf_tokenizer(path: str | Path | GGUFFile):
  """The byte-level BPE tokenizer a GGUF file's metadata describes, as a critjax HFTokenizer.

  Built in memory with `tokenizers` the way transformers' GGUF converter builds it: the vocabulary
  and merges from the file, tokens marked CONTROL as special tokens and USER_DEFINED ones as added
  tokens, the pre-tokenizer for `tokenizer.ggml.pre`, a ByteLevel decoder, and BOS/EOS added by
  `encode(add_special_tokens=True)` only where `tokenizer.ggml.add_bos_token` / `add_eos_token` say so.
  """
  from tokenizers import AddedToken, Tokenizer, decoders, models, processors

  from critjax.data.tokenizers import HFTokenizer
  f = _open(path)
  kind = f.value("tokenizer.ggml.model", None)
  if kind != "gpt2":
    raise GGUFError(f"{f.path}: tokenizer.ggml.model={kind!r} is not supported (only 'gpt2': byte-level BPE)")
  pre = f.value("tokenizer.ggml.pre", None)
  if pre not in PRE_TOKENIZERS:
    raise GGUFError(f"{f.path}: tokenizer.ggml.pre={pre!r} is not supported; supported: {sorted(PRE_TOKENIZERS)}")
  tokens = f.value("tokenizer.ggml.tokens")
  types = f.value("tokenizer.ggml.token_type", None) or [1] * len(tokens)
  merge_lines = f.value("tokenizer.ggml.merges")
  if len(types) != len(tokens):
    raise GGUFError(f"{f.path}: tokenizer.ggml.token_type has {len(types)} entries for {len(tokens)} tokens")
  spell = _bytes_to_unicode()
  alphabet = set(spell.values())
  # Tokens are stored in the byte alphabet; one that is not (a raw-text spelling) is respelled into it.
  spelled = [t if set(t) <= alphabet else "".join(spell[b] for b in t.encode("utf-8")) for t in tokens]
  vocab = {t: i for i, t in enumerate(spelled)}
  merges = [tuple(m.split(" ")) for m in merge_lines]
  bad = next((i for i, m in enumerate(merges) if len(m) != 2), None)
  if bad is not None:
    raise GGUFError(f"{f.path}: tokenizer.ggml.merges[{bad}]={merge_lines[bad]!r} is not two tokens")
  try:
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, continuing_subword_prefix="",
                               end_of_word_suffix="", fuse_unk=False))
  except Exception as e:   # tokenizers raises a bare Exception ("Token `th` out of vocabulary")
    raise GGUFError(f"{f.path}: tokenizer.ggml.tokens / merges do not form a BPE vocabulary ({e})") from None
  tok.pre_tokenizer = PRE_TOKENIZERS[pre]()
  tok.decoder = decoders.ByteLevel()
  # A CONTROL token outside the byte alphabet is a llama.cpp mislabel; transformers skips it too.
  tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                          for t, k in zip(tokens, types) if k == _CONTROL and set(t) <= alphabet])
  # USER_DEFINED tokens (e.g. <think>) are matched whole in the text, as llama.cpp does.
  tok.add_tokens([AddedToken(t, special=False, normalized=False)
                  for t, k in zip(tokens, types) if k == _USER_DEFINED and t in vocab])
  special = _special_tokens(f, tokens)
  add_bos = bool(f.value("tokenizer.ggml.add_bos_token", False))
  add_eos = bool(f.value("tokenizer.ggml.add_eos_token", False))
  for flag, key in ((add_bos, "bos_token"), (add_eos, "eos_token")):
    if flag and key not in special:
      raise GGUFError(f"{f.path}: tokenizer.ggml.add_{key} is set but the file names no {key} id")
  if add_bos or add_eos:
    bos, eos = special.get("bos_token"), special.get("eos_token")
    head = [f"{bos}:0"] if add_bos else []
    tail = [f"{eos}:0"] if add_eos else []
    used = {t: tok.token_to_id(t) for t, flag in ((bos, add_bos), (eos, add_eos)) if flag}
    tok.post_processor = processors.TemplateProcessing(
        single=" ".join(head + ["$A:0"] + tail), pair=" ".join(head + ["$A:0"] + tail + head + ["$B:1"] + tail),
        special_tokens=list(used.items()))
  config = dict(special, add_bos_token=add_bos, add_eos_token=add_eos)
  return HFTokenizer.from_tokenizer(tok, config, path=f.path)


def gguf_chat_template(path: str | Path | GGUFFile, name: Optional[str] = None):
  """The file's `tokenizer.chat_template` (or `tokenizer.chat_template.<name>`) as a ChatTemplate,
  with the file's special-token strings (bos_token, eos_token, ...) for the template to reference."""
  from critjax.data.chat import ChatTemplate
  f = _open(path)
  key = "tokenizer.chat_template" + (f".{name}" if name else "")
  source = f.value(key, None)
  if not source:
    raise GGUFError(f"{f.path}: no {key} in its metadata")
  tokens = f.value("tokenizer.ggml.tokens", None) or []
  return ChatTemplate(source, _special_tokens(f, tokens) if tokens else {})


class GGUFModel(NamedTuple):
  """What `load_gguf` returns; unpacks as `cfg, params, tokenizer, chat_template = load_gguf(path)`."""
  cfg: ModelConfig
  params: dict
  tokenizer: Any                       # critjax.data.tokenizers.HFTokenizer
  chat_template: Any                   # critjax.data.chat.ChatTemplate, or None when the file has none


def load_gguf(path: str | Path | GGUFFile, *, dtype: Optional[str] = None, param_dtype: Optional[str] = None,
              shardings: Any = None, **cfg_overrides) -> GGUFModel:
  """Everything a GGUF file holds, its metadata read once: (cfg, params, tokenizer, chat template).
  Arguments as for `import_gguf`. Model, tokenizer and template errors all surface before any tensor
  is dequantized."""
  f = _open(path)
  overrides = _overrides(dtype, param_dtype, cfg_overrides)
  _plan(f, **overrides)
  tokenizer = gguf_tokenizer(f)
  template = gguf_chat_template(f) if f.value("tokenizer.chat_template", None) else None
  params, cfg = import_gguf(f, shardings=shardings, **overrides)
  return GGUFModel(cfg, params, tokenizer, template)
