"""Pairwise generative judge (Writing-Zero's pairwise GenRM, arXiv 2506.00103 §7.1; ALGORITHMS.md §7)
on BRPO's length-hacking toy (critjax/data/pair_toy.py).

The trained role is the judge (`policy`): it reads a query (with the reference answer when its
template is reference-guided, templates.GRM_PAIR_ARITH) and two responses, and writes a critique
and two integer scores, `Scores: [[s1, s2]]` (critjax.rl.grm_scores; the paper's floats in [0, 10]
become SPCT's integers 1-10, so one parser serves both judges). Its RL reward
(critjax.rl.brpo.pairwise_judge_reward): +1 when the judgment is valid and scores the preferred
response strictly higher, 0 when valid but not, -1 when invalid, i.e. preference accuracy plus a
format term; the paper's margin term and position-bias weighting are UNVERIFIED and left out.
Position bias is measured, not rewarded: the evaluation judges every held-out pair in both orders.

Phases:
  warmup  (toy) the oracle judgments of PairToy.judge_item(ties=True) items: decisive pairs and
          ties, fillers independent of correctness (the stand-in for the paper's cold-start SFT)
  rl      GRPO on decisive items (one right response at a uniform position), reward above.

Items: each problem of the task's stream becomes a judge item deterministically from its id
(seeded by (seed, crc32(id))), so prompts, rewards and a resumed run agree without storing items.
No principles are written: on the toy the one principle (match the reference) is the template's.

Evaluation (greedy, held-out decisive items, each in its shown order and swapped): accuracy (the
preferred response scored strictly higher, both orders pooled), accuracy_both_orders (right in both),
invalid, and position_bias's first_preferred (0.5 without bias) and inconsistent.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Optional

import numpy as np

from critjax.data.arithmetic import ArithmeticTask
from critjax.data.pair_toy import PairToy
from critjax.data.tasks import Problem
from critjax.data.templates import GRMTemplate, check_grm_template
from critjax.rl import episodes
from critjax.rl.brpo import pairwise_judge_reward, position_bias
from critjax.rl.grm_scores import parse_scores
from critjax.rl.recipes.base import RECIPES
from critjax.rl.recipes.grpo import GRPO, SINGLE_TURN
from critjax.rl.recipes.multi_turn import parse_args

_WARMUP_SALT = 0x7A1E          # warm-up items (with ties) apart from the RL items of the same problem


@dataclasses.dataclass(frozen=True)
class PairwiseArgs:
  template: Optional[str] = None     # a two-response GRMTemplate: grm_pair_arith (toy, reference-guided)

  def __post_init__(self):
    if self.template is None:
      raise ValueError("config.recipe_args.template must name a GRM template (grm_pair_arith)")


@dataclasses.dataclass(frozen=True)
class PairItem(Problem):
  """A judge prompt: the query, its two responses in shown order, the preferred index (None: a tie)."""
  responses: tuple = ()
  preferred: Optional[int] = None


def judge_prompt(template: GRMTemplate, problem: Problem, responses) -> str:
  """The pairwise judge's prompt over `responses` in the order given; a reference-guided template
  shows the problem's gold answer."""
  return template.prompt(problem.problem, responses, reference=problem.answer if template.reference_format else None)


def toy_task(cfg) -> ArithmeticTask:
  """The arithmetic generator of config.task, refused unless the toy can use it."""
  if cfg.task.name != "arithmetic" or cfg.task.answer_first:
    raise ValueError(f"recipe {cfg.recipe!r} builds its pairs from the arithmetic task (task.name='arithmetic', "
                     f"task.answer_first=False); got task {cfg.task.name!r}")
  if cfg.task.filler_max < 1:
    raise ValueError(f"config.task.filler_max={cfg.task.filler_max}: recipe {cfg.recipe!r} needs filler_max >= 1 "
                     "(the length the toy's preferences can be confounded with)")
  return ArithmeticTask(cfg.task.min_digits, cfg.task.max_digits, filler_max=cfg.task.filler_max)


@RECIPES.register("pairwise_grm")
class PairwiseGRM(GRPO):

  def check_args(self, args: dict):
    self.args = parse_args(PairwiseArgs, dict(args))
    check_grm_template(self.template, "template", self.args.template)
    self.toy = PairToy(toy_task(self.cfg))

  def item(self, p: Problem, ties: bool = False) -> PairItem:
    if isinstance(p, PairItem):
      return p
    a, b = map(int, p.problem.split("+"))
    key = [self.cfg.seed, zlib.crc32(p.id.encode())] + ([_WARMUP_SALT] if ties else [])
    responses, preferred = self.toy.judge_item(a, b, np.random.default_rng(key), ties=ties)
    return PairItem(id=p.id, problem=p.problem, answer=p.answer, solution=p.solution, responses=responses,
                    preferred=preferred)

  def prompt_texts(self, problems) -> list[str]:
    return [judge_prompt(self.template, it, it.responses) for it in map(self.item, problems)]

  def oracle(self, it: PairItem) -> str:
    a, b = map(int, it.problem.split("+"))
    return self.toy.oracle_trajectory(a, b, it.responses)

  def rewards(self, problems, texts) -> np.ndarray:
    items = [self.item(p) for p in problems]
    return pairwise_judge_reward([parse_scores(t, 2) for t in texts], [it.preferred for it in items])

  def generation_metrics(self, gens) -> dict:
    r = np.concatenate([g["rewards"] for g in gens])
    return {"judge_correct": float((r > 0).mean()), "judge_invalid": float((r < 0).mean())}

  def warmup_batches(self, problems) -> dict:
    items = [self.item(p, ties=True) for p in problems]
    return {"policy": episodes.sft_batch(self.tokenizer, self.prompt_texts(items), [self.oracle(it) for it in items],
                                         self.capacity(), pad_id=self.pad_id)}

  def evaluate(self, params, problems) -> dict:
    items = [self.item(p) for p in problems]
    swapped = [dataclasses.replace(it, responses=it.responses[::-1], preferred=1 - it.preferred) for it in items]
    texts = self.episode(SINGLE_TURN, params, items + swapped, self.eval_rng, greedy=True).texts(0)
    parsed = [parse_scores(t, 2) for t in texts]
    reward = pairwise_judge_reward(parsed, [it.preferred for it in items + swapped])
    n = len(items)
    bias = position_bias(parsed[:n], parsed[n:])
    return {"accuracy": float((reward > 0).mean()), "accuracy_both_orders": float(((reward[:n] > 0) & (reward[n:] > 0)).mean()),
            "invalid": float((reward < 0).mean()), "first_preferred": bias["first_preferred"],
            "inconsistent": bias["inconsistent"]}
