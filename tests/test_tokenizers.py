"""Tokenizer backends against independent references: transformers' fast tokenizer for tokenizer.json,
the text itself (round trips, offsets) for sentencepiece."""
import json

import numpy as np
import pytest
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from critjax.data import tokenizers as ct
from critjax.data.spm_training import BOS_ID, EOS_ID, PAD_ID, train_sentencepiece
from critjax.models.config import ModelConfig

CORPUS = ["Solve 12 + 7. The answer is 19.", "Check your work and fix any mistakes.",
          "Natalia sold clips to 48 of her friends in April.", "Ünïcode wörds too: café, naïve."] * 40
TEXTS = ["Solve 3 + 4 please.", "  leading spaces and\nnew lines\n\n", "café naïve ünïcode", "zzzz qqq 99999", ""]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp("bpe")
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  special = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
  tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=320, special_tokens=special,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  bos = tok.token_to_id("<|begin_of_text|>")
  tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                                     special_tokens=[("<|begin_of_text|>", bos)])
  tok.save(str(d / "tokenizer.json"))
  (d / "tokenizer_config.json").write_text(json.dumps({
      "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
      "eos_token": {"__type": "AddedToken", "content": "<|eot_id|>", "special": True, "lstrip": False,
                    "rstrip": False, "normalized": False, "single_word": False}, "pad_token": "<|end_of_text|>"}))
  return d


def test_hf_backend_matches_transformers(hf_dir):
  ours = ct.load_tokenizer(hf_dir)
  ref = transformers.AutoTokenizer.from_pretrained(hf_dir)
  assert isinstance(ours, ct.HFTokenizer)
  for text in TEXTS:
    for special in (False, True):
      assert ours.encode(text, add_special_tokens=special) == ref(text, add_special_tokens=special)["input_ids"]
    ids = ours.encode(text)
    assert ours.decode(ids) == ref.decode(ids) == text
  assert (ours.bos_id, ours.eos_id, ours.pad_id) == (ref.bos_token_id, ref.eos_token_id, ref.pad_token_id)
  assert ours.vocab_size == len(ref)
  ids = ours.encode("Solve it", add_special_tokens=True)
  assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True) == "Solve it"
  assert ct.stop_ids(ours) == (ours.eos_id,)


def test_hf_offsets_point_at_token_text(hf_dir):
  ours = ct.load_tokenizer(hf_dir / "tokenizer.json")
  text = "Solve 12 + 7. The answer is 19."
  ids, starts = ours.encode_with_offsets(text)
  assert ids == ours.encode(text)
  bounds = starts + [len(text)]
  assert "".join(text[a:b] for a, b in zip(bounds, bounds[1:])) == text
  for j, i in enumerate(ids):
    assert ours.decode([i]) == text[bounds[j]:bounds[j + 1]]


@pytest.fixture(scope="module")
def spm_path(tmp_path_factory):
  return train_sentencepiece(CORPUS, 80, tmp_path_factory.mktemp("spm") / "toy.model")


def test_sentencepiece_backend(spm_path):
  tok = ct.load_tokenizer(spm_path)
  assert isinstance(tok, ct.SentencePieceTokenizer)
  assert (tok.pad_id, tok.eos_id, tok.bos_id) == (PAD_ID, EOS_ID, BOS_ID)
  assert tok.vocab_size >= 80
  for text in ["Solve 12 + 7.", "café naïve", "The answer is 19."]:
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.encode(text, add_special_tokens=True) == [BOS_ID] + ids
    assert tok.decode([BOS_ID] + ids + [EOS_ID], skip_special_tokens=True) == text
    # Offsets are characters (the backend converts from UTF-8 bytes): the tail from each token's
    # start decodes to the tail of the text.
    ids2, starts = tok.encode_with_offsets(text)
    assert ids2 == ids and starts[0] == 0 and starts == sorted(starts)
    for j, s in enumerate(starts):
      assert tok.decode(ids[j:]) == text[s:].lstrip(" ")
  assert ct.stop_ids(tok) == (EOS_ID,)


def test_check_vocab(hf_dir, spm_path):
  tok = ct.load_tokenizer(hf_dir)
  ct.check_vocab(tok, ModelConfig(vocab_size=tok.vocab_size))
  ct.check_vocab(tok, ModelConfig(vocab_size=tok.vocab_size + 64))   # padded embeddings are fine
  with pytest.raises(ValueError, match=rf"has {tok.vocab_size} ids but model.vocab_size=64"):
    ct.check_vocab(tok, ModelConfig(vocab_size=64))
  sp = ct.load_tokenizer(spm_path)
  with pytest.raises(ValueError, match="model.vocab_size=16"):
    ct.check_vocab(sp, ModelConfig(vocab_size=16))


def test_load_tokenizer_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="neither tokenizer.json nor tokenizer.model"):
    ct.load_tokenizer(tmp_path)
  with pytest.raises(ValueError, match="expected a directory"):
    ct.load_tokenizer(tmp_path / "vocab.txt")


def test_vocab_size_counts_top_added_id(hf_dir, tmp_path):
  """Added tokens extend the id range; vocab_size is the top id + 1 (what the embedding must cover)."""
  tok = Tokenizer.from_file(str(hf_dir / "tokenizer.json"))
  tok.add_special_tokens(["<|im_start|>", "<|im_end|>"])
  tok.save(str(tmp_path / "tokenizer.json"))
  ours = ct.load_tokenizer(tmp_path / "tokenizer.json")
  assert ours.vocab_size == max(tok.get_vocab(with_added_tokens=True).values()) + 1
  assert np.all(np.asarray(ours.encode("<|im_start|>x<|im_end|>")) < ours.vocab_size)
