"""One small tokenizer interface over sentencepiece `.model` files and HF `tokenizer.json` files.

`encode` adds no special tokens unless asked: chat templates and episode builders place BOS and
turn markers themselves, as transformers' `apply_chat_template` does. `encode_with_offsets` also
returns each token's start character in the text, which maps tokens onto turns (critjax.data.chat).

Neither backend imports torch or transformers; `tokenizers` is needed only for tokenizer.json.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from critjax.files import read_json_object

# End-of-turn markers of the supported families (Qwen/ChatML, Llama 3, Gemma): a chat turn the
# model writes ends at the first of these (or EOS).
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<end_of_turn>")


class Tokenizer:
  """encode(str) -> ids, decode(ids) -> str, and the special ids (None where the vocab has none)."""
  vocab_size: int
  bos_id: Optional[int]
  eos_id: Optional[int]
  pad_id: Optional[int]
  special_tokens: dict[str, str]     # bos_token / eos_token / pad_token / unk_token -> text

  def encode(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
    raise NotImplementedError

  def encode_with_offsets(self, text: str) -> tuple[list[int], list[int]]:
    """(ids, start character of each token); no special tokens added."""
    raise NotImplementedError

  def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
    raise NotImplementedError

  def token_to_id(self, token: str) -> Optional[int]:
    raise NotImplementedError


class SentencePieceTokenizer(Tokenizer):
  """A sentencepiece `.model` file (Gemma's tokenizer.model, the toy task's trained model)."""

  def __init__(self, path: str | Path):
    import sentencepiece as spm
    self.path = Path(path)
    if not self.path.is_file():
      raise FileNotFoundError(f"{self.path}: sentencepiece model file not found")
    try:
      self._sp = spm.SentencePieceProcessor(model_file=str(self.path))
    except (RuntimeError, OSError) as e:   # "could not parse ModelProto": a torn or non-spm file
      raise ValueError(f"{self.path}: not a valid sentencepiece model ({_one_line(e)}); "
                       "truncated or corrupt file?") from None
    sp = self._sp
    self.vocab_size = sp.get_piece_size()
    ids = {"bos": sp.bos_id(), "eos": sp.eos_id(), "pad": sp.pad_id(), "unk": sp.unk_id()}
    self.bos_id, self.eos_id, self.pad_id = (ids[k] if ids[k] >= 0 else None for k in ("bos", "eos", "pad"))
    self.special_tokens = {f"{k}_token": sp.id_to_piece(v) for k, v in ids.items() if v >= 0}

  def serialized(self) -> bytes:
    """The .model file's bytes."""
    return self._sp.serialized_model_proto()

  def encode(self, text, *, add_special_tokens=False):
    ids = self._sp.encode(text)
    if add_special_tokens and self.bos_id is not None:
      ids = [self.bos_id] + ids
    return ids

  def encode_with_offsets(self, text):
    proto = self._sp.encode(text, return_type="proto")
    # sentencepiece reports byte offsets into the UTF-8 text; convert to character offsets.
    byte_to_char, pos = {}, 0
    for i, ch in enumerate(text):
      byte_to_char[pos] = i
      pos += len(ch.encode("utf-8"))
    byte_to_char[pos] = len(text)
    return [p.id for p in proto.pieces], [byte_to_char[p.begin] for p in proto.pieces]

  def decode(self, ids, *, skip_special_tokens=False):
    ids = [int(i) for i in ids]
    if skip_special_tokens:
      ids = [i for i in ids if not self._sp.is_control(i)]
    return self._sp.decode(ids)

  def token_to_id(self, token):
    i = self._sp.piece_to_id(token)
    return None if i == self._sp.unk_id() and token != self._sp.id_to_piece(i) else i

  def add_special_tokens(self, tokens) -> list[int]:
    """Adds each token not yet in the vocabulary as a user-defined piece (matched whole in any text,
    never split), with the next free ids; returns every token's id. The model's embedding needs
    vocab_size rows after this (critjax.models.vocab.resize_vocab). serialized() then holds them."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb
    proto = pb.ModelProto()
    proto.ParseFromString(self._sp.serialized_model_proto())
    for t in tokens:
      if self.token_to_id(t) is None:
        proto.pieces.add(piece=t, score=0.0, type=pb.ModelProto.SentencePiece.USER_DEFINED)
    self._sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
    self.vocab_size = self._sp.get_piece_size()
    return [self.token_to_id(t) for t in tokens]


def _one_line(e: Exception) -> str:
  return " ".join(str(e).split())


def _token_text(v) -> Optional[str]:
  """tokenizer_config.json spells special tokens as strings or {'content': ...} dicts."""
  if isinstance(v, dict):
    return v.get("content")
  return v


class HFTokenizer(Tokenizer):
  """A Hugging Face `tokenizer.json` (the `tokenizers` package), with special tokens taken from the
  neighbouring tokenizer_config.json when present."""

  def __init__(self, path: str | Path, config: Optional[dict] = None):
    from tokenizers import Tokenizer as _Tok
    path = Path(path)
    self.path = path
    if not path.is_file():
      raise FileNotFoundError(f"{path}: tokenizer file not found")
    try:
      self._tok = _Tok.from_file(str(path))
    except Exception as e:   # tokenizers raises a bare Exception ("EOF while parsing a value at line 1 column 9")
      raise ValueError(f"{path}: not a valid tokenizer.json ({_one_line(e)}); torn or truncated file?") from None
    if config is None:
      cfg_file = path.parent / "tokenizer_config.json"
      config = read_json_object(cfg_file) if cfg_file.exists() else {}
    self._set_specials(config)

  def _set_specials(self, config: dict):
    """Vocabulary size and special tokens from the tokenizer and its tokenizer_config-style dict."""
    self.config = dict(config)
    vocab = self._tok.get_vocab(with_added_tokens=True)
    # Ids, not counts: added tokens may leave gaps, and the model's embedding must cover the top id.
    self.vocab_size = max(vocab.values()) + 1
    self.special_tokens = {k: _token_text(config[k]) for k in ("bos_token", "eos_token", "pad_token", "unk_token")
                           if _token_text(config.get(k)) is not None}
    self.bos_id, self.eos_id, self.pad_id = (
        self.token_to_id(self.special_tokens[k]) if k in self.special_tokens else None
        for k in ("bos_token", "eos_token", "pad_token"))

  @classmethod
  def from_tokenizer(cls, tok, config: dict, path: Optional[str | Path] = None) -> "HFTokenizer":
    """An in-memory `tokenizers.Tokenizer` (e.g. one built from a GGUF file's metadata), with
    `config` holding the special-token strings as tokenizer_config.json would; `path` names
    the file it came from in error messages."""
    self = cls.__new__(cls)
    self.path = Path(path) if path is not None else None
    self._tok = tok
    self._set_specials(config)
    return self

  def encode(self, text, *, add_special_tokens=False):
    return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

  def encode_with_offsets(self, text):
    enc = self._tok.encode(text, add_special_tokens=False)
    return enc.ids, [start for start, _ in enc.offsets]

  def decode(self, ids, *, skip_special_tokens=False):
    return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

  def token_to_id(self, token):
    return self._tok.token_to_id(token)

  def add_special_tokens(self, tokens) -> list[int]:
    """Adds each token not yet in the vocabulary as a special token (`tokenizers`' added tokens,
    matched whole); returns every token's id. The model's embedding needs vocab_size rows after this."""
    from tokenizers import AddedToken
    self._tok.add_special_tokens([AddedToken(t, special=True) for t in tokens if self.token_to_id(t) is None])
    self._set_specials(self.config)
    return [self.token_to_id(t) for t in tokens]


def load_tokenizer(path: str | Path) -> Tokenizer:
  """A model directory (tokenizer.json preferred, else tokenizer.model), a .json or a .model file."""
  path = Path(path)
  if path.is_dir():
    for name, cls in (("tokenizer.json", HFTokenizer), ("tokenizer.model", SentencePieceTokenizer)):
      if (path / name).exists():
        return cls(path / name)
    raise FileNotFoundError(f"{path}: neither tokenizer.json nor tokenizer.model")
  if path.suffix == ".json":
    return HFTokenizer(path)
  if path.suffix == ".model":
    return SentencePieceTokenizer(path)
  raise ValueError(f"{path}: expected a directory, a tokenizer.json or a sentencepiece .model file")


def check_vocab(tokenizer: Tokenizer, model_cfg) -> None:
  """Raise before training when the tokenizer can emit ids the model has no embedding for.

  A model vocab larger than the tokenizer's is normal (HF pads embeddings to a multiple of 64/128)."""
  if tokenizer.vocab_size > model_cfg.vocab_size:
    raise ValueError(f"tokenizer {getattr(tokenizer, 'path', '')} has {tokenizer.vocab_size} ids but "
                     f"model.vocab_size={model_cfg.vocab_size}: ids >= {model_cfg.vocab_size} have no embedding; "
                     "use the tokenizer that belongs to the checkpoint")


def stop_ids(tokenizer: Tokenizer) -> tuple[int, ...]:
  """EOS and the family end-of-turn markers that this vocabulary has: where a generated turn ends."""
  ids = [tokenizer.eos_id] + [tokenizer.token_to_id(t) for t in END_OF_TURN_TOKENS]
  return tuple(sorted({i for i in ids if i is not None}))
