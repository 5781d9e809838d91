"""A model to evaluate, from any of the three places one lives: a GGUF file, a Hugging Face model
directory, or a critjax run's workdir (one role of its latest checkpoint).

`load_model(spec)` returns an `EvalModel`: model config, parameters placed on a mesh, tokenizer,
chat template (None for a toy run without one) and a `key` naming the exact weights, which keys
the evaluation's generation cache (critjax/eval/generation.py): the same file or checkpoint step
gets the same key, a changed one another.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Optional

import jax

from critjax import sharding as sh
from critjax.models import decoder
from critjax.models.config import ModelConfig


@dataclasses.dataclass
class EvalModel:
  cfg: ModelConfig
  params: Any
  tokenizer: Any
  chat: Any            # critjax.data.chat.ChatTemplate, or None: prompts are plain text
  key: str             # names the weights (cache key)
  name: str            # for tables
  # Plain-text prompts (no chat template) start with BOS, as a pretrained model expects; a
  # critjax run's prompts never do (its recipes encode them without special tokens).
  add_bos: bool = True


def _file_key(files: list[Path], extra: str = "") -> str:
  """sha256 over each file's name, size and first and last MiB: content-sensitive without reading
  a 15 GB checkpoint (a rewritten file changes its header or tail, and usually its size)."""
  h = hashlib.sha256(extra.encode())
  for f in sorted(files):
    size = f.stat().st_size
    h.update(f"{f.name}:{size}".encode())
    with open(f, "rb") as fh:
      h.update(fh.read(1 << 20))
      if size > 2 << 20:
        fh.seek(-(1 << 20), 2)
        h.update(fh.read())
  return h.hexdigest()[:16]


def _place(cfg: ModelConfig, mesh):
  shapes = jax.eval_shape(lambda: decoder.init_params(cfg, jax.random.PRNGKey(0))[0])
  return shapes, sh.tree_shardings(decoder.logical_axes(cfg), shapes, mesh)


def load_model(spec: str, *, role: str = "policy", dtype: Optional[str] = None, mesh=None) -> EvalModel:
  """`spec`: a .gguf file, a Hugging Face model directory (config.json + safetensors), or a critjax
  workdir (config.json with a `recipe`, and checkpoints/). `dtype`: the compute dtype (default:
  the model's own; float32 for GGUF, whose weights are dequantized)."""
  path = Path(spec)
  if path.suffix == ".gguf" and not path.is_file():
    raise FileNotFoundError(f"--model={spec}: no such GGUF file")
  mesh = mesh or sh.make_mesh(sh.MeshConfig())
  if path.suffix == ".gguf":
    from critjax.models import gguf_io
    cfg, params, tokenizer, chat = gguf_io.load_gguf(path, dtype=dtype)
    shapes, shardings = _place(cfg, mesh)
    params = jax.device_put(params, shardings)
    return EvalModel(cfg, params, tokenizer, chat, "gguf-" + _file_key([path]), path.stem)
  if not path.is_dir():
    raise FileNotFoundError(f"--model={spec}: not a GGUF file, a Hugging Face model directory or a critjax workdir")
  config = path / "config.json"
  if not config.exists():
    raise FileNotFoundError(f"--model={spec}: {config} not found (a model directory or a critjax workdir holds one)")
  from critjax.files import read_json_object
  meta = read_json_object(config)
  if "recipe" in meta:
    return _load_workdir(path, meta, role, mesh)
  return _load_hf(path, dtype, mesh)


def _load_hf(path: Path, dtype: Optional[str], mesh) -> EvalModel:
  from critjax.data.chat import ChatTemplate
  from critjax.data.tokenizers import load_tokenizer
  from critjax.models import hf_io
  from critjax.models import families
  over = {"dtype": dtype} if dtype else {}
  cfg, _ = families.config_from_hf(hf_io.read_hf_config(path), **over)
  _, shardings = _place(cfg, mesh)                 # each tensor goes straight onto its shards
  params, cfg = hf_io.import_hf(path, shardings=shardings, **over)
  tokenizer = load_tokenizer(path)
  try:
    chat = ChatTemplate.from_tokenizer_config(path)
  except (ValueError, FileNotFoundError):
    chat = None
  files = sorted(path.glob("*.safetensors")) + [path / "config.json"]
  return EvalModel(cfg, params, tokenizer, chat, "hf-" + _file_key(files), path.name)


def _load_workdir(path: Path, meta: dict, role: str, mesh) -> EvalModel:
  from critjax.config import ExperimentConfig, from_dict
  from critjax.data.chat import ChatTemplate
  from critjax.data.tokenizers import SentencePieceTokenizer, load_tokenizer
  from critjax.train.checkpoint import load_role_params
  cfg = from_dict(ExperimentConfig, meta)
  roles = cfg.role_configs()
  if role not in roles:
    raise ValueError(f"--role={role!r}: the run in {path} has roles {sorted(roles)}")
  owner = roles[role].share or role
  model_cfg = roles[owner].model
  shapes, shardings = _place(model_cfg, mesh)
  params = load_role_params(path, owner, shapes, shardings, field="--model")
  t = cfg.tokenizer
  tokenizer = SentencePieceTokenizer(path / "tokenizer.model") if t.kind == "train_spm" else (
      SentencePieceTokenizer(t.path) if t.kind == "spm" else load_tokenizer(t.path))
  chat = ChatTemplate.from_tokenizer_config(t.path) if t.chat_template else None
  steps = sorted(int(p.name) for p in (path / "checkpoints").iterdir() if p.name.isdigit())
  key = hashlib.sha256(json.dumps([str(path.resolve()), role, steps[-1] if steps else None]).encode()).hexdigest()[:16]
  return EvalModel(model_cfg, params, tokenizer, chat, "run-" + key, f"{path.name}:{role}", add_bos=False)
