"""ReVISE (arXiv 2502.14565; critjax/rl/recipes/revise.py): learn to verify, then to correct, with a
[refine] token; confidence-aware voting by p([eos]).

  python -m experiments.train --config=configs/revise.py:tiny --workdir=/tmp/revise

Variants:
  tiny          toy addition (worked column sums): the sentencepiece tokenizer gains '[refine]'
                (config.tokenizer.add_tokens; the model's vocabulary is one row larger), Stage 0 =
                the warm-up on gold solutions, then Stage 1 (verify) and Stage 2 (correct), each
                from 10 trajectories per question of 128 fresh questions (T 0.7, top_p 0.9, as the
                released scripts) and 80 DPO steps of 16 pairs, about one epoch (RPO: beta 0.1,
                alpha 0.1; lr 3e-4). Decoding
                allows 2 attempts. Evaluation: greedy, the verifier, voting over 8 samples.
  llama3.2-1b   the released scripts' setting: Llama-3.2-1B-Instruct on GSM8K, refine token
                <|reserved_special_token_0|> (already in Llama 3's vocabulary, so nothing is added),
                Stage 0 SFT lr 1e-4 (3 epochs of batch 32 on GSM8K's 7,473 = 700 steps), Stages
                1-2 lr 1e-5 with 10% warm-up, batch 64 pairs, 1 epoch (the step count follows the
                pairs sampled; 300 is our estimate for ~19k pairs), T 0.7, top_p 0.9, 1024 new tokens.
                Needs an accelerator and checkpoints/llama-3.2-1b-instruct; validated by the config tests.
"""
import ml_collections

from configs import common

VARIANTS = ("tiny", "llama3.2-1b")


def get_config(arg: str = "tiny"):
  if arg not in VARIANTS:
    raise ValueError(f"unknown config variant {arg!r}; expected one of {VARIANTS}")
  c = common.base_config("tiny")
  c.name, c.recipe = "revise", "revise"
  c.recipe_args = ml_collections.ConfigDict(dict(
      template="toy", refine_token="[refine]", max_attempts=2, samples=10, pool=128, verify_steps=80,
      correct_steps=80, pairs_per_step=16, vote_samples=8))
  c.tokenizer.add_tokens = ("[refine]",)
  c.model.vocab_size = c.tokenizer.vocab_size + 1           # the trained pieces + [refine]
  c.rl.loss.update(kl_coef=0.0, dpo_beta=0.1, rpo_alpha=0.1)
  c.rollout.update(temperature=0.7, top_p=0.9, max_new_tokens=80)
  # The toy's one design change (BENCHMARKS.md), made after one smoke run and before the table: lr 3e-5
  # and 30 steps left p([eos]) at 0.99 on right and wrong attempts alike (margin 0.0 at the end);
  # the paper trains each stage one epoch, here ~1,300 pairs / 16 = 80 steps, at the toy's RL lr.
  c.optim.learning_rate = 3e-4
  c.train.update(steps=0, eval_every=40, checkpoint_every=40, eval_prompts=128)
  if arg == "tiny":
    return c
  c.model = ml_collections.ConfigDict(dict(
      vocab_size=128_256, d_model=2048, n_layers=16, n_heads=32, n_kv_heads=8, head_dim=64, d_ff=8192,
      activation="silu", norm_eps=1e-5, rope_theta=500_000.0, rope_scaling=(("factor", 32.0),
      ("high_freq_factor", 4.0), ("low_freq_factor", 1.0), ("original_max_position_embeddings", 8192),
      ("rope_type", "llama3")), tie_embeddings=True, qkv_bias=False, dtype="bfloat16", param_dtype="float32",
      remat=True))
  c.task.update(name="gsm8k")
  c.tokenizer.update(kind="hf", path="checkpoints/llama-3.2-1b-instruct", vocab_size=0, corpus_size=0,
                     chat_template=True, add_tokens=())
  c.recipe_args.update(dict(template="math", refine_token="<|reserved_special_token_0|>", max_attempts=3,
                            pool=7473, verify_steps=300, correct_steps=300, pairs_per_step=64, vote_samples=8))
  c.warmup.update(steps=700, batch_size=32, learning_rate=1e-4, checkpoint="checkpoints/llama-3.2-1b-instruct")
  c.rollout.update(prompts_per_step=64, group_size=1, max_prompt_len=512, max_new_tokens=1024)
  c.optim.update(learning_rate=1e-5, warmup_steps=30)
  c.mesh.update(data=1, fsdp=8)
  c.rl.update(num_minibatches=2, micro_batch_size=4)
  c.train.update(eval_every=100, checkpoint_every=100, eval_prompts=1319)
  return c
