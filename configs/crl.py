"""Critique-Coder's Critique Reinforcement Learning, CRL (arXiv 2509.22824): GRPO on a mixture of
solve prompts and critique prompts (20% of the batch), one policy.

  python -m experiments.train --config=configs/crl.py:tiny --workdir=/tmp/crl

Variants:
  tiny          toy arithmetic on a 2-core CPU: a warm-up on worked solutions and oracle critiques
                (20% of its rows), then CRL with 3 of 16 prompts a step critique items, sampled from
                the policy when RL starts. `--config.recipe_args.mixture.critique=0
                --config.recipe_args.mixture.solve=1` is the RL-only GRPO arm of the same run.
  tiny_rl       that RL-only arm (mixture solve 1.0).
  qwen3-4b      the paper's setting (ALGORITHMS.md §5, train_qwen3_4b_16k.sh) on one 8-chip host:
  qwen3-8b      Qwen3 (thinking) on HumanEval-style code with the sandboxed tests, n = 8, prompt batch
                128, mini-batch 64, lr 1e-6 with 10 warm-up steps, clip 0.2 / 0.3, token-mean, dynamic
                sampling, overlong masking, no KL, T 0.6 / top-p 0.95 / top-k 20, prompt 4096,
                response 16384; a solve item's reward is the fraction of test cases passed
                (task.code_reward="fraction"). Cannot run on a CPU; validated by tests/test_crl.py.
"""
import ml_collections

from configs import common


def get_config(arg: str = "tiny"):
  if arg == "tiny_rl":
    c = get_config("tiny")
    c.name = "crl_rl_only"
    c.recipe_args.mixture = ml_collections.ConfigDict(dict(solve=1.0, critique=0.0))
    return c
  c = common.base_config("tiny" if arg == "tiny" else "qwen2.5-1.5b")
  c.name = "crl"
  c.recipe = "crl"
  # verl GRPO as Critique-Coder runs it: clip-higher 0.3, token-mean loss, no KL, dynamic sampling
  # (groups whose rewards are all equal are dropped and refilled), overlong samples masked.
  c.rl.advantage = "grpo"
  c.rl.loss.update(clip_low=0.2, clip_high=0.3, aggregation="token_mean", kl_coef=0.0, entropy_coef=0.0)
  c.rl.dynamic_sampling = True
  c.rl.overlong_filter = True
  c.recipe_args = ml_collections.ConfigDict(dict(
      template="crl_arith", mixture=dict(solve=0.8, critique=0.2), verdict="conclusion",
      pool_size=512, eval_items=0, warmup_critique=0.2))
  if arg == "tiny":
    c.rl.max_gen_batches = 2          # bounds a CPU step (verl regenerates without limit)
    c.rollout.update(prompts_per_step=16, group_size=8, max_prompt_len=96, max_new_tokens=64)
    c.recipe_args.pool_size = 256
    c.warmup.update(steps=200, batch_size=32)
    c.train.update(steps=40, eval_every=20, checkpoint_every=20, eval_prompts=256)
    return c
  if arg not in ("qwen3-4b", "qwen3-8b"):
    raise ValueError(f"unknown config variant {arg!r}; expected tiny, tiny_rl, qwen3-4b or qwen3-8b")
  size = arg.split("-")[1]
  c.model = ml_collections.ConfigDict(common.qwen3_model(size))
  # The RL reward of a code item is the fraction of its test cases passed (HumanEval's asserts);
  # critique items are labelled right iff all pass (score == 1).
  c.task.update(name="humaneval", code_reward="fraction")
  c.recipe_args.update(dict(template="crl_code", warmup_critique=0.0, pool_size=4096))
  c.tokenizer.path = f"checkpoints/qwen3-{size}"
  c.warmup.update(steps=0, checkpoint=f"checkpoints/qwen3-{size}")
  c.rl.max_gen_batches = 10
  c.rollout.update(prompts_per_step=128, group_size=8, max_prompt_len=4096, max_new_tokens=16_384,
                   temperature=0.6, top_p=0.95, top_k=20)
  c.rl.update(num_minibatches=2, micro_batch_size=4)     # mini-batch 64 prompts = 512 rows
  c.optim.update(learning_rate=1e-6, warmup_steps=10)
  c.train.update(steps=500, eval_every=50, checkpoint_every=50, eval_prompts=164)
  return c
