"""GRPO (DeepSeekMath, arXiv 2402.03300) on the toy arithmetic task or a real model.

  python -m experiments.train --config=configs/grpo.py:tiny --workdir=/tmp/grpo_tiny

Variants:
  tiny          2-core CPU, ~5 min: 0.5M-param decoder, sentencepiece tokenizer trained on the task,
                supervised warm-up to ~20-70% accuracy, then GRPO. Expect eval accuracy to rise by
                >= 15 points (BENCHMARKS.md has the measured run).
  qwen2.5-1.5b  Qwen2.5-1.5B-Instruct on GSM8K, one 8-chip host (fsdp 8). Cannot run on a CPU;
                the fields are complete and validated by tests/test_configs.py.
  qwen2.5-7b    the 7B-class step of issue 20's memory goal: Qwen2.5-7B-Instruct's shapes, fsdp over
                8 devices, 2k-token sequences (512 prompt + 1536 new), micro-batches of 4 rows per
                device (32 rows), bf16 activations, remat (experiments/memory_report.py).
"""
import ml_collections

from configs import common


def get_config(arg: str = "tiny"):
  c = common.base_config("qwen2.5-1.5b" if arg == "qwen2.5-7b" else arg)
  if arg == "qwen2.5-7b":
    c.model = ml_collections.ConfigDict(common.qwen25_7b_model())
    c.tokenizer.path = c.warmup.checkpoint = "checkpoints/qwen2.5-7b"
    c.rollout.update(max_prompt_len=512, max_new_tokens=1536)
    c.rl.micro_batch_size = 32
  c.name = "grpo"
  c.recipe = "grpo"
  c.rl.advantage = "grpo"
  c.rl.loss.ratio = "token"
  c.rl.loss.aggregation = "seq_mean_token_mean"
  c.rl.loss.kl_estimator = "k3"
  if arg == "tiny":
    c.rl.loss.kl_coef = 0.0      # beta = 0: the toy run needs no reference model (DeepSeekMath used 0.04)
  else:
    c.rl.loss.kl_coef = 0.04     # DeepSeekMath beta
  return c
