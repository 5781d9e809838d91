"""Tokenizer for a run: trained on the task's corpus (toy tasks) or loaded from a file.

A trained tokenizer is written to the workdir once; a resumed run loads that file, so its ids
never change under a checkpoint.
"""
from __future__ import annotations

from pathlib import Path

from critjax.data.spm_training import train_sentencepiece
from critjax.data.templates import TEMPLATES
from critjax.data.tokenizers import SentencePieceTokenizer, check_vocab, load_tokenizer  # noqa: F401


def build_tokenizer(cfg, task, workdir: Path):
  t = cfg.tokenizer
  if t.kind == "train_spm":
    path = Path(workdir) / "tokenizer.model"
    if not path.exists():
      # Template text (instructions, feedback prompts) is in the corpus so every piece is known.
      extra = []
      for name in [n for n in TEMPLATES.names() if n == task.template or n.endswith("_" + task.template)]:
        tpl = TEMPLATES.get(name)
        extra += [getattr(tpl, f) for f in ("correction_instruction", "critique_instruction",
                                           "refine_instruction", "vocabulary") if getattr(tpl, f, "")]
      train_sentencepiece(task.corpus(cfg.seed + 104_729, t.corpus_size) + extra * 50, t.vocab_size, path)
    return SentencePieceTokenizer(path)
  if t.kind == "spm":
    return SentencePieceTokenizer(t.path)
  return load_tokenizer(t.path)  # HF tokenizer.json or a model directory
