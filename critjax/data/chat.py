"""Chat templates: render conversations with a family's Jinja `chat_template` into token ids plus
per-token turn labels, so assistant turns become loss / role masks.

Rendering follows transformers' `apply_chat_template`: the template from tokenizer_config.json is
rendered in a sandboxed Jinja environment with `trim_blocks` and `lstrip_blocks`, given
`messages`, `add_generation_prompt` and the special-token strings, and the text is tokenized
once, without adding special tokens. Token ids therefore equal `apply_chat_template(...,
tokenize=True)`.

Turn labels come from rendering prefixes of the conversation: message i owns the characters
between render(messages[:i]) and render(messages[:i+1]); an assistant turn's *generated* part
starts after its generation prompt (render(messages[:i], add_generation_prompt=True)) and ends at
its first stop token (EOS / end-of-turn marker), which is what a sampler would have produced.
Template glue after the stop token (ChatML's trailing newline) is not part of the turn.
A template whose prefix renderings are not prefixes of the full text (e.g. one that rewrites
earlier turns) is refused with an error naming the message.

Dimension key: T tokens.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from critjax.data.tokenizers import Tokenizer, stop_ids

ROLES = ("system", "user", "assistant", "tool")
ROLE_IDS = {r: i for i, r in enumerate(ROLES)}
NO_TURN = -1   # label of tokens outside every message (e.g. a trailing generation prompt)


def _environment():
  from jinja2.ext import loopcontrols
  from jinja2.sandbox import ImmutableSandboxedEnvironment

  def raise_exception(message):
    from jinja2.exceptions import TemplateError
    raise TemplateError(message)

  def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

  env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
  env.filters["tojson"] = tojson
  env.globals["raise_exception"] = raise_exception
  env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
  return env


@dataclasses.dataclass(frozen=True)
class ChatTemplate:
  """A Jinja chat template and the special-token strings it may reference (bos_token, eos_token, ...)."""
  source: str
  special_tokens: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if not isinstance(self.source, str) or not self.source:
      raise ValueError("chat template source must be a non-empty Jinja string")
    _environment().from_string(self.source)   # syntax errors surface here, not at first use

  @classmethod
  def from_tokenizer_config(cls, path: str | Path, name: Optional[str] = None) -> "ChatTemplate":
    """From tokenizer_config.json (or a model directory holding it, or chat_template.jinja beside it).
    `name` picks one of several named templates (the list form transformers also reads)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    cfg_file = path / "tokenizer_config.json" if path.is_dir() else path
    cfg = json.loads(cfg_file.read_text()) if cfg_file.exists() else {}
    source = cfg.get("chat_template")
    if source is None and (folder / "chat_template.jinja").exists():
      source = (folder / "chat_template.jinja").read_text()
    if isinstance(source, list):
      named = {t["name"]: t["template"] for t in source}
      key = name or "default"
      if key not in named:
        raise ValueError(f"{cfg_file}: no chat template named {key!r}; have {sorted(named)}")
      source = named[key]
    if not source:
      raise ValueError(f"{cfg_file}: no chat_template (tokenizer_config.json or chat_template.jinja)")
    special = {}
    for k in ("bos_token", "eos_token", "pad_token", "unk_token"):
      v = cfg.get(k)
      v = v.get("content") if isinstance(v, dict) else v
      if v is not None:
        special[k] = v
    return cls(source, special)

  def render(self, messages: Sequence[dict], *, add_generation_prompt: bool = False, **kwargs) -> str:
    _check_messages(messages)
    tmpl = _environment().from_string(self.source)
    return tmpl.render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                       **{**self.special_tokens, **kwargs})


def _check_messages(messages):
  for i, m in enumerate(messages):
    if not isinstance(m, dict) or "role" not in m or "content" not in m:
      raise ValueError(f"message {i} must be a dict with 'role' and 'content', got {m!r}")
    if m["role"] not in ROLE_IDS:
      raise ValueError(f"message {i} has role {m['role']!r}; expected one of {ROLES}")


@dataclasses.dataclass(frozen=True)
class ChatTokens:
  """A rendered conversation. All arrays are (T,) int32, aligned with `ids`.

  message:        index of the message whose rendered text holds the token; NO_TURN outside all.
  role:           ROLE_IDS of that message; NO_TURN outside all.
  assistant_turn: k for tokens the model generates in its k-th assistant turn (0-based: the
                  first attempt is 0, the self-correction 1); NO_TURN elsewhere. Loss mask of
                  turn k: `assistant_turn == k`; of every turn: `assistant_turn >= 0`.
  """
  text: str
  ids: np.ndarray
  message: np.ndarray
  role: np.ndarray
  assistant_turn: np.ndarray


def _boundaries(template: ChatTemplate, messages, add_generation_prompt, kwargs):
  """Per message i: (start char, generated-part start char) in the full rendering, and the text."""
  full = template.render(messages, add_generation_prompt=add_generation_prompt, **kwargs)
  starts, gen_starts = [], []
  prev_end = 0
  for i, m in enumerate(messages):
    start = prev_end
    if m["role"] == "assistant":
      head = template.render(messages[:i], add_generation_prompt=True, **kwargs) if i else ""
      if not full.startswith(head):
        raise ValueError(f"chat template is not prefix-stable at message {i}: the generation prompt for it "
                         "does not start the full rendering, so its turn cannot be located")
      gen_starts.append(len(head))
    else:
      gen_starts.append(None)
    upto = template.render(messages[:i + 1], add_generation_prompt=False, **kwargs)
    if not full.startswith(upto):
      raise ValueError(f"chat template is not prefix-stable at message {i}: rendering messages[:{i + 1}] is "
                       "not a prefix of the full conversation (the template rewrites earlier turns)")
    starts.append(start)
    prev_end = len(upto)
  return full, starts, gen_starts, prev_end


def tokenize_chat(tokenizer: Tokenizer, template: ChatTemplate, messages: Sequence[dict], *,
                  add_generation_prompt: bool = False, stop: Optional[Sequence[int]] = None,
                  **template_kwargs: Any) -> ChatTokens:
  """Render `messages` with `template`, tokenize, and label every token with its turn.

  `stop`: ids that end a generated turn (default: the tokenizer's EOS and end-of-turn markers).
  A self-correction episode is [system?, user problem, assistant attempt 1, user instruction,
  assistant attempt 2]; its assistant_turn labels are 0 and 1.
  """
  full, starts, gen_starts, end = _boundaries(template, list(messages), add_generation_prompt, template_kwargs)
  ids, offsets = tokenizer.encode_with_offsets(full)
  stop = set(stop_ids(tokenizer) if stop is None else stop)
  offsets = np.asarray(offsets, np.int64)
  t = len(ids)
  message = np.full((t,), NO_TURN, np.int32)
  role = np.full((t,), NO_TURN, np.int32)
  turn = np.full((t,), NO_TURN, np.int32)
  bounds = starts + [end]
  k = 0
  for i, m in enumerate(messages):
    inside = (offsets >= bounds[i]) & (offsets < bounds[i + 1])
    message[inside] = i
    role[inside] = ROLE_IDS[m["role"]]
    if m["role"] != "assistant":
      continue
    idx = np.nonzero(inside & (offsets >= gen_starts[i]))[0]
    for j in idx:   # through the first stop token; glue after it is the template's, not the model's
      turn[j] = k
      if ids[j] in stop:
        break
    k += 1
  return ChatTokens(full, np.asarray(ids, np.int32), message, role, turn)


def self_correction_messages(problem: str, attempts: Sequence[str], instruction: str,
                             system: Optional[str] = None) -> list[dict]:
  """[system?] user(problem), assistant(attempt 1), user(instruction), assistant(attempt 2), ...

  The protocol of SCoRe (Kumar et al., arXiv 2409.12917, §3): the same correction instruction
  follows every attempt but the last."""
  msgs = [{"role": "system", "content": system}] if system else []
  msgs.append({"role": "user", "content": problem})
  for n, attempt in enumerate(attempts):
    if n:
      msgs.append({"role": "user", "content": instruction})
    msgs.append({"role": "assistant", "content": attempt})
  return msgs
