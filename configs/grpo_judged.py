"""GRPO with a generative judge in the RL loop (critjax/rl/recipes/judged.py): the policy's reward is a
frozen pointwise GRM's voted score over k = 4 samples; the verifier is logged beside it.

  # a pointwise GRM (one response per item) on the toy, then the policy judged by it:
  python -m experiments.train --config=configs/grm.py:tiny --config.recipe_args.n_responses=1 --workdir=/tmp/grm1
  python -m experiments.train --config=configs/grpo_judged.py:tiny --workdir=/tmp/judged \\
    --config.roles.judge.init_from=/tmp/grm1 --config.tokenizer.path=/tmp/grm1/tokenizer.model

Variants:
  tiny   toy arithmetic; the policy warmed up on worked solutions, then GRPO (G = 8) on the judge's
         reward; the judge (the GRM run's policy, same tiny architecture) frozen, sampled at T = 0.5.
         `--config.roles.judge.trained=True` trains the judge in the same run and the same jitted
         update (its k = 4 samples per completion a GRPO group; reward in recipes/judged.py).
"""
import ml_collections
from ml_collections.config_dict import placeholder

from configs import common
from configs import grm as grm_configs


def get_config(arg: str = "tiny"):
  if arg != "tiny":
    raise ValueError(f"unknown config variant {arg!r}; expected 'tiny'")
  c = common.base_config("tiny")
  c.name = "grpo_judged"
  c.recipe = "grpo_judged"
  g = grm_configs.get_config("tiny")
  c.model = ml_collections.ConfigDict(g.model.to_dict())         # one vocabulary with the judge
  c.tokenizer = ml_collections.ConfigDict(g.tokenizer.to_dict())
  c.tokenizer.update(kind="spm", path=placeholder(str))          # the judge's run's tokenizer file
  c.rollout.update(max_prompt_len=112, max_new_tokens=48)        # the judge's prompt holds a completion
  c.recipe_args = ml_collections.ConfigDict(dict(judge_template="grm_arith", judge_samples=4))
  c.roles = ml_collections.ConfigDict(dict(
      policy=dict(),
      judge=dict(init="checkpoint", init_from=placeholder(str), init_role="policy", trained=False,
                 temperature=0.5, max_new_tokens=96)))
  c.optim.learning_rate = 1e-4
  c.train.update(steps=30, eval_every=10, checkpoint_every=10, eval_prompts=128)
  return c
