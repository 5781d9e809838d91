"""Train a small sentencepiece model on a task's own corpus (seconds, no download).

Digits are split into single pieces so that numbers tokenize column by column.
Special ids follow a fixed layout: pad 0, eos 1, bos 2, unk 3.
"""
from __future__ import annotations

import io
from pathlib import Path

import sentencepiece as spm

PAD_ID, EOS_ID, BOS_ID, UNK_ID = 0, 1, 2, 3


def train_sentencepiece(lines: list[str], vocab_size: int, path: str | Path) -> Path:
  """Writes `path` (a .model file) trained on `lines`; returns the path."""
  buf = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(lines), model_writer=buf, vocab_size=vocab_size, model_type="bpe",
      pad_id=PAD_ID, eos_id=EOS_ID, bos_id=BOS_ID, unk_id=UNK_ID, split_digits=True,
      character_coverage=1.0, hard_vocab_limit=False, num_threads=2, minloglevel=2)
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(buf.getvalue())
  return path

