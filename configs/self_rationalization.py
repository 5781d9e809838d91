"""Self-rationalization (arXiv 2410.05495; critjax/rl/recipes/self_rationalization.py): a Likert judge
improved by DPO on pairs of its own judgments, two iterations.

  python -m experiments.train --config=configs/self_rationalization.py:tiny --workdir=/tmp/selfrat

Variants:
  tiny       the pointwise GRM toy with one response per item (critjax/data/grm_toy.py: gold score
             10 - 9 w // c): a warm-up on oracle judgments (the seed judge), then 2 iterations of
             8 sampled judgments per item of 128 fresh items (T = 1.0), pairs curated by the gold
             score, 20 DPO steps of 16 pairs (beta 0.1, plain DPO), the reference reset to the
             judge at each iteration's start.
  llama3.1-8b  the paper's seed judge's shape (Llama-3.1-8B-Instruct; UNVERIFIED in the spec), the
             grm_chat template, DPO at lr 5e-7 (our choice: the paper's is not in the spec), beta
             0.1. The paper's rubric data is not in ../shared/data: the recipe builds its items
             from the arithmetic toy and stops at start-up on a real-model task. Validated by the
             config tests.
"""
import ml_collections

from configs import common
from configs import grm as grm_configs

VARIANTS = ("tiny", "llama3.1-8b")


def get_config(arg: str = "tiny"):
  if arg not in VARIANTS:
    raise ValueError(f"unknown config variant {arg!r}; expected one of {VARIANTS}")
  c = grm_configs.get_config("tiny")
  c.name, c.recipe = "self_rationalization", "self_rationalization"
  c.recipe_args = ml_collections.ConfigDict(dict(
      template="grm_arith", n_responses=1, right_fraction=0.5, principles=True, rft_samples=3, rft_pool=1,
      rft_steps=0, rft_batch_size=1, hinted=False, iterations=2, judgments=8, pool=128, max_pairs=4,
      dpo_steps=20, pairs_per_step=16, eval_samples=8))
  c.rl.loss.update(kl_coef=0.0, dpo_beta=0.1, rpo_alpha=0.0)
  c.warmup.update(steps=300)
  c.rollout.temperature = 1.0
  c.optim.learning_rate = 3e-5
  c.train.update(steps=0, eval_every=20, checkpoint_every=20, eval_prompts=128)   # evals: SFT, iter 1, iter 2
  if arg == "tiny":
    return c
  c.model = ml_collections.ConfigDict(dict(common.qwen25_7b_model(), vocab_size=128_256, d_model=4096, n_layers=32,
                                           n_heads=32, n_kv_heads=8, d_ff=14_336, rope_theta=500_000.0,
                                           norm_eps=1e-5, qkv_bias=False, tie_embeddings=False))
  c.tokenizer.update(kind="hf", path="checkpoints/llama-3.1-8b-instruct", vocab_size=0, corpus_size=0,
                     chat_template=True)
  c.warmup.update(steps=0, checkpoint="checkpoints/llama-3.1-8b-instruct")
  c.recipe_args.update(dict(template="grm_chat", pool=10_000, dpo_steps=300, pairs_per_step=32))
  c.rollout.update(prompts_per_step=64, group_size=1, max_prompt_len=2048, max_new_tokens=1024)
  c.optim.update(learning_rate=5e-7, warmup_steps=10)
  c.mesh.update(data=1, fsdp=8)
  c.rl.update(num_minibatches=2, micro_batch_size=4)
  return c
