"""Adding a token (ReVISE's [refine]): the tokenizers (sentencepiece and Hugging Face) give it one new
id and keep it whole, the decoder's new rows are the mean of the old ones (old logits unchanged, a
tied head's new logit the mean of the old ones), and the Hugging Face export carries the new rows."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from critjax.data.arithmetic import ArithmeticTask
from critjax.data.spm_training import train_sentencepiece
from critjax.data.tokenizers import HFTokenizer, SentencePieceTokenizer
from critjax.models import decoder, hf_io
from critjax.models.config import ModelConfig
from critjax.models.vocab import resize_vocab

REFINE = "[refine]"
BASE = dict(vocab_size=64, d_model=32, n_layers=1, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)


def test_sentencepiece_adds_the_token_whole(tmp_path):
  lines = [f"Q: {a}+{b} ={ArithmeticTask().solution(a, b)}" for a, b in (ArithmeticTask().problem(0, i) for i in range(300))]
  tok = SentencePieceTokenizer(train_sentencepiece(lines, 64, tmp_path / "t.model"))
  n = tok.vocab_size
  (rid,) = tok.add_special_tokens([REFINE])
  assert rid == n and tok.vocab_size == n + 1 and tok.add_special_tokens([REFINE]) == [rid]
  text = "1+2=3 c0 ; A: 3" + REFINE + " 1+2=3 c0 ; A: 3"      # sentencepiece decodes without a leading space
  ids = tok.encode(text)
  assert ids.count(rid) == 1 and tok.decode(ids) == text
  (tmp_path / "u.model").write_bytes(tok.serialized())
  assert SentencePieceTokenizer(tmp_path / "u.model").token_to_id(REFINE) == rid


def test_hf_tokenizer_adds_the_token_whole():
  from tokenizers import Tokenizer, models, pre_tokenizers
  t = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1, "b": 2, "</s>": 3}, unk_token="<unk>"))
  t.pre_tokenizer = pre_tokenizers.Whitespace()
  tok = HFTokenizer.from_tokenizer(t, {"eos_token": "</s>"})
  (rid,) = tok.add_special_tokens([REFINE])
  assert rid == 4 and tok.vocab_size == 5 and tok.encode("a [refine] b") == [1, 4, 2]


@pytest.mark.parametrize("tied", [True, False])
def test_new_rows_are_the_mean_and_old_logits_unchanged(tied):
  cfg = ModelConfig(**BASE, tie_embeddings=tied)
  params, _ = decoder.init_params(cfg, jax.random.key(0))
  new, cfg2 = resize_vocab(params, cfg, 66)
  assert cfg2.vocab_size == 66 and new["embed"].shape == (66, 32)
  np.testing.assert_allclose(new["embed"][64], np.asarray(params["embed"]).mean(0), rtol=1e-5, atol=1e-7)
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 64, (2, 7)), jnp.int32)
  old = np.asarray(decoder.forward(params, tokens, cfg)[0])
  got = np.asarray(decoder.forward(new, tokens, cfg2)[0])
  np.testing.assert_allclose(got[..., :64], old, atol=1e-5)
  if tied:           # h . mean(E) = mean(h . E)
    np.testing.assert_allclose(got[..., 64], old.mean(-1), atol=1e-5)
  else:
    assert new["lm_head"].shape == (32, 66)
    np.testing.assert_allclose(new["lm_head"][:, 65], np.asarray(params["lm_head"]).mean(1), rtol=1e-5, atol=1e-7)
  with pytest.raises(ValueError, match="only grows"):
    resize_vocab(params, cfg, 10)


def test_the_hf_export_carries_the_new_rows(tmp_path):
  cfg = ModelConfig(**BASE, tie_embeddings=False)
  params, _ = decoder.init_params(cfg, jax.random.key(1))
  new, cfg2 = resize_vocab(params, cfg, 65)
  hf_io.export_hf(new, cfg2, tmp_path, family="llama")
  back, cfg3 = hf_io.import_hf(tmp_path)
  assert cfg3.vocab_size == 65
  np.testing.assert_array_equal(np.asarray(back["embed"]), np.asarray(new["embed"]))
  np.testing.assert_array_equal(np.asarray(back["lm_head"]), np.asarray(new["lm_head"]))


def test_an_hf_import_grows_to_the_configured_vocabulary_only_when_tokens_are_added(tmp_path):
  import dataclasses
  from critjax import sharding as sh
  from critjax.train.loop import _import_hf
  cfg = ModelConfig(**BASE, tie_embeddings=False)
  params, _ = decoder.init_params(cfg, jax.random.key(2))
  hf_io.export_hf(params, cfg, tmp_path, family="llama")
  grown = dataclasses.replace(cfg, vocab_size=65)
  mesh = sh.make_mesh(sh.MeshConfig())
  shapes = jax.eval_shape(lambda: decoder.init_params(grown, jax.random.PRNGKey(0))[0])
  shardings = sh.tree_shardings(decoder.logical_axes(grown), shapes, mesh)
  got = _import_hf(grown, str(tmp_path), shardings, grow_vocab=True)
  want, _ = resize_vocab(params, cfg, 65)                    # the old rows, then their mean
  for k in ("embed", "lm_head"):
    np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]), rtol=1e-6, atol=1e-7)
  with pytest.raises(ValueError, match="vocab_size: 65 .config. != 64"):
    _import_hf(grown, str(tmp_path), shardings, grow_vocab=False)
