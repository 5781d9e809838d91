"""SPC, the self-play critic (arXiv 2504.19162): a sneaky generator and a step critic from one base.

  python -m experiments.train --config=configs/spc.py:tiny --workdir=/tmp/spc
  python -m experiments.spc_table --seeds=0,1,2 --workdir=/tmp/spc_table     (the benchmark)

Variants:
  tiny        toy arithmetic on a 2-core CPU (a step is a column): round 0 = a 300-step supervised
              warm-up of both roles (the critic a copy of the generator's init), then two self-play
              rounds of 10 RL steps, each 8 problems x 4 sneaky rewrites judged by the previous
              round's critic, plus as many judgments of the original steps and 8 SFT critiques in
              the critic's batch.
              Evaluated after each round (train.eval_every = a round). About 4 CPU minutes.
              Expect the critic's accuracy on held-out sneaky steps (eval/sneaky_acc) and on real
              errors (eval/real_error_acc) after rounds 0, 1, 2 (the paper: it rises each round),
              with the games' fool_rate beside it.
  qwen2.5-7b  the paper's critic hyper-parameters (scripts/rl_critic.sh): Qwen2.5-7B-Instruct for both
              roles, lr 2e-6, a batch of 64 critic rows per step, 3 epochs over each step's data,
              max length 4096, 10 warm-up steps per round, bf16, clip 0.2, SFT coefficient 0.15.
              Round 0 is the released SFT critic (judge/SPC-Critic-0) and a sneaky generator SFT'd
              on PRM800K step pairs (not released: checkpoints/spc-sneaky-0). It needs a step-level
              task (PRM800K-style steps with a solver), which critjax does not have yet: the recipe
              stops at start-up naming what the task lacks. Validated by tests/test_spc.py.
"""
import ml_collections

from configs import common


def get_config(arg: str = "tiny"):
  if arg not in ("tiny", "qwen2.5-7b"):
    raise ValueError(f"unknown config variant {arg!r}; expected tiny or qwen2.5-7b")
  c = common.base_config("tiny" if arg == "tiny" else "qwen2.5-1.5b")
  c.name = "spc"
  c.recipe = "spc"
  # Generator: REINFORCE on its raw +-1 game reward (one epoch, so PPO's ratio is 1); critic: the
  # released offline loss, whose eps is clip_low / clip_high. The KL is only logged (released code).
  c.rl.advantage = "reinforce"
  c.rl.loss.update(clip_low=0.2, clip_high=0.2, kl_coef=0.0)
  c.recipe_args.update(dict(template="spc_arith" if arg == "tiny" else "spc_math", rounds=2, completions=4,
                            solver_slip=0.1, validity_margin=0.0, invalid_reward=-1.0, judge_original=True,
                            sft_coef=0.15, sft_rows=8, loss_norm="means", verdict="answer_tag"))
  if arg == "tiny":
    c.roles = ml_collections.ConfigDict(dict(
        generator=dict(max_new_tokens=16),
        critic=dict(init="copy", init_from="generator", max_new_tokens=28)))   # one base model
    # A larger toy vocabulary than the other toys' 64: the tags and prompt words get pieces of their
    # own (a 3-digit critic prompt is 50 tokens, its critique 22).
    c.tokenizer.vocab_size = 96
    c.model.vocab_size = 96
    c.warmup.update(steps=300, batch_size=32)
    c.rollout.update(prompts_per_step=8, group_size=4, max_prompt_len=72, max_new_tokens=28)
    c.optim.learning_rate = 1e-4
    c.train.update(steps=20, eval_every=10, checkpoint_every=10, eval_prompts=64)
    return c
  c.model = ml_collections.ConfigDict(common.qwen25_7b_model())
  c.warmup.update(steps=0, checkpoint=None)
  c.tokenizer.path = "checkpoints/qwen2.5-7b-instruct"
  c.roles = ml_collections.ConfigDict(dict(
      generator=dict(init="hf", init_from="checkpoints/spc-sneaky-0", max_new_tokens=1024),
      critic=dict(init="hf", init_from="checkpoints/SPC-Critic-0", max_new_tokens=1024)))
  c.rollout.update(prompts_per_step=12, group_size=2, max_prompt_len=3072, temperature=1.0)   # 3072 + 1024 = 4096
  c.recipe_args.sft_rows = 16                       # critic rows: 12 x 2 games + 24 originals + 16 SFT = 64
  c.rl.update(ppo_epochs=3, num_minibatches=1, micro_batch_size=4)
  c.optim.update(learning_rate=2e-6, warmup_steps=10)
  c.train.update(steps=200, eval_every=100, checkpoint_every=50, eval_prompts=500)
  return c
