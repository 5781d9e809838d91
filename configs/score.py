"""SCoRe (arXiv 2409.12917): two-stage multi-turn self-correction RL.

  python -m experiments.train --config=configs/score.py:tiny --workdir=/tmp/score_tiny

Variants:
  tiny          toy arithmetic on a 2-core CPU: warm-up on the two-attempt format, Stage I then
                Stage II (a third / two thirds of the steps). Paper hyper-parameters alpha = 10,
                beta1 = 0.01; beta2 = 0.1 (MATH value).
  tiny_check    the "answer, then check" toy (BENCHMARKS.md): one-shot answer first, then a worked
                check of it, so a wrong first answer sits beside the evidence that fixes it. 1-2 digit
                operands, a 1500-step warm-up of which 30% are hasty attempts (wrong answer, correct
                check, trained on the check only). The warm-up alone takes ~12 min on a 2-core CPU.
  tiny_discover tiny_check without correction demonstrations in the warm-up: correcting must be
                discovered from the model's own samples (BENCHMARKS.md).
  tiny_premise  tiny_discover with the paper's premise built into the base: asked to correct a right
                answer to a sum with a carry, it usually re-works it with every carry dropped, so it
                breaks right answers under greedy decoding (Delta^{c->i} > Delta^{i->c}, as the
                paper's base on MATH: 15.8 vs 4.6).
  qwen2.5-1.5b  GSM8K/MATH with Table 5's MATH settings (lr 5e-6, batch 512 episodes, T = 1.0,
                alpha 10, beta1 0.01, beta2 0.1), REINFORCE. Cannot run on a CPU; validated by tests.
  gemma2-2b     the same on a Gemma 2 2B shape.
"""
import ml_collections

from ml_collections.config_dict import placeholder

from configs import common


def get_config(arg: str = "tiny"):
  if arg == "tiny_check":
    c = get_config("tiny")
    c.task.update(answer_first=True, check_total=False, min_digits=1, max_digits=2)
    c.warmup.steps = 1500
    c.warmup.data_args.hasty_fraction = 0.3
    return c
  if arg == "tiny_discover":
    # tiny_check without correction demonstrations: the base has only seen second attempts that repeat
    # a right first one, so any correction must be found in the model's own samples, as for the
    # paper's base models, which were never taught to correct themselves.
    c = get_config("tiny_check")
    c.warmup.data_args.correction_fraction = 0.0
    return c
  if arg == "tiny_premise":
    # tiny_discover's bases almost never broke a right answer (Delta^{c->i} 0.5%), so the goal's
    # "Delta^{c->i} below the base's" could not be tested. Here 40% of warm-up episodes revise a right
    # first attempt with a systematic misconception (carries dropped; sums without a carry repeat):
    # on a carry sum that is 4 in 7 of the revisions the base saw, so greedy decoding breaks the right
    # answer, while sampled second attempts keep it often enough for every method to find that out.
    c = get_config("tiny_discover")
    c.warmup.data_args.update(revise_fraction=0.4, revise_error="misconception")
    return c
  c = common.base_config(arg)
  c.name = "score"
  c.recipe = "score"
  c.rl.advantage = "reinforce"            # the paper's estimator: REINFORCE + KL to a fixed reference
  # KL(pi || pi_ref) as a loss term: k2's gradient is the unbiased gradient of that KL on on-policy
  # samples (k1's is zero-mean noise; see critjax/rl/kl.py). beta is per token (beta2 on turn 1 in Stage I).
  c.rl.loss.kl_estimator = "k2"
  c.recipe_args.update(dict(template="toy" if arg == "tiny" else "math", attempts=2, alpha=10.0,
                            beta1=0.01, beta2=0.1, stage1_steps=placeholder(int), shaping=True))
  if arg == "tiny":
    # Toy-task design (stated, not tuned per seed): a fifth of warm-up episodes are correction
    # demonstrations on synthetic slips, so the base model knows what "correct the attempt" means
    # (as a pretrained LLM does) but has only seen errors that are not its own. Without them the
    # tiny base model never revises an attempt and no method gets a learning signal in minutes.
    # (critjax/data/toy_warmup.py: the toy's designed warm-up mixes)
    c.warmup.data = "toy_mix"
    c.warmup.data_args = ml_collections.ConfigDict(dict(correction_fraction=0.2, hasty_fraction=0.0,
                                                        revise_fraction=0.0, revise_error="slip"))
    # Group baseline (RLOO, per turn) instead of the paper's plain REINFORCE: with 64 episodes a step
    # and shaped rewards in [-10, 11], unbaselined REINFORCE degraded both attempts in our runs.
    c.rl.advantage = "rloo"
    c.optim.learning_rate = 1e-4
    c.rollout.update(prompts_per_step=16, group_size=4, max_new_tokens=48)
    c.train.update(steps=90, eval_every=30, checkpoint_every=30)
  else:
    # Table 5 (MATH): lr 5e-6, 3000 steps, batch 512, temperature 1.0
    c.optim.learning_rate = 5e-6
    c.rollout.update(prompts_per_step=128, group_size=4, max_new_tokens=1024)
    c.train.update(steps=3000, eval_every=100, checkpoint_every=100)
  return c
