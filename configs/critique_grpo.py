"""Critique-GRPO (arXiv 2506.03106): critique-guided refinements mixed into the GRPO group.

  python -m experiments.train --config=configs/critique_grpo.py:tiny --workdir=/tmp/critique_grpo

Variants:
  tiny          toy arithmetic on a 2-core CPU: a policy and a CoT critic (two tiny decoders) fitted
                together in one supervised warm-up (the policy on refinements after every critique
                type, the critic on the task's oracle critiques), then RL with the critic frozen:
                16 prompts x 8 samples, 8 refinements per prompt, 1 kept (7 + 1), 30 steps. Pick the
                critique with --config.recipe_args.critique=none|simple|simple_gt|cot (none = GRPO
                through the same code). experiments/critique_grpo_table.py compares them from one
                warm-up per seed. Measured (seed 0, 2-core CPU shared with other jobs, load ~7): warm-up
                ~17 min; RL 278 s for cot, 118 s for none; greedy accuracy 23% -> 45% (cot), 43% (none).
  tiny_self     the same with self-critique: the critic role is the policy (roles.critic.share).
  qwen3-8b      the released Qwen3-8B script (ALGORITHMS.md §3) on one 8-chip host: Qwen3-8B from its
                Hugging Face checkpoint, no warm-up, simple_gt critiques (the script's CRITIQUE_TYPE),
                prompt batch 128, n = 8 (7 + 1), lr 1e-6 (constant), PPO mini-batch 64 prompts (2 per
                step), max prompt 2048, max response 6144, T = 1.0, kl 0, entropy 0.001, no clipping,
                mean-only advantage, constant normaliser L_max = 6144; 30 epochs of ~4k prompts.
                Cannot run on a CPU; validated by tests/test_critique_grpo.py.
  qwen3-8b_self the same with CoT self-critiques (the paper's later "self-critique" setting): the
                critic role is the policy, sampled at the released critic call's T = 0.7, top_p 0.75,
                at most 4096 tokens.

Departures in the real variants (UNVERIFIED against a run): the task is GSM8K's train split (the
paper's OpenR1-Math-4k is not in ../shared/data); evaluation is greedy (the paper validates at
T = 0.6); micro-batches of 16 rows are a memory guess, not the script's dynamic token budget.
"""
import ml_collections

from configs import common

CRITIC_SAMPLING = dict(temperature=0.7, top_p=0.75)   # the released code's critic call (GPT-4o)
PAPER_EPOCHS, PAPER_PROMPTS = 30, 4000                 # the script's TOTAL_EPOCHS; ~4k OpenR1-Math prompts


def get_config(arg: str = "tiny"):
  if arg in ("tiny_self", "qwen3-8b_self"):
    c = get_config(arg[:-len("_self")])
    c.name = "critique_grpo_self"
    c.recipe_args.critique = "cot"
    policy = dict(c.roles.policy) if "policy" in c.roles else dict(init="hf", init_from=c.warmup.checkpoint)
    new = 64 if arg == "tiny_self" else 4096
    c.roles = ml_collections.ConfigDict(dict(policy=policy, critic=dict(share="policy", max_new_tokens=new,
                                                                        **CRITIC_SAMPLING)))
    return c
  if arg not in ("tiny", "qwen3-8b"):
    raise ValueError(f"unknown config variant {arg!r}; expected tiny, tiny_self, qwen3-8b or qwen3-8b_self")
  c = common.base_config("tiny" if arg == "tiny" else "qwen2.5-1.5b")
  c.name = "critique_grpo"
  c.recipe = "critique_grpo"
  c.rl.advantage = "dr_grpo"                   # mean-only over the mixed group (the paper)
  if arg == "tiny":
    c.recipe_args = ml_collections.ConfigDict(dict(template="critique_grpo_arith", critique="cot", k=1))
    c.roles = ml_collections.ConfigDict(dict(
        policy=dict(),
        critic=dict(max_new_tokens=64, **CRITIC_SAMPLING)))   # fitted in the warm-up, never in RL
    # 300 warm-up steps: ~23% greedy accuracy and ~half the prompts persistently failed at the start
    # of RL (seed 0); 200 leave ~9% (RL barely moves), 400 ~59% (30-40 steps saturate near 90%).
    c.warmup.update(steps=300, batch_size=32)
    c.rollout.update(prompts_per_step=16, group_size=8, max_new_tokens=40)
    c.train.update(steps=30, eval_every=10, checkpoint_every=10, eval_prompts=256)
  else:
    c.model = ml_collections.ConfigDict(common.qwen3_model("8b"))
    c.tokenizer.path = c.warmup.checkpoint = "checkpoints/qwen3-8b"
    c.recipe_args = ml_collections.ConfigDict(dict(template="critique_grpo_math", critique="simple_gt", k=1))
    c.rollout.update(prompts_per_step=128, group_size=8, max_prompt_len=2048, max_new_tokens=6144, temperature=1.0)
    c.optim.update(learning_rate=1e-6, warmup_steps=0)
    c.rl.update(num_minibatches=2, micro_batch_size=16)      # mini-batch 64 prompts = 512 rows
    c.train.update(steps=PAPER_EPOCHS * PAPER_PROMPTS // c.rollout.prompts_per_step, eval_every=50,
                   checkpoint_every=50, eval_prompts=1319)
  c.rl.loss.update(aggregation="seq_mean_token_sum_norm", norm_len=c.rollout.max_new_tokens, entropy_coef=0.001,
                   kl_coef=0.0)
  return c
