"""BRPO with a pairwise generative judge (Writing-Zero, arXiv 2506.00103; critjax/rl/recipes/brpo.py)
and its baseline, GRPO against a scalar reward model, on the length-hacking toy
(critjax/data/pair_toy.py). Five runs, in order (experiments/brpo_table.py runs them per seed):

  python -m experiments.train --config=configs/brpo.py:tiny_judge --workdir=J     # the pairwise judge
  python -m experiments.train --config=configs/brpo.py:tiny_sft --workdir=S \\
      --config.tokenizer.path=J/tokenizer.model                                    # the policy's SFT start
  python -m experiments.train --config=configs/brpo.py:tiny_rm --workdir=R \\
      --config.tokenizer.path=J/tokenizer.model --config.roles.policy.init_from=S  # the scalar RM (Bradley-Terry)
  python -m experiments.train --config=configs/brpo.py:tiny --workdir=B \\
      --config.tokenizer.path=J/tokenizer.model --config.roles.policy.init_from=S --config.roles.judge.init_from=J
  python -m experiments.train --config=configs/brpo.py:tiny_grpo_rm --workdir=G \\
      --config.tokenizer.path=J/tokenizer.model --config.roles.policy.init_from=S --config.roles.rm.init_from=R

Variants:
  tiny_judge    recipe pairwise_grm: the reference-guided pairwise judge (template grm_pair_arith),
                a supervised warm-up on its oracle judgments, then 20 GRPO steps on its own reward
                (preference accuracy + format). Trains the tokenizer every other run reads.
  tiny_sft      recipe grpo with no RL steps: the policy's warm-up on worked solutions that end in
                0..4 filler chunks (task.filler_max = 4), the start both arms share.
  tiny_rm       recipe reward_model: the SFT policy + a scalar head, 100 Bradley-Terry steps on
                confounded pairs (the preferred answer is right and longer).
  tiny          recipe brpo: the SFT policy, the frozen judge, G = 8, 30 steps.
  tiny_grpo_rm  recipe grpo_rm: the SFT policy, the frozen scalar RM, the same G, steps and optimizer.
  qwen3-8b      BRPO's shapes for a real model (ALGORITHMS.md §7: G = 16, the 0.6 filter): a
                Qwen3-8B policy and a Qwen3-8B pairwise judge checkpoint (roles.judge.init_from; the
                paper's is a Qwen3-32B GenRM), judge template grm_chat. Writing-Zero's writing data is
                not in ../shared/data: the task is GSM8K as a stand-in. Validated by the config tests.
"""
import ml_collections
from ml_collections.config_dict import placeholder

from configs import common

VARIANTS = ("tiny_judge", "tiny_sft", "tiny_rm", "tiny", "tiny_grpo_rm", "qwen3-8b")
FILLER_MAX = 4


def _tiny_base(name: str, recipe: str):
  c = common.base_config("tiny")
  c.name, c.recipe = name, recipe
  c.task.update(min_digits=2, max_digits=3, filler_max=FILLER_MAX)
  c.model.vocab_size = c.tokenizer.vocab_size = 96
  # The warm-up's solutions are <= 49 tokens; 64 leaves the policy room to grow. The judge's prompt
  # holds two completions after the query and the reference (the recipe checks: 32 + 2 x 64), with
  # room for a re-encoded completion to come out a few tokens longer than it was sampled.
  c.rollout.update(prompts_per_step=16, group_size=8, max_prompt_len=176, max_new_tokens=64)
  c.optim.learning_rate = 1e-4
  c.train.update(steps=30, eval_every=10, checkpoint_every=10, eval_prompts=128)
  if recipe != "pairwise_grm":                        # the judge run's tokenizer, one vocabulary for all
    c.tokenizer.kind = "spm"                          # path: a placeholder, set on the command line
  return c


def _from_sft(c):
  c.roles.policy = ml_collections.ConfigDict(dict(init="checkpoint", init_from=placeholder(str)))
  c.warmup.steps = 0
  return c


def get_config(arg: str = "tiny"):
  if arg not in VARIANTS:
    raise ValueError(f"unknown config variant {arg!r}; expected one of {VARIANTS}")
  if arg == "tiny_judge":
    c = _tiny_base("brpo_judge", "pairwise_grm")
    c.recipe_args = ml_collections.ConfigDict(dict(template="grm_pair_arith"))
    c.rollout.update(group_size=4, max_new_tokens=48)     # ' R1: A: 625 ok ; R2: A: 635 bad ; Scores: [[10, 1]]' <= 38
    c.warmup.update(steps=300, batch_size=32)
    c.train.update(steps=20)
    return c
  if arg == "tiny_sft":
    c = _tiny_base("brpo_sft", "grpo")
    c.warmup.update(steps=300, batch_size=32)
    c.train.update(steps=0)
    return c
  if arg == "tiny_rm":
    c = _from_sft(_tiny_base("brpo_rm", "reward_model"))
    c.roles.policy.model = ml_collections.ConfigDict(dict(c.model.to_dict(), scalar_head=True))
    c.recipe_args = ml_collections.ConfigDict(dict(rm_steps=100, rm_batch_pairs=16))
    c.warmup.learning_rate = 3e-4                        # the supervised optimizer: the RM's
    c.train.update(steps=0)
    return c
  if arg == "tiny":
    c = _from_sft(_tiny_base("brpo", "brpo"))
    c.recipe_args = ml_collections.ConfigDict(dict(judge_template="grm_pair_arith", drop_threshold=0.6))
    c.roles.judge = ml_collections.ConfigDict(dict(init="checkpoint", init_from=placeholder(str), init_role="policy",
                                                   trained=False, temperature=0.5, max_new_tokens=48))
    return c
  if arg == "tiny_grpo_rm":
    c = _from_sft(_tiny_base("brpo_grpo_rm", "grpo_rm"))
    c.roles.rm = ml_collections.ConfigDict(dict(init="checkpoint", init_from=placeholder(str), init_role="policy",
                                                trained=False, model=dict(c.model.to_dict(), scalar_head=True)))
    return c
  c = common.base_config("qwen2.5-1.5b")                # GSM8K, HF tokenizer, chat template, fsdp 8
  c.name, c.recipe = "brpo_qwen3_8b", "brpo"
  c.model = ml_collections.ConfigDict(common.qwen3_model("8b"))
  c.tokenizer.path = c.warmup.checkpoint = "checkpoints/qwen3-8b"
  c.recipe_args = ml_collections.ConfigDict(dict(judge_template="grm_chat", drop_threshold=0.6))
  c.roles = ml_collections.ConfigDict(dict(
      policy=dict(init="hf", init_from="checkpoints/qwen3-8b"),
      judge=dict(init="checkpoint", init_from="checkpoints/qwen3-8b-pairwise-genrm", init_role="policy",
                 trained=False, temperature=0.6, max_new_tokens=1024)))
  c.rollout.update(prompts_per_step=32, group_size=16, max_prompt_len=3072, max_new_tokens=1024)
  c.rl.update(num_minibatches=4, micro_batch_size=4)
  c.optim.update(learning_rate=1e-6, warmup_steps=10)
  c.train.update(steps=500, eval_every=50, checkpoint_every=50)
  return c
