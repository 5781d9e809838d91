"""Pointwise generative reward model, SPCT (DeepSeek-GRM, arXiv 2504.02495): RFT, then rule-based RL.

  python -m experiments.train --config=configs/grm.py:tiny --workdir=/tmp/grm

Variants:
  tiny        toy addition (critjax/data/grm_toy.py): items of 2 worked solutions with a known
              number of wrong columns each, one best. A supervised warm-up on the toy's oracle
              trajectories (the stand-in for a pretrained model), then rejective fine-tuning
              (3 samples per example of a 128-example pool, kept iff correct, all-correct examples
              dropped), then GRPO with reward +1 / -1, k3 KL beta = 0.08, G = 4.
  tiny_noprinciples  the same without principle generation (the paper's ablation).
  tiny_meta   the meta RM and the scaling curve for a finished tiny GRM run in DIR (recipe grm_meta):
              the GRM frozen, sampled at T = 0.5; the meta RM = its decoder + a scalar head, trained
              with BCE on 4 shuffled GRM samples per item of a 256-item pool (100 steps); then the
              accuracy-versus-k curve (greedy, voting@k, meta-RM voting@k, k = 1..32):
                python -m experiments.train --config=configs/grm.py:tiny_meta --workdir=DIR_meta \
                  --config.roles.policy.init_from=DIR --config.roles.meta_rm.init_from=DIR \
                  --config.tokenizer.path=DIR/tokenizer.model
              (experiments/grm_table.py runs both for every seed). tiny_meta_noprinciples: for a
              tiny_noprinciples run.
  gemma2-27b  the paper's hyper-parameters (ALGORITHMS.md §6): Gemma-2-27B, RFT 900 steps at lr 5e-6
              with batch 1024, RL 900 steps at lr 4e-7 with batch 512, beta = 0.08, G = 4. Its data
              (UltraFeedback, HelpSteer2-Preference, OffsetBias, MATH, internal) is not in
              ../shared/data and critjax has no reward-model training task yet: the recipe stops at
              start-up naming the task it needs. Validated by the config tests.
"""
import ml_collections
from ml_collections.config_dict import placeholder

from configs import common

VARIANTS = ("tiny", "tiny_noprinciples", "tiny_meta", "tiny_meta_noprinciples", "gemma2-27b")


def gemma2_27b_model():
  # Gemma-2-27B config.json: Gemma-2-2B's architecture flags at 27B's sizes
  # (query_pre_attn_scalar = d_model / n_heads = 144)
  return dict(common.gemma2_2b_model(), d_model=4608, n_layers=46, n_heads=32, n_kv_heads=16, head_dim=128,
              d_ff=36_864, query_pre_attn_scalar=144.0)


def get_config(arg: str = "tiny"):
  if arg not in VARIANTS:
    raise ValueError(f"unknown config variant {arg!r}; expected one of {VARIANTS}")
  if arg.startswith("tiny_meta"):
    return meta_config(get_config("tiny" if arg == "tiny_meta" else "tiny_noprinciples"))
  c = common.base_config("tiny" if arg.startswith("tiny") else "gemma2-2b")
  c.name = "grm" if arg != "tiny_noprinciples" else "grm_noprinciples"
  c.recipe = "grm"
  c.rl.loss.update(kl_estimator="k3", kl_coef=0.08, kl_placement="loss")     # no format reward: a larger beta
  c.recipe_args = ml_collections.ConfigDict(dict(
      template="grm_arith", n_responses=2, right_fraction=0.5, principles=arg != "tiny_noprinciples",
      rft_samples=3, rft_pool=128, rft_steps=40, rft_batch_size=16, hinted=False))
  if arg.startswith("tiny"):
    c.task.update(min_digits=2, max_digits=3)
    c.tokenizer.vocab_size = 96
    c.model.vocab_size = 96
    c.warmup.update(steps=150, batch_size=32)
    c.rollout.update(prompts_per_step=16, group_size=4, max_prompt_len=112, max_new_tokens=96)   # 3 digits: prompts <= 106, trajectories <= 85 tokens
    c.optim.learning_rate = 1e-4
    c.train.update(steps=30, eval_every=10, checkpoint_every=10, eval_prompts=128)
    return c
  c.model = ml_collections.ConfigDict(gemma2_27b_model())
  c.tokenizer.path = c.warmup.checkpoint = "checkpoints/gemma-2-27b"
  c.recipe_args.update(dict(template="grm_chat", rft_pool=400_000, rft_steps=900, rft_batch_size=1024, hinted=True))
  c.warmup.update(steps=0, learning_rate=5e-6)          # RFT's learning rate (the SFT optimizer)
  c.rollout.update(prompts_per_step=128, group_size=4, max_prompt_len=4096, max_new_tokens=2048)   # 512 rows
  c.optim.update(learning_rate=4e-7, warmup_steps=10)
  c.mesh.update(data=1, fsdp=16)
  c.rl.update(num_minibatches=4, micro_batch_size=4)
  c.train.update(steps=900, eval_every=100, checkpoint_every=50, eval_prompts=1000)
  return c


def meta_config(grm: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The grm_meta run for a finished run of config `grm`: its GRM frozen (role policy), the meta RM
  its decoder + a scalar head (role meta_rm), both from that run's checkpoint, its tokenizer file.
  The three paths (roles.*.init_from, tokenizer.path) are set on the command line."""
  c = ml_collections.ConfigDict(grm.to_dict())
  c.name = grm.name + "_meta"
  c.recipe = "grm_meta"
  c.roles = ml_collections.ConfigDict(dict(
      policy=dict(init="checkpoint", init_from=placeholder(str), trained=False),
      meta_rm=dict(init="checkpoint", init_from=placeholder(str), init_role="policy",
                   model=dict(grm.model.to_dict(), scalar_head=True))))
  c.tokenizer.update(kind="spm", path=placeholder(str))
  c.recipe_args.update(dict(rft_steps=0, meta_samples=4, meta_pool=256, meta_steps=100, meta_batch_size=16,
                            eval_samples=32))
  c.rollout.temperature = 0.5                  # SPCT's sampling temperature for voting (§6)
  c.warmup.update(steps=0, learning_rate=3e-4)   # the supervised optimizer: the meta RM's
  c.train.update(steps=0, eval_prompts=128)
  return c
