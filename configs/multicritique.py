"""MultiCritique's RL stage (arXiv 2410.15287; critjax/rl/recipes/multicritique.py): DPO on pairs of
the critic's own critiques, ranked by whether the actor's revision after each is right.

  python -m experiments.train --config=configs/multicritique.py:tiny --workdir=/tmp/multicritique

Variants:
  tiny        configs/critique_rl.py:tiny's actor and critic and warm-up (the critic on the task's
              oracle critiques, standing in for the paper's multi-agent SFT data), then one DPO
              phase: K = 4 critiques per attempt of 128 fresh problems, at most 2 pairs per
              attempt, 40 steps of 16 pairs (beta 0.1, plain DPO), lr 1e-4.
  qwen2.5-7b  the paper's 7B scale on one 8-chip host (critique_rl's qwen2.5-7b roles; DPO lr 5e-7
              is our choice, the paper's RL hyper-parameters are not in the spec). Validated by the
              config tests.
"""
import ml_collections

from configs import critique_rl

VARIANTS = ("tiny", "qwen2.5-7b")


def get_config(arg: str = "tiny"):
  if arg not in VARIANTS:
    raise ValueError(f"unknown config variant {arg!r}; expected one of {VARIANTS}")
  c = critique_rl.get_config(arg)
  c.name, c.recipe = "multicritique", "multicritique"
  c.recipe_args = ml_collections.ConfigDict(dict(
      template=c.recipe_args.template, verdict="step_level", warmup_slips="slip", pool=128, max_pairs=2,
      dpo_steps=40, pairs_per_step=16))
  c.rl.update(advantage="grpo", ppo_epochs=1)
  c.rl.loss.update(kl_coef=0.0, dpo_beta=0.1, rpo_alpha=0.0)
  c.train.update(steps=0)
  if arg == "tiny":
    c.train.update(eval_every=20, checkpoint_every=20, eval_prompts=128)
    return c
  c.recipe_args.update(dict(pool=4096, dpo_steps=200, pairs_per_step=32))
  c.rl.update(num_minibatches=2, micro_batch_size=4)
  c.train.update(eval_every=50, checkpoint_every=50)
  return c
