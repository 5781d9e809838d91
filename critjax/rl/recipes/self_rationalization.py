"""Self-rationalization (Trivedi et al., arXiv 2410.05495; ALGORITHMS.md §10): a judge that writes a
rationale and a Likert score is improved by DPO on preference pairs of its own judgments, iterated.

On the toy the judge is the pointwise GRM of recipes/grm.py with one response per item
(recipe_args.n_responses = 1): it re-works the columns (the rationale), marks the response's steps
and writes `Scores: [[s]]`; the gold score is the item's label (critjax/data/grm_toy.py,
10 - 9 w // c for w wrong steps of c). A judgment is right when its score equals the label.

Phases: the warm-up on oracle judgments (the paper's seed judge, SFT on rationale + score data),
then recipe_args.iterations DPO iterations, each an RL-kind phase 'iter{i}' of dpo_steps steps
whose start (1) resets the DPO reference to the judge as it is then (the paper: reference = the
current judge) and (2) builds its pairs (BuildData 'selfrat{i}'): `judgments` = N judgments
sampled per item of `pool` items drawn fresh for the iteration (apart from the RL and held-out
streams), at rollout.temperature.

Pair curation (the paper's exact rule is UNVERIFIED; ours): chosen = a judgment whose score equals
the gold score; rejected = any other judgment, an invalid one (no parsable score) included; per
item the chosen and the rejected are paired in sample order, min(#chosen, #rejected, max_pairs)
pairs; items with no chosen or no rejected judgment give none. Loss 'dpo' (critjax.rl.losses:
beta = rl.loss.dpo_beta, alpha = rl.loss.rpo_alpha, 0 for plain DPO), pairs_per_step pairs per
step read in file order from phase step 0 (cycling), a pair never split across mini-batches.

Evaluation (held-out items): greedy accuracy (score = label) and invalid, as recipes/grm.py; and
the paper's inference-time baselines on `eval_samples` = N judgments sampled per item at
rollout.temperature (the compute of one iteration's N samples per input): self-consistency
(sc_N: the most frequent score, ties to the first seen, an invalid judgment no vote), best-of-N
(bon_N: the judgment with the highest mean token log-prob under the judge, our selector: the spec
names no reward model for it) and the mean single-sample accuracy (sampled_accuracy).
"""
from __future__ import annotations

import dataclasses
import logging

import jax
import numpy as np

from critjax.eval.bench_metrics import best_of_n, maj_at_k
from critjax.rl import pairs
from critjax.rl.grm_scores import parse_scores
from critjax.rl.phases import BuildData, Phase, ResetReference
from critjax.rl.recipes.base import RECIPES, Collected
from critjax.rl.recipes.grm import GRM, GRMArgs
from critjax.rl.recipes.grpo import SINGLE_TURN

SELFRAT_SEED = 4_111_003       # the pairs' items: a stream apart from the RL, warm-up and held-out ones


@dataclasses.dataclass(frozen=True)
class SelfRatArgs(GRMArgs):
  n_responses: int = 1
  iterations: int = 2               # the paper's two
  judgments: int = 8                # N sampled judgments per item
  pool: int = 128                   # items per iteration
  max_pairs: int = 4                # per item
  dpo_steps: int = 20               # per iteration
  pairs_per_step: int = 16
  eval_samples: int = 8             # N of the self-consistency and best-of-N baselines (0: none)

  def __post_init__(self):
    super().__post_init__()
    if self.n_responses != 1:
      raise ValueError(f"config.recipe_args.n_responses={self.n_responses}: a Likert judge scores one response")
    if self.rft_steps:
      raise ValueError(f"config.recipe_args.rft_steps={self.rft_steps}: self-rationalization has no RFT phase")
    if min(self.iterations, self.judgments - 1, self.pool, self.max_pairs, self.dpo_steps, self.pairs_per_step) < 1:
      raise ValueError("config.recipe_args.iterations, pool, max_pairs, dpo_steps and pairs_per_step must be >= 1 "
                       f"and judgments >= 2; got {self.iterations} / {self.pool} / {self.max_pairs} / "
                       f"{self.dpo_steps} / {self.pairs_per_step} / {self.judgments}")


def curate_pairs(texts, label: int) -> list[tuple[str, str]]:
  """(chosen, rejected) pairs from one item's judgments (module docstring)."""
  parsed = [parse_scores(t, 1) for t in texts]
  right = [t for t, p in zip(texts, parsed) if p.valid and p.scores[0] == label]
  wrong = [t for t, p in zip(texts, parsed) if not (p.valid and p.scores[0] == label)]
  return list(zip(right, wrong))


@RECIPES.register("self_rationalization")
class SelfRationalization(GRM):
  args_cls = SelfRatArgs
  loss_kind = "dpo"

  def check_args(self, args: dict):
    super().check_args(args)
    if self.cfg.train.steps:
      raise ValueError(f"config.train.steps={self.cfg.train.steps}: recipe 'self_rationalization' trains "
                       "recipe_args.iterations x dpo_steps steps; set train.steps=0")

  def phases(self) -> list[Phase]:
    a = self.args
    return [Phase(f"iter{i}", a.dpo_steps, args={"data": f"selfrat{i}"},
                  on_start=(ResetReference("policy"), BuildData("policy", f"selfrat{i}")))
            for i in range(1, a.iterations + 1)]

  def references(self) -> list[str]:
    return ["policy"]                 # DPO's reference, whatever rl.loss.kl_coef says

  def rows_per_step(self) -> dict[str, int]:
    return {"policy": 2 * self.args.pairs_per_step}

  def build_data(self, name, params, rng) -> list[dict]:
    if not name.startswith("selfrat"):
      return super().build_data(name, params, rng)
    a, it = self.args, int(name[len("selfrat"):])
    items = [self.item(p) for p in self.task.problems(self.cfg.seed + SELFRAT_SEED + 7919 * it, 0, a.pool)]
    chunk = max(1, self.cfg.rollout.prompts_per_step * self.cfg.rollout.group_size // a.judgments)
    out, right = [], 0
    for i in range(0, len(items), chunk):
      part = items[i:i + chunk]
      texts = self.episode(SINGLE_TURN, params, part, jax.random.fold_in(rng, i), num_samples=a.judgments).texts(0)
      prompts = self.prompt_texts(part)
      for j, item in enumerate(part):
        mine = texts[j * a.judgments:(j + 1) * a.judgments]
        mine_pairs = curate_pairs(mine, item.label)
        right += sum(p.valid and p.scores[0] == item.label for p in (parse_scores(t, 1) for t in mine))
        out += [{"id": item.id, "prompt": prompts[j], "chosen": c, "rejected": r} for c, r in mine_pairs[:a.max_pairs]]
    logging.info("self-rationalization %s: %d pairs from %d items (%d of %d judgments right)", name, len(out),
                 len(items), right, len(items) * a.judgments)
    out, _ = pairs.finalize(f"self_rationalization {name}", out, self.tokenizer, self.capacity(),
                            f"from {a.pool} items x {a.judgments} judgments ({right} right), every item's "
                            "judgments were all right or all wrong")
    return out

  def evaluate(self, params, problems) -> dict:
    out = super().evaluate(params, problems)
    n = self.args.eval_samples
    if not n:
      return out
    items = [self.item(p) for p in problems]
    ep = self.episode(SINGLE_TURN, params, items, jax.random.fold_in(self.eval_rng, 1), num_samples=n)
    seg, lp = np.asarray(ep.rollout.segment) == 0, np.asarray(ep.rollout.logp)
    mean_lp = ((lp * seg).sum(1) / np.maximum(seg.sum(1), 1)).reshape(len(items), n)
    parsed = [parse_scores(t, 1) for t in ep.texts(0)]
    labels = [it.label for it in items for _ in range(n)]
    answers = np.array([str(p.scores[0]) if p.valid else "" for p in parsed], dtype=object).reshape(len(items), n)
    correct = np.array([p.valid and p.scores[0] == y for p, y in zip(parsed, labels)]).reshape(len(items), n)
    out[f"sc_{n}"] = maj_at_k(answers.tolist(), correct, n, lambda a: a or None)
    out[f"bon_{n}"] = best_of_n(mean_lp, correct, n)
    out["sampled_accuracy"] = float(correct.mean())
    return out

  def collect(self, params, problems, rng, refill=None) -> Collected:
    rows = self.data[self.phase.args["data"]]
    part = pairs.step_records(rows, self.phase_step, self.args.pairs_per_step)
    batch = pairs.batch(self.tokenizer, part, self.capacity(), self.pad_id)
    return Collected(batches={"policy": batch}, metrics={"pairs": len(rows)}, group_rows=2)
