"""Faults and bad input around the trainer: start-up validation before anything is written, clean
logs on resume, SIGTERM / SIGKILL at random moments (experiments/kill_soak.py), checkpoints never
deleted by a run that did not write them."""
import json
import random
import signal
import struct
from pathlib import Path

import pytest
from conftest import compilation_cache, strip_timing

from critjax.train.loop import train
from critjax.train.metrics import read_metrics
from experiments import kill_soak
from test_train_loop import tiny


# --- start-up validation: named, and before the workdir is touched ------------------------------

BAD_SETTINGS = [
    ({"rl.num_minibatches": 3}, r"config.rl.num_minibatches=3 does not divide the 16 rows"),
    ({"rl.micro_batch_size": 3}, r"config.rl.micro_batch_size=3 does not divide the mini-batch of 16 rows"),
    ({"rl.num_minibatches": 2, "rl.micro_batch_size": 16}, r"micro_batch_size=16 does not divide the mini-batch of 8"),
    ({"train.eval_every": 0}, r"config.train: eval_every=0 must be >= 1"),
    ({"train.checkpoint_every": 0}, r"config.train: checkpoint_every=0 must be >= 1"),
    ({"train.log_every": 0}, r"config.train: log_every=0 must be >= 1"),
    ({"rollout.group_size": 1}, r"config.rollout.group_size=1 with config.rl.advantage='grpo'"),
    ({"warmup.learning_rate": -1e-3}, r"config.warmup: learning_rate=-0.001 must be > 0"),
    ({"warmup.batch_size": 0}, r"config.warmup: batch_size=0 must be >= 1"),
    ({"train.steps": -1}, r"config.train: steps=-1 must be >= 0"),
    ({"train.steps": 0, "warmup.steps": 0}, r"nothing to run: config.train.steps=0"),
    ({"train.eval_prompts": 0}, r"config.train: eval_prompts=0 must be >= 1"),
    ({"train.keep_checkpoints": 0}, r"config.train: keep_checkpoints=0 must be >= 1"),
]


@pytest.mark.parametrize("over,match", BAD_SETTINGS, ids=[",".join(o) for o, _ in BAD_SETTINGS])
def test_bad_setting_is_named_before_anything_is_written(tmp_path, over, match):
  with pytest.raises(ValueError, match=match):
    train(tiny(steps=2, **over), tmp_path / "w")
  assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_group_of_one_is_fine_without_a_group_baseline(tmp_path):
  from critjax.train.loop import build
  build(tiny(steps=1, **{"rollout.group_size": 1, "rl.advantage": "reinforce"}), tmp_path)


def test_a_failed_start_does_not_block_its_corrected_rerun(tmp_path, compiled_once):
  """A start that fails after validation (here: the Hugging Face start is not a model directory,
  found when the parameters are built) writes neither config.json nor a tokenizer."""
  bad = tmp_path / "not_a_model"
  bad.mkdir()
  with pytest.raises(Exception):
    train(tiny(steps=2, **{"warmup.checkpoint": str(bad)}), tmp_path / "w")
  assert not (tmp_path / "w" / "config.json").exists()
  assert not (tmp_path / "w" / "tokenizer.model").exists()
  train(tiny(steps=2), tmp_path / "w")       # another experiment's settings: not refused


def test_a_stale_tokenizer_file_is_rebuilt_not_reused(tmp_path, compiled_once):
  """A tokenizer.model left in a workdir without config.json (a run that never started) is not this
  run's: the run trains its own (before, it was loaded and every step failed on piece ids). The stale
  file is the tokenizer another experiment's run (56 pieces) would have written when it started:
  built by the same start-up code, without running that experiment."""
  from critjax.train.loop import build
  stale = build(tiny(steps=1, **{"tokenizer.vocab_size": 56}), tmp_path / "other")["tokenizer"].serialized()
  w = tmp_path / "w"
  w.mkdir()
  (w / "tokenizer.model").write_bytes(stale)
  result = train(tiny(steps=2), w)
  assert (w / "tokenizer.model").read_bytes() != stale
  assert not any(r.get("skipped") for r in read_metrics(w))
  assert "accuracy" in result.eval


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, compilation_cache_dir):
  d = tmp_path_factory.mktemp("finished") / "w"
  with compilation_cache(compilation_cache_dir):
    train(tiny(steps=2), d)
  return d


def test_checkpoints_without_a_config_are_not_deleted(tmp_path, finished_run, compiled_once):
  """keep_checkpoints would delete checkpoints the run did not write; a workdir holding
  checkpoints but no config.json is refused instead, with nothing changed."""
  import shutil
  w = tmp_path / "w"
  shutil.copytree(finished_run, w)
  (w / "config.json").unlink()
  before = sorted(p.name for p in (w / "checkpoints").iterdir())
  with pytest.raises(ValueError, match="holds checkpoints but .*config.json is missing"):
    train(tiny(steps=6, **{"train.keep_checkpoints": 1}), w)
  assert sorted(p.name for p in (w / "checkpoints").iterdir()) == before


def test_torn_config_json_is_named(tmp_path, finished_run, compiled_once):
  import shutil
  w = tmp_path / "w"
  shutil.copytree(finished_run, w)
  (w / "config.json").write_text((w / "config.json").read_text()[:40])
  with pytest.raises(ValueError, match=r"config.json: not valid JSON"):
    train(tiny(steps=2), w)


# --- logs on resume -----------------------------------------------------------------------------

def tensorboard_scalars(logdir: Path) -> dict:
  """tag -> [(step, value)] from every event file in `logdir`, read with the TFRecord framing
  (u64 length, u32 crc, payload, u32 crc) and tensorboardX's Event proto."""
  from tensorboardX.proto import event_pb2
  out: dict = {}
  for f in sorted(logdir.glob("events.out.tfevents.*")):
    data = f.read_bytes()
    i = 0
    while i + 12 <= len(data):
      (n,) = struct.unpack("<Q", data[i:i + 8])
      ev = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
      i += 12 + n + 4
      for v in ev.summary.value:
        out.setdefault(v.tag, []).append((ev.step, v.simple_value))
  return out


def test_resume_cuts_the_log_back_and_continues_one_tensorboard_run(tmp_path, compiled_once):
  """Rows logged after the last checkpoint (here: steps 3 and the torn half of a row) are written
  again by the resumed run; the log has each once, and TensorBoard is one run without repeats."""
  cfg = tiny(steps=6, **{"train.checkpoint_every": 2})
  train(cfg, tmp_path / "a")
  w = tmp_path / "b"
  train(cfg, w, stop_after=3)                 # checkpoint at RL step 2; step 3 logged past it
  with open(w / "metrics.jsonl", "a") as f:
    f.write('{"step": 4, "loss"')             # a row torn by a kill
  train(cfg, w)
  a, b = strip_timing(read_metrics(tmp_path / "a")), strip_timing(read_metrics(w))
  assert [kill_soak.row_key(r) for r in b] == [kill_soak.row_key(r) for r in a]
  assert all(kill_soak.same_row(x, y) for x, y in zip(a, b))
  assert len(list((w / "tensorboard").glob("events.out.tfevents.*"))) == 1
  tb = tensorboard_scalars(w / "tensorboard")
  for tag, points in tb.items():
    steps = [s for s, _ in points]
    assert len(steps) == len(set(steps)), f"{tag}: duplicated steps {steps}"
  assert [s for s, _ in tb["loss"]] == [r["step"] for r in b if "loss" in r]


# --- SIGTERM and SIGKILL ------------------------------------------------------------------------

def test_random_kills_and_a_sigterm_resume_exactly(tmp_path, compiled_once):
  """Each kind of interruption once, each followed by the same command: a SIGKILL at a random
  moment, a SIGKILL while a checkpoint is being written and a SIGTERM (kill_soak: kills alternate
  between the two kinds of SIGKILL, so two kills are one of each). Every metric equals the
  uninterrupted run's, no row twice. The runs share one compilation cache (conftest), so every
  start after the uninterrupted one spends its time running rather than compiling."""
  summary = kill_soak.soak(tmp_path, kills=2, terms=1, steps=20, seed=1)
  print(json.dumps(summary))
  assert summary["kills"] == 2 and summary["terms"] == 1, summary
  assert summary["kills_in_checkpoint_write"] >= 1, summary
  assert summary["term_clean_exits"] == 1, summary     # one line, status 143, the step checkpointed
  assert summary["exact_resumes"] == summary["interruptions"] == 3, summary
  assert summary["corrupt_checkpoints"] == 0 and summary["duplicated_rows"] == 0, summary
  assert summary["final_equals_reference"], summary


# --- the command line ---------------------------------------------------------------------------

@pytest.mark.parametrize("over,named", [
    (["--config.warmup.checkpoint={d}/no_model"], "config.warmup.checkpoint='{d}/no_model' is not a directory"),
    (["--config.tokenizer.kind=spm", "--config.tokenizer.path={d}/no.model"], "{d}/no.model"),
    (["--config.task.name=gsm8k", "--config.task.path={d}/no.jsonl"], "config.task.path='{d}/no.jsonl'"),
    (["--config.rl.micro_batch_size=3"], "config.rl.micro_batch_size=3 does not divide"),
], ids=["warmup.checkpoint", "tokenizer.path", "task.path", "micro_batch_size"])
def test_path_fields_are_set_from_the_command_line_and_bad_input_is_one_line(tmp_path, over, named):
  """Path fields default to None yet take a value from the command line (ml_collections refused to
  override a None); what the run then finds wrong is one `error:` line, and the workdir stays empty."""
  import subprocess
  import sys
  args = [a.format(d=tmp_path) for a in over]
  out = subprocess.run([sys.executable, "-m", "experiments.train", "--config=configs/grpo.py:tiny",
                        f"--workdir={tmp_path / 'w'}", *args], capture_output=True, text=True, timeout=300)
  lines = out.stderr.strip().splitlines()
  assert out.returncode == 2 and len(lines) == 1, out.stderr[-2000:]
  assert lines[0].startswith("error: ") and named.format(d=tmp_path) in lines[0], lines
  assert not (tmp_path / "w").exists()
