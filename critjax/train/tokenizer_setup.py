"""Tokenizer for a run: trained on the task's corpus (toy tasks) or loaded from a file.

A trained tokenizer is written to the workdir once; a resumed run loads that file, so its ids
never change under a checkpoint.
"""
from __future__ import annotations

from pathlib import Path

from critjax.data.spm_training import SpmTokenizer, train_sentencepiece
from critjax.data.templates import TEMPLATES


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
                                           "refine_instruction") if hasattr(tpl, f)]
      train_sentencepiece(task.corpus(cfg.seed + 104_729, t.corpus_size) + extra * 50, t.vocab_size, path)
    return SpmTokenizer(path)
  if t.kind == "spm":
    return SpmTokenizer(t.path)
  from critjax.data import tokenizers  # HF tokenizer.json
  return tokenizers.load_tokenizer(t.path)


def check_vocab(tokenizer, model_cfg):
  """Stops before training when the tokenizer can emit ids the model has no embedding for."""
  if tokenizer.vocab_size > model_cfg.vocab_size:
    raise ValueError(f"tokenizer has {tokenizer.vocab_size} ids but model.vocab_size is {model_cfg.vocab_size}: "
                     "the tokenizer does not match the model")
