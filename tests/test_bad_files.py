"""Bad files fail in one line that names the file: a truncated safetensors shard, a torn config.json,
index or tokenizer file, a shard the index names but the directory lacks, and, on the command line,
a missing config file, an unknown variant, a mistyped override or a config that fails validation."""
import json
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from critjax.data import tokenizers as ct
from critjax.models import decoder, hf_io
from critjax.models.config import ModelConfig
from experiments.config_loading import load_config

REPO = Path(__file__).resolve().parent.parent
CFG = ModelConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, d_ff=64)


def _export(path: Path, seed: int = 0, max_shard_bytes: int = 20_000) -> Path:
  params, _ = decoder.init_params(CFG, jax.random.key(seed))
  return hf_io.export_hf(params, CFG, path, family="llama", max_shard_bytes=max_shard_bytes)


@pytest.fixture
def sharded(tmp_path):
  d = _export(tmp_path / "ckpt")
  assert (d / hf_io.INDEX_FILE).exists() and len(list(d.glob("model-*.safetensors"))) >= 3
  return d


@pytest.fixture
def single(tmp_path):
  d = _export(tmp_path / "ckpt", max_shard_bytes=2**30)
  assert (d / hf_io.SINGLE_FILE).exists() and not (d / hf_io.INDEX_FILE).exists()
  return d


def _raises(path_in_message: Path, what: str, fn, *args, exc=hf_io.CheckpointError, **kw):
  """fn(*args) raises `exc` whose one-line message starts with the file's path and says `what`."""
  with pytest.raises(exc, match=re.escape(str(path_in_message)) + ": " + what) as e:
    fn(*args, **kw)
  assert "\n" not in str(e.value), str(e.value)
  return str(e.value)


def _no_weights_read(monkeypatch):
  monkeypatch.setattr(hf_io, "_place", lambda *a: pytest.fail("a weight was read before the files were checked"))


# ------------------------------------------------------------------------------ safetensors

def test_truncated_shard_names_it_and_its_sizes_before_any_weight_is_read(sharded, monkeypatch):
  last = sorted(sharded.glob("model-*.safetensors"))[-1]       # the last shard: all others are fine
  data = last.read_bytes()
  last.write_bytes(data[:-100])
  _no_weights_read(monkeypatch)
  msg = _raises(last, r"truncated or corrupt safetensors file \(header says \d+ bytes of tensors, file has \d+\)",
                hf_io.import_hf, sharded)
  have, = re.findall(r"file has (\d+)", msg)
  want, = re.findall(r"header says (\d+)", msg)
  assert int(want) - int(have) == 100


def test_shard_cut_inside_its_header(single):
  f = single / hf_io.SINGLE_FILE
  f.write_bytes(f.read_bytes()[:40])
  _raises(f, r"truncated or corrupt safetensors file \(header length says \d+ bytes, file has 32 after it\)",
          hf_io.import_hf, single)
  f.write_bytes(b"\x01\x02")
  _raises(f, r"truncated or corrupt safetensors file \(2 bytes", hf_io.import_hf, single)


def test_shard_with_trailing_bytes_or_garbage_header(single):
  f = single / hf_io.SINGLE_FILE
  data = f.read_bytes()
  f.write_bytes(data + b"\0" * 7)
  _raises(f, r"truncated or corrupt safetensors file \(header says (\d+) bytes of tensors, file has \d+\)",
          hf_io.import_hf, single)
  n = int.from_bytes(data[:8], "little")
  f.write_bytes(data[:8] + b"x" * n + data[8 + n:])
  _raises(f, r"truncated or corrupt safetensors file \(its \d+-byte header is not a valid safetensors header\)",
          hf_io.import_hf, single)


def test_shard_named_in_index_but_missing(sharded):
  shards = sorted(sharded.glob("model-*.safetensors"))
  shards[1].unlink()
  _raises(shards[1], f"shard file named in {re.escape(hf_io.INDEX_FILE)} not found$", hf_io.import_hf, sharded)
  shards[2].unlink()
  _raises(shards[1], r"shard file named in .* not found \(2 of \d+ shards missing", hf_io.import_hf, sharded)


# ------------------------------------------------------------------------------ JSON files

def test_torn_config_json(single):
  f = single / "config.json"
  text = f.read_text()
  f.write_text(text[: len(text) // 2])
  _raises(f, r"not valid JSON \(line \d+ column \d+: .*\); torn or truncated file\?", hf_io.import_hf, single)
  _raises(f, r"not valid JSON", hf_io.read_hf_config, single)
  f.write_text("")
  _raises(f, r"empty file", hf_io.import_hf, single)
  f.write_bytes(b"\xff\xfe{")
  _raises(f, r"not valid JSON \(not UTF-8", hf_io.import_hf, single)
  f.write_text("[1, 2]")
  _raises(f, r"expected a JSON object, got a JSON list", hf_io.import_hf, single)


def test_torn_index(sharded):
  f = sharded / hf_io.INDEX_FILE
  text = f.read_text()
  f.write_text(text[: len(text) - 40])
  _raises(f, r"not valid JSON \(line \d+ column \d+", hf_io.import_hf, sharded)
  f.write_text(json.dumps({"metadata": {}}))
  _raises(f, r"no 'weight_map' object", hf_io.import_hf, sharded)


def test_export_writes_atomically_and_drops_a_stale_index(sharded):
  assert not list(sharded.glob("*.tmp"))
  params, _ = decoder.init_params(CFG, jax.random.key(1))
  hf_io.export_hf(params, CFG, sharded, family="llama", max_shard_bytes=2**30)   # one file, same directory
  assert not (sharded / hf_io.INDEX_FILE).exists() and not list(sharded.glob("*.tmp"))
  got, _ = hf_io.import_hf(sharded)                # the new weights, not the old shards the index named
  jax.tree.map(np.testing.assert_array_equal, got, params)


# ------------------------------------------------------------------------------ tokenizers

@pytest.fixture
def tok_dir(tmp_path):
  from tokenizers import Tokenizer, models, pre_tokenizers
  tok = Tokenizer(models.WordLevel({"<unk>": 0, "<s>": 1, "a": 2, "b": 3}, unk_token="<unk>"))
  tok.pre_tokenizer = pre_tokenizers.Whitespace()
  tok.save(str(tmp_path / "tokenizer.json"))
  (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "unk_token": "<unk>"}))
  assert ct.load_tokenizer(tmp_path).bos_id == 1
  return tmp_path


def test_torn_tokenizer_json(tok_dir):
  f = tok_dir / "tokenizer.json"
  f.write_text(f.read_text()[:60])
  _raises(f, r"not a valid tokenizer.json \(.*\); torn or truncated file\?", ct.load_tokenizer, tok_dir,
          exc=ValueError)


def test_torn_tokenizer_config_json(tok_dir):
  f = tok_dir / "tokenizer_config.json"
  f.write_text('{"bos_token": "<s>", "unk_tok')
  _raises(f, r"not valid JSON \(line 1 column \d+", ct.load_tokenizer, tok_dir, exc=ValueError)


def test_torn_sentencepiece_model(tmp_path):
  f = tmp_path / "tokenizer.model"
  f.write_bytes(b"\x0a\x05trunc")
  _raises(f, r"not a valid sentencepiece model", ct.load_tokenizer, tmp_path, exc=ValueError)


# ------------------------------------------------------------------------------ config files

def test_load_config_missing_file():
  with pytest.raises(FileNotFoundError, match=r"^config file configs/nope.py not found$"):
    load_config("configs/nope.py:tiny")
  with pytest.raises(FileNotFoundError, match=r"config file configs is a directory"):
    load_config("configs")


def _train(*args):
  r = subprocess.run([sys.executable, "-m", "experiments.train", *args], cwd=REPO, capture_output=True,
                     text=True, timeout=120)
  return r.returncode, r.stderr.strip().splitlines()


@pytest.mark.parametrize("args, says", [
    (["--config=configs/nope.py:tiny"], "config file configs/nope.py not found"),
    (["--config=configs/nope.py:tiny", "--config.train.steps=5"], "config file configs/nope.py not found"),
    (["--config=configs/grpo.py:bogus"], "configs/grpo.py:bogus: unknown config variant 'bogus'"),
    (["--config=configs/grpo.py:tiny", "--config.train.stepz=5"], "names no config field 'train.stepz'; "
                                                                  "did you mean train.steps?"),
    (["--config=configs/grpo.py:tiny", "--config.rl.ppo_epochs=0"], "configs/grpo.py:tiny: config.rl: rl.ppo_epochs"),
], ids=["missing_file", "missing_file_with_override", "unknown_variant", "unknown_field", "invalid"])
def test_train_cli_bad_config_is_one_line(tmp_path, args, says):
  rc, lines = _train(*args, f"--workdir={tmp_path / 'w'}")
  assert rc == 2 and len(lines) == 1, "\n".join(lines[-60:])
  assert lines[0].startswith("error: ") and says in lines[0], lines[0]
  assert not (tmp_path / "w").exists()
