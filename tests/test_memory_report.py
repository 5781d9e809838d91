"""experiments.memory_report on the tiny GRPO config: the update and the decode turn compile from
abstract shapes on the 8 fake devices, the floor is the hand count of the sharded state, and the
chunked log-probs hold fewer temporaries than the whole (B, T, V) ones."""
import math

import jax
import numpy as np

from configs import grpo
from experiments import memory_report


def test_tiny_report_floor_by_hand_and_decode(tmp_path, monkeypatch):
  path = tmp_path / "c.py"       # the tiny config at a 4k vocabulary, so the (B, T, V) logits dominate
  path.write_text("from configs import grpo\n"
                  "def get_config():\n  c = grpo.get_config('tiny')\n  c.model.vocab_size = 4096\n"
                  "  c.mesh.update(data=1, fsdp=8)\n  return c\n")
  rec = memory_report.report(str(path), [0, 16], decode=True)
  cfg = grpo.get_config("tiny")
  m, r = cfg.model, cfg.rollout
  n = (4096 * m.d_model + m.n_layers * (m.d_model * (m.n_heads + 2 * m.n_kv_heads) * m.head_dim
       + m.n_heads * m.head_dim * m.d_model + 3 * m.d_model * m.d_ff + 2 * m.d_model) + m.d_model)
  assert rec["params"] == 4 * n                                   # float32 parameters, tied head
  # Adam's two moments + the parameters over 8 fsdp shards (+ the step counters), float32 gradients
  assert abs(rec["floor"]["state"] - 3 * 4 * n / 8) / (3 * 4 * n / 8) < 0.02
  assert abs(rec["floor"]["grads"] - 4 * n / 8) / (4 * n / 8) < 0.02
  t = r.max_prompt_len + r.max_new_tokens
  assert rec["floor"]["activations"] == m.n_layers * (r.prompts_per_step * r.group_size // 8) * t * m.d_model * 4
  whole, chunked = rec["runs"]
  assert whole["temps"] > chunked["temps"] > 0 and whole["peak"] >= rec["floor"]["total"]
  d = rec["decode"]
  rows = r.prompts_per_step * r.group_size
  assert d["floor"]["cache"] == 2 * m.n_layers * (rows // 8) * m.n_kv_heads * t * m.head_dim * 4
  assert d["peak"] >= d["floor"]["total"] > 0


def test_activation_constraints_keep_rows_split(tmp_path):
  # an fsdp-sharded model traced without the activation rules let XLA keep every row on every device
  path = tmp_path / "c.py"
  path.write_text("from configs import grpo\n"
                  "def get_config():\n  c = grpo.get_config('tiny')\n  c.model.vocab_size = 4096\n"
                  "  c.mesh.update(data=1, fsdp=8)\n  c.rl.micro_batch_size = 32\n  return c\n")
  on = memory_report.report(str(path), [0])["runs"][0]
  off = memory_report.report(str(path), [0], activation_sharding=False)["runs"][0]
  assert on["temps"] < 0.5 * off["temps"]


def test_micro_batches_are_strided_and_keep_pairs():
  from critjax.train.update import split_micro_batches
  x = np.arange(8)
  np.testing.assert_array_equal(split_micro_batches(x, 2), [[0, 2, 4, 6], [1, 3, 5, 7]])
  np.testing.assert_array_equal(split_micro_batches(x, 2, unit=2), [[0, 1, 4, 5], [2, 3, 6, 7]])
  y = np.arange(24).reshape(8, 3)
  assert split_micro_batches(y, 4, unit=2).shape == (4, 2, 3)
  np.testing.assert_array_equal(split_micro_batches(y, 4, unit=2)[1], y[[2, 3]])
