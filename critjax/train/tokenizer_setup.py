"""Tokenizer for a run: trained on the task's corpus (toy tasks) or loaded from a file.

A trained tokenizer belongs to its run: it is trained in memory at start-up and written to the
workdir (atomically, beside config.json) only once the run has started, so a start that fails
leaves no tokenizer behind. A resumed run (the workdir's config.json matches) loads that file, so
its ids never change under a checkpoint; a new run never reuses a file it finds, it trains its own.

`config.tokenizer.add_tokens` (a method's special tokens, ReVISE's [refine]) are added to any
tokenizer after it is trained or loaded, with the next free ids; one that the tokenizer already has
is refused by name (its id would be shared with whatever it meant before). A resumed trained
tokenizer holds them in its file.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from critjax.data.spm_training import train_sentencepiece
from critjax.data.templates import TEMPLATES
from critjax.data.tokenizers import SentencePieceTokenizer, check_vocab, load_tokenizer  # noqa: F401
from critjax.files import write_atomic

FILENAME = "tokenizer.model"


# Templates written for a role other than the task's solver: in a trained toy tokenizer's corpus
# only when the run names a recipe template (build_tokenizer).
ROLE_TEMPLATES = frozenset({"critique_toy"})


def build_tokenizer(cfg, task, workdir: Path):
  """The run's tokenizer with config.tokenizer.add_tokens added (module docstring)."""
  tok = _base_tokenizer(cfg, task, workdir)
  add = tuple(cfg.tokenizer.add_tokens)
  if add and getattr(tok, "resumed", False):
    _check_present(tok, add)          # a resumed trained tokenizer: its file holds them already
    return tok
  have = {t: tok.token_to_id(t) for t in add if tok.token_to_id(t) is not None}
  if have:
    raise ValueError(f"config.tokenizer.add_tokens: the tokenizer {getattr(tok, 'path', '')} already has "
                     + ", ".join(f"{t!r} (id {i})" for t, i in have.items())
                     + "; a method's special token must be new (reuse an existing one by naming it in the "
                       "recipe's args instead, e.g. recipe_args.refine_token, and leave add_tokens empty)")
  if add:
    tok.add_special_tokens(list(add))
  return tok


def _check_present(tok, add):
  missing = [t for t in add if tok.token_to_id(t) is None]
  if missing:
    raise ValueError(f"{tok.path}: the run's tokenizer lacks config.tokenizer.add_tokens {missing}")


def _base_tokenizer(cfg, task, workdir: Path):
  t = cfg.tokenizer
  if t.kind == "train_spm":
    path = Path(workdir) / FILENAME
    if (Path(workdir) / "config.json").exists():     # a resume: the run's own file
      if not path.exists():
        raise FileNotFoundError(f"{path}: missing; the run in {workdir} was trained with it (its config.json "
                                f"and checkpoints need the same ids)")
      tok = SentencePieceTokenizer(path)
      tok.unsaved, tok.resumed = False, True
      return tok
    with tempfile.TemporaryDirectory() as tmp:
      # Template text (instructions, feedback prompts) is in the corpus so every piece is known.
      extra = []
      own = cfg.recipe_args.get("template") if hasattr(cfg, "recipe_args") else None
      own = own if own != task.template else None
      # The task's template family (the task's own and its '*_<task>' variants) ...
      names = [n for n in TEMPLATES.names() if n == task.template or n.endswith("_" + task.template)]
      # ... except another role's template (critique_toy, a critic's prompts), which joins only runs
      # with a recipe template of their own. It had joined every toy run's corpus since the
      # Critique-RL commit (6678338): in the 64-piece toy tokenizer its pieces displaced arithmetic
      # ones, and the SCoRe quickstart's warm-up base fell from 28.1% to 10.2% Acc@t1 (bisected).
      # Runs with a recipe template keep the corpus their tables were recorded with.
      if own is None:
        names = [n for n in names if n not in ROLE_TEMPLATES]
      # The run's own template too (a recipe's template named otherwise, e.g. 'crl_arith'), and a
      # judge role's (recipes/judged.py).
      judge = cfg.recipe_args.get("judge_template") if hasattr(cfg, "recipe_args") else None
      for extra_name in (own, judge):
        if extra_name and extra_name not in names and extra_name in TEMPLATES:
          names.append(extra_name)
      for name in names:
        tpl = TEMPLATES.get(name)
        extra += [getattr(tpl, f) for f in ("correction_instruction", "critique_instruction",
                                           "refine_instruction", "vocabulary") if getattr(tpl, f, "")]
      trained = train_sentencepiece(task.corpus(cfg.seed + 104_729, t.corpus_size) + extra * 50, t.vocab_size,
                                    Path(tmp) / FILENAME)
      tok = SentencePieceTokenizer(trained)     # loaded into memory: the temporary file may go
    tok.path = path                             # where `save_tokenizer` puts it when the run starts
    tok.unsaved = True
    return tok
  if t.kind == "spm":
    return SentencePieceTokenizer(t.path)
  return load_tokenizer(t.path)  # HF tokenizer.json or a model directory


def save_tokenizer(tokenizer, workdir: Path):
  """Writes a tokenizer trained for this run into its workdir (atomically); others are left where they are."""
  if getattr(tokenizer, "unsaved", False):
    write_atomic(Path(workdir) / FILENAME, tokenizer.serialized())
    tokenizer.unsaved = False
