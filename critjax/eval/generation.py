"""Batched generation for evaluations, cached in the workdir so an interrupted evaluation continues.

A request is (id, messages): chat messages rendered with the model's chat template (or, for a
model without one, their contents joined as plain text). `Generator.generate(stage, requests)`
returns each request's completions; every finished batch is appended to
`<workdir>/generations/<model key>.jsonl`, keyed by the stage, the rendered prompt and the
sampling settings, so a rerun reads what it has and generates only the rest. The model key names
the weights (critjax/eval/models.py): other weights never reuse these generations.

Batches have a fixed number of rows and prompts padded to a multiple of `PROMPT_BUCKET` tokens,
so each (bucket, capacity) compiles once. Dimension key: B rows, P prompt length.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence

import jax
import numpy as np
from tqdm import tqdm

from critjax.data.tokenizers import stop_ids
from critjax.files import complete_lines
from critjax.sampling.sampler import Sampler
from critjax.sampling.token_choice import SamplingConfig

PROMPT_BUCKET = 64


@dataclasses.dataclass(frozen=True)
class Sampling:
  max_new_tokens: int = 512
  temperature: float = 0.0          # 0 = greedy
  top_p: float = 1.0
  num_samples: int = 1
  seed: int = 0


class Generator:
  def __init__(self, model, workdir: str | Path, *, batch_size: int = 16, max_prompt_len: int = 2048,
               progress: bool = True):
    self.model, self.batch_size, self.max_prompt_len, self.progress = model, batch_size, max_prompt_len, progress
    tok = model.tokenizer
    self.stops = tuple(stop_ids(tok))
    self.pad_id = tok.pad_id if tok.pad_id is not None else tok.eos_id
    self.path = Path(workdir) / "generations" / f"{model.key}.jsonl"
    self.path.parent.mkdir(parents=True, exist_ok=True)
    self.cache: dict[str, list[str]] = {}
    for line in complete_lines(self.path):       # a line torn by a kill is generated again
      row = json.loads(line)
      self.cache[row["key"]] = row["texts"]
    self._samplers: dict = {}
    self.generated_tokens = 0

  # --- prompts ---------------------------------------------------------------------------------
  def encode(self, messages: Sequence[dict]) -> list[int]:
    tok, chat = self.model.tokenizer, self.model.chat
    if chat is not None:
      from critjax.data.chat import tokenize_chat
      return tokenize_chat(tok, chat, messages, add_generation_prompt=True).ids.tolist()
    return tok.encode("\n\n".join(m["content"] for m in messages), add_special_tokens=self.model.add_bos)

  def _key(self, stage: str, ids: list[int], s: Sampling) -> str:
    h = hashlib.sha256(json.dumps([stage, ids, dataclasses.asdict(s)]).encode())
    return h.hexdigest()[:24]

  # --- generation ------------------------------------------------------------------------------
  def generate(self, stage: str, requests: Sequence[tuple[str, Sequence[dict]]], sampling: Sampling = Sampling()
               ) -> dict[str, list[str]]:
    """request id -> `sampling.num_samples` completions (text, stop token removed)."""
    encoded = {}
    for rid, messages in requests:
      ids = self.encode(messages)
      if len(ids) > self.max_prompt_len:      # keep the end: the question and the generation prompt
        ids = ids[-self.max_prompt_len:]
      encoded[rid] = (ids, self._key(stage, ids, sampling))
    todo = [(rid, ids, key) for rid, (ids, key) in encoded.items() if key not in self.cache]
    todo.sort(key=lambda t: len(t[1]))       # similar lengths share a bucket
    batches = [todo[i:i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
    bar = tqdm(total=len(todo), desc=stage, unit="prompt", disable=not self.progress or not todo,
               dynamic_ncols=True)
    with open(self.path, "a") as f:
      for b, batch in enumerate(batches):
        texts = self._run(batch, sampling, jax.random.fold_in(jax.random.PRNGKey(sampling.seed), b))
        for (rid, ids, key), t in zip(batch, texts):
          self.cache[key] = t
          f.write(json.dumps({"key": key, "stage": stage, "id": rid, "texts": t}) + "\n")
        f.flush()
        bar.update(len(batch))
    bar.close()
    return {rid: self.cache[key] for rid, (ids, key) in encoded.items()}

  def _sampler(self, capacity: int, s: Sampling) -> Sampler:
    k = (capacity, s.max_new_tokens, s.temperature, s.top_p)
    if k not in self._samplers:
      tok = self.model.tokenizer
      scfg = SamplingConfig(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_k=0, top_p=s.top_p,
                            eos_id=tok.eos_id, pad_id=self.pad_id,
                            extra_stop_ids=tuple(i for i in self.stops if i != tok.eos_id))
      self._samplers[k] = Sampler(self.model.cfg, scfg, capacity)
    return self._samplers[k]

  def _run(self, batch, s: Sampling, rng) -> list[list[str]]:
    n = len(batch)
    rows = self.batch_size
    p = -(-max(len(ids) for _, ids, _ in batch) // PROMPT_BUCKET) * PROMPT_BUCKET
    prompt = np.full((rows, p), self.pad_id, np.int32)
    lens = np.ones((rows,), np.int32)
    for i in range(rows):
      ids = batch[min(i, n - 1)][1]            # rows past the batch repeat its last prompt (dropped)
      prompt[i, :len(ids)] = ids
      lens[i] = len(ids)
    sampler = self._sampler(p + s.max_new_tokens, s)
    ro = sampler.generate(self.model.params, prompt, lens, rng, num_samples=s.num_samples)
    tokens, segment = np.asarray(ro.tokens), np.asarray(ro.segment)
    stops = set(self.stops)
    out = []
    for i in range(n):
      texts = []
      for j in range(s.num_samples):
        r = i * s.num_samples + j
        ids = [int(t) for t in tokens[r][segment[r] == 0] if int(t) not in stops]
        self.generated_tokens += int((segment[r] == 0).sum())
        texts.append(self.model.tokenizer.decode(ids, skip_special_tokens=True))
      out.append(texts)
    return out
