"""Critique-RL (arXiv 2510.24320): a critic trained with RL beside a frozen actor, two stages.

  python -m experiments.train --config=configs/critique_rl.py:tiny --workdir=/tmp/critique_rl

Variants:
  tiny            toy arithmetic on a 2-core CPU: actor and critic (two tiny decoders) warmed up
                  together in one supervised phase (the critic on the task's oracle critiques), then
                  Stage I (a third of the steps) and Stage II with the actor frozen.
  tiny_self       the same with self-critique: the critic role is the actor itself (roles.critic.share).
  qwen2.5-7b      the paper's setting on one 8-chip host: an SFT'd Qwen2.5-7B actor (frozen) and critic
                  (Hugging Face checkpoints), lr 5e-7, K = 4 critiques per prompt, batch 64, micro-batch 4,
                  T = 0.7, 2 PPO epochs, clip 0.2, KL 0.01 (k1, in the reward), Stage I 500 steps.
                  Cannot run on a CPU; validated by tests/test_configs.py.
"""
import ml_collections

from configs import common


def get_config(arg: str = "tiny"):
  if arg == "tiny_self":
    c = get_config("tiny")
    c.name = "critique_rl_self"
    c.roles = ml_collections.ConfigDict(dict(actor=dict(), critic=dict(share="actor", temperature=0.7,
                                                                        max_new_tokens=64)))
    return c
  c = common.base_config("tiny" if arg == "tiny" else "qwen2.5-1.5b")
  c.name = "critique_rl"
  c.recipe = "critique_rl"
  # RLOO over the K critiques of one attempt, KL k1 in the per-token reward (OpenRLHF's placement),
  # PPO-clip 0.2, 2 epochs per rollout batch, seq-mean-token-mean (OpenRLHF's masked mean per sequence).
  c.rl.advantage = "rloo"
  c.rl.ppo_epochs = 2
  c.rl.loss.update(kl_estimator="k1", kl_coef=0.01, kl_placement="reward", clip_low=0.2, clip_high=0.2)
  c.recipe_args.update(dict(template="critique_toy" if arg == "tiny" else "critique_math",
                            stage1_fraction=1 / 3, r_help="refine", verdict="step_level", warmup_slips="slip"))
  c.rollout.group_size = 4                  # K critiques per attempt
  if arg == "tiny":
    c.roles = ml_collections.ConfigDict(dict(
        actor=dict(),                         # trained in the warm-up only: the recipe never updates it in RL
        critic=dict(temperature=0.7, max_new_tokens=64)))
    c.warmup.update(steps=400, batch_size=32)
    c.rollout.update(prompts_per_step=16, max_new_tokens=40)
    c.optim.learning_rate = 1e-4
    c.train.update(steps=45, eval_every=15, checkpoint_every=15, eval_prompts=256)
    return c
  if arg != "qwen2.5-7b":
    raise ValueError(f"unknown config variant {arg!r}; expected tiny, tiny_self or qwen2.5-7b")
  c.model = ml_collections.ConfigDict(common.qwen25_7b_model())
  c.warmup.update(steps=0, checkpoint=None)
  c.tokenizer.path = "checkpoints/qwen2.5-7b-critique-rl-actor-sft"
  c.roles = ml_collections.ConfigDict(dict(
      actor=dict(init="hf", init_from="checkpoints/qwen2.5-7b-critique-rl-actor-sft", trained=False),
      critic=dict(init="hf", init_from="checkpoints/qwen2.5-7b-critique-rl-critic-sft", temperature=0.7,
                  max_new_tokens=1536)))
  c.optim.update(learning_rate=5e-7, warmup_steps=1)     # warmup ratio 5e-4 of ~1000 steps
  c.rollout.update(prompts_per_step=16, max_prompt_len=2048, max_new_tokens=1024)   # 16 x K 4 = 64 rows
  c.rl.update(num_minibatches=1, micro_batch_size=4)
  c.recipe_args.stage1_fraction = 0.5                    # Stage I: 500 steps
  c.train.update(steps=1000, eval_every=50, checkpoint_every=50, eval_prompts=1319)
  return c
