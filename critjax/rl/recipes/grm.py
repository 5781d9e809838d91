"""Pointwise generative reward model, SPCT (DeepSeek-GRM, arXiv 2504.02495; ALGORITHMS.md §6).

The trained role is the GRM itself (`policy`): it reads a query and n responses and writes
principles, a critique and one integer score 1-10 per response, ending in `Scores: [[s1, ..., sn]]`
(critjax.rl.grm_scores; a missing, duplicated, wrongly counted or out-of-range block is invalid,
and counted). A trajectory is correct by SPCT's rule: n >= 2, the best response's score strictly
highest; n = 1, the score equals the label.

Phases:
  warmup  (toy only) the oracle trajectories of critjax/data/grm_toy.py, so the tiny model knows
          the format before it is sampled (the paper starts from a pretrained model instead)
  rft     rejective fine-tuning: at the phase's start (BuildData 'grm_rft') N_RFT = recipe_args
          rft_samples trajectories per example of a pool apart from the RL stream, sampled from the
          model as it is then; a trajectory is kept iff correct, and an example whose every sample
          is correct is dropped as too easy. With `hinted`, an example none of whose samples is
          correct is sampled again with the hint line naming the best response, and its correct
          samples are kept; they are trained on the unhinted prompt (the hint is a sampling aid, §6).
          SFT on the kept trajectories, rft_batch_size per step, in file order, cycling.
  rl      rule-based online RL: GRPO with reward +1 for a correct trajectory and -1 otherwise
          (invalid included; no format reward), k3 KL to the RFT model with beta = rl.loss.kl_coef
          (0.08 for 27B), G = rollout.group_size = 4 (configs/grm.py).

Items: each problem of the task's stream is turned into a GRM item deterministically from its id
(GRMToy.example_for with a generator seeded by (seed, crc32(id))), so prompts, rewards, the RFT
set and a resumed run agree without storing items. Response order: the toy draws the best
response's position per item (uniform); the k-sample voting evaluation (critjax.rl.grm_scores)
shuffles per sample. The principle-free ablation is recipe_args.principles=False (the toy's
oracle trajectories drop their 'P:' part).

Evaluation (greedy, held-out items): best-response accuracy (correct trajectories), the invalid
share by reason, and for n >= 2 the share whose parsed scores rank the best first.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import zlib
from typing import Optional

import jax
import numpy as np

from critjax.data.arithmetic import ArithmeticTask
from critjax.data.grm_toy import GRMExample, GRMToy
from critjax.data.tasks import Problem
from critjax.data.templates import check_grm_template
from critjax.rl import episodes, protocols
from critjax.rl.grm_scores import INVALID_REASONS, grm_reward, parse_scores, trajectory_correct, unshuffle_scores
from critjax.rl.phases import BuildData, Phase
from critjax.rl.recipes.base import RECIPES
from critjax.rl.recipes.grpo import GRPO, SINGLE_TURN
from critjax.rl.recipes.multi_turn import parse_args

RFT = "grm_rft"
RFT_SEED = 7_919_311          # the RFT pool's problems: a stream apart from the RL and warm-up prompts
_ORDER_SALT = 0x5EED          # the response orders of sampled judgments (sample_judgments)


@dataclasses.dataclass(frozen=True)
class GRMArgs:
  template: Optional[str] = None     # a GRMTemplate: grm_arith (toy) | grm_chat
  n_responses: int = 2               # responses per item (toy)
  right_fraction: float = 0.5        # share of toy items whose best response is right
  principles: bool = True            # the toy's oracle trajectories write principles (False: the ablation)
  rft_samples: int = 3               # N_RFT
  rft_pool: int = 256                # examples sampled for rejective fine-tuning
  rft_steps: int = 0                 # SFT steps on the kept trajectories (0: no RFT phase)
  rft_batch_size: int = 16
  hinted: bool = False               # hinted sampling for examples with no correct sample

  def __post_init__(self):
    if self.template is None:
      raise ValueError("config.recipe_args.template must name a GRM template (grm_arith, grm_chat)")
    if not 1 <= self.n_responses <= 4:
      raise ValueError(f"config.recipe_args.n_responses={self.n_responses} must be in [1, 4]")
    if self.rft_samples < 1 or self.rft_pool < 1 or self.rft_steps < 0 or self.rft_batch_size < 1:
      raise ValueError("config.recipe_args.rft_samples, rft_pool and rft_batch_size must be >= 1 and "
                       f"rft_steps >= 0, got {self.rft_samples} / {self.rft_pool} / {self.rft_batch_size} / "
                       f"{self.rft_steps}")


@dataclasses.dataclass(frozen=True)
class GRMItem(Problem):
  """A GRM prompt: the query, its responses in shown order, the best index (n >= 2) or the label."""
  responses: tuple = ()
  best: Optional[int] = None
  label: Optional[int] = None
  wrong: tuple = ()


@RECIPES.register("grm")
class GRM(GRPO):
  args_cls = GRMArgs

  def check_args(self, args: dict):
    self.args = parse_args(self.args_cls, dict(args))
    check_grm_template(self.template, "template", self.args.template)
    if self.cfg.task.name != "arithmetic" or self.cfg.task.answer_first:
      raise ValueError(f"recipe 'grm' builds its items from the arithmetic task (task.name='arithmetic', "
                       f"task.answer_first=False); got task {self.cfg.task.name!r}")
    gen = ArithmeticTask(min_digits=self.cfg.task.min_digits, max_digits=self.cfg.task.max_digits)
    self.toy = GRMToy(task=gen, n_responses=self.args.n_responses, right_fraction=self.args.right_fraction)

  def phases(self) -> list[Phase]:
    rl = Phase("rl", self.cfg.train.steps)
    if not self.args.rft_steps:
      return [rl]
    return [Phase("rft", self.args.rft_steps, kind="sft", on_start=(BuildData("policy", RFT),)), rl]

  # --- items ---------------------------------------------------------------------------------------
  def item(self, p: Problem) -> GRMItem:
    if isinstance(p, GRMItem):
      return p
    a, b = map(int, p.problem.split("+"))
    ex: GRMExample = self.toy.example_for(a, b, np.random.default_rng([self.cfg.seed, zlib.crc32(p.id.encode())]))
    return GRMItem(id=p.id, problem=p.problem, answer=p.answer, solution=p.solution, responses=ex.responses,
                   best=ex.best, label=ex.label, wrong=ex.wrong)

  def prompt_texts(self, problems) -> list[str]:
    return [self.template.prompt(it.problem, it.responses) for it in map(self.item, problems)]

  def oracle(self, it: GRMItem) -> str:
    a, b = map(int, it.problem.split("+"))
    return self.toy.oracle_trajectory(a, b, it.responses, principles=self.args.principles)

  # --- rewards and metrics -------------------------------------------------------------------------
  def judge(self, problems, texts):
    """(reward (N,) +-1, invalid (N,) bool, parsed) of N trajectories (SPCT's rule)."""
    items = [self.item(p) for p in problems]
    parsed = [parse_scores(t, len(it.responses)) for it, t in zip(items, texts)]
    reward, invalid = grm_reward(parsed, [it.best for it in items], [it.label for it in items])
    return reward, invalid, parsed

  def rewards(self, problems, texts) -> np.ndarray:
    return self.judge(problems, texts)[0]

  def generation_metrics(self, gens) -> dict:
    probs = [p for g in gens for p in g["problems"]]
    texts = [t for g in gens for t in g["texts"]]
    reward, invalid, parsed = self.judge(probs, texts)
    out = {"grm_correct": float((reward > 0).mean()), "grm_invalid": float(invalid.mean())}
    out.update({f"grm_invalid_{r}": float(np.mean([x.invalid == r for x in parsed])) for r in INVALID_REASONS})
    return out

  def evaluate(self, params, problems) -> dict:
    items = [self.item(p) for p in problems]
    texts = self.episode(SINGLE_TURN, params, items, self.eval_rng, greedy=True).texts(0)
    reward, invalid, parsed = self.judge(items, texts)
    out = {"accuracy": float((reward > 0).mean()), "invalid": float(invalid.mean())}
    out.update({f"invalid_{r}": float(np.mean([x.invalid == r for x in parsed])) for r in INVALID_REASONS})
    return out

  def sample_judgments(self, params, items, k: int, rng, max_rows: int = 512) -> list[list[dict]]:
    """k sampled GRM trajectories per item, the response order shuffled per sample (SPCT, §6):
    sample j shows order perms[j % P] of P = min(k, n!) distinct orders drawn per item (seeded by
    the item), and each order's prompt is sampled ceil(k / P) times from one prefill (the
    sampler's num_samples rows share its KV cache). Per item, k dicts: prompt (as shown), text,
    perm (shown[j] = responses[perm[j]]), scores (original order) or None, valid, correct."""
    n = len(items[0].responses)
    if any(len(it.responses) != n for it in items):
      raise ValueError("sample_judgments: every item needs the same number of responses")
    perms = list(itertools.permutations(range(n)))
    p = min(k, math.factorial(n))
    m = -(-k // p)
    orders = [[perms[i] for i in np.random.default_rng([self.cfg.seed, zlib.crc32(it.id.encode()), _ORDER_SALT])
               .permutation(len(perms))[:p]] for it in items]
    prompts = [self.template.prompt(it.problem, [it.responses[i] for i in perm])
               for it, os_ in zip(items, orders) for perm in os_]
    rep = [it for it in items for _ in range(p)]
    texts, per_call = [], max(1, max_rows // m)
    for i in range(0, len(prompts), per_call):
      ep = protocols.run(self.engine, SINGLE_TURN, rep[i:i + per_call], prompts[i:i + per_call], params,
                         jax.random.fold_in(rng, i), num_samples=m)
      texts += ep.texts(0)
    out = []
    for a, it in enumerate(items):
      row = []
      for j in range(k):
        q, perm = a * p + j % p, orders[a][j % p]
        text = texts[q * m + j // p]
        parsed = unshuffle_scores(parse_scores(text, n), perm)
        row.append(dict(prompt=prompts[q], text=text, perm=list(perm), scores=parsed.scores, valid=parsed.valid,
                        correct=trajectory_correct(parsed, best=it.best, label=it.label)))
      out.append(row)
    return out

  # --- rejective fine-tuning -----------------------------------------------------------------------
  def build_data(self, name, params, rng) -> list[dict]:
    if name != RFT:
      return super().build_data(name, params, rng)
    a, k = self.args, self.args.rft_samples
    items = [self.item(p) for p in self.task.problems(self.cfg.seed + RFT_SEED, 0, a.rft_pool)]
    chunk = max(1, self.cfg.rollout.prompts_per_step * self.cfg.rollout.group_size // k)
    out, counts = [], {"examples": len(items), "too_easy": 0, "none_correct": 0, "hinted_kept": 0}
    for i in range(0, len(items), chunk):
      part = items[i:i + chunk]
      texts = self.episode(SINGLE_TURN, params, part, jax.random.fold_in(rng, i), num_samples=k).texts(0)
      ok = self.judge([it for it in part for _ in range(k)], texts)[0].reshape(len(part), k) > 0
      hint_rows = []
      for j, it in enumerate(part):
        if ok[j].all():
          counts["too_easy"] += 1          # every sample correct: dropped (§6)
          continue
        if not ok[j].any():
          counts["none_correct"] += 1
          hint_rows.append(it)
        out += [self._record(it, texts[j * k + s], hinted=False) for s in range(k) if ok[j, s]]
      if a.hinted and hint_rows and self.template.hint_format and all(it.best is not None for it in hint_rows):
        prompts = [self.template.prompt(it.problem, it.responses, hint_best=it.best) for it in hint_rows]
        ep = protocols.run(self.engine, SINGLE_TURN, hint_rows, prompts, params, jax.random.fold_in(rng, len(items) + i),
                           num_samples=k)
        h_texts = ep.texts(0)
        h_ok = self.judge([it for it in hint_rows for _ in range(k)], h_texts)[0].reshape(len(hint_rows), k) > 0
        for j, it in enumerate(hint_rows):
          kept = [self._record(it, h_texts[j * k + s], hinted=True) for s in range(k) if h_ok[j, s]]
          counts["hinted_kept"] += len(kept)
          out += kept
    logging.info("grm rft: %d trajectories kept from %s", len(out), counts)
    if not out:
      raise ValueError(f"grm: rejective sampling kept no trajectory from {a.rft_pool} examples x {k} samples "
                       f"({counts}); the model never scores a best response strictly highest. Warm it up longer "
                       "or set recipe_args.hinted=True")
    return out

  def _record(self, it: GRMItem, text: str, hinted: bool) -> dict:
    return {"id": it.id, "prompt": self.template.prompt(it.problem, it.responses), "target": text, "hinted": hinted}

  def phase_batches(self, phase, k):
    if phase.name != "rft":
      return super().phase_batches(phase, k)
    rows, n = self.data[RFT], self.args.rft_batch_size
    part = [rows[(k * n + j) % len(rows)] for j in range(n)]
    return {"policy": episodes.sft_batch(self.tokenizer, [r["prompt"] for r in part], [r["target"] for r in part],
                                         self.capacity(), pad_id=self.pad_id)}

  # --- toy warm-up ---------------------------------------------------------------------------------
  def warmup_batches(self, problems) -> dict:
    """The toy's oracle GRM trajectories (principles, the re-worked columns, a mark per response
    step, the scores line) for the GRM items of `problems`."""
    items = [self.item(p) for p in problems]
    return {"policy": episodes.sft_batch(self.tokenizer, self.prompt_texts(items), [self.oracle(it) for it in items],
                                         self.capacity(), pad_id=self.pad_id)}
