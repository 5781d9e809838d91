"""Critique Reinforcement Learning, CRL (Critique-Coder, arXiv 2509.22824; ALGORITHMS.md §5).

GRPO over a weighted mixture of two tasks in one batch: of every step's B prompts, a share
(`recipe_args.mixture["critique"]`, the paper's 20%) is replaced by critique items. An item is a
question and a candidate solution; the policy writes a critique ending in \\conclusion{True|False},
and its reward is 1 when the verdict equals whether the candidate is right (the task's verifier:
the answer checks, or all tests pass), 0 when it does not or the verdict is missing (the paper's
r_CRL). Solve items keep the task's own reward: for code (configs/crl.py qwen3,
task.code_reward="fraction") the paper's share of test cases passed, while a candidate is labelled
right only when that share is 1 (every test passes). Everything else is the GRPO recipe with the
paper's settings (configs/crl.py: clip 0.2 / 0.3, token-mean, dynamic sampling, overlong masking,
no KL), so every group, critique groups included, is filtered and advantaged the same way.

Critique items (the paper's rStar-Critique-Data: candidates sampled from a model and labelled by
test execution) are built once per run when RL starts (a BuildData hook, critjax/train/offline_data.py):
one candidate per problem sampled from the policy as it is then, for `pool_size` problems of a
stream apart from the RL prompts, and for the held-out problems (the critique evaluation). They are
written to workdir/data/, so a resumed run reads the same items. A generation batch whose solve
prompts start at stream position i takes items pool[(i + j) mod pool_size], j < the critique
count: the position is the checkpointed data index, so a resume draws the same items.

Evaluation: the policy's greedy accuracy on the held-out problems (`accuracy`) and its greedy
verdict accuracy on the held-out critique items (`critique_acc`, by label and with the missing
share), the two numbers of the paper's claim (a solver at least as good, a much better critic).

Toy warm-up: the policy learns the solve format from worked solutions and, on a `warmup_critique`
share of the rows, the critique format from the task's oracle critiques (every column re-worked and
judged) of right solutions and task-made slips, the verdict written as \\conclusion{...}. Both arms
of the table (mixture 1.0 / 0.0 and 0.8 / 0.2) start from that one warm-up.
"""
from __future__ import annotations

import dataclasses
import logging
import zlib
from typing import Optional

import jax
import numpy as np

from critjax.data.tasks import Problem
from critjax.rl import episodes
from critjax.rl.phases import BuildData, Phase
from critjax.rl.recipes.base import RECIPES
from critjax.rl.recipes.grpo import GRPO, SINGLE_TURN
from critjax.rl.recipes.multi_turn import parse_args
from critjax.rl.verdicts import VERDICTS

TASKS = ("solve", "critique")
POOL_SEED = 15_485_863          # critique items' problems: a stream apart from the RL and warm-up prompts
POOL, EVAL = "crl_pool", "crl_eval"


@dataclasses.dataclass(frozen=True)
class CRLArgs:
  template: Optional[str] = None
  mixture: dict = dataclasses.field(default_factory=lambda: {"solve": 0.8, "critique": 0.2})
  verdict: str = "conclusion"         # a parser in critjax.rl.verdicts
  pool_size: int = 512                # critique items sampled when RL starts
  eval_items: int = 0                 # held-out critique items (0: one per evaluation problem)
  warmup_critique: float = 0.2        # share of warm-up rows that are oracle critiques (toy)

  def __post_init__(self):
    mix = dict(self.mixture)
    unknown = sorted(set(mix) - set(TASKS))
    if unknown:
      raise ValueError(f"config.recipe_args.mixture names unknown task(s) {unknown}; known: {list(TASKS)}")
    if any(not (isinstance(w, (int, float)) and w >= 0) for w in mix.values()):
      raise ValueError(f"config.recipe_args.mixture weights must be numbers >= 0, got {mix}")
    if abs(sum(mix.values()) - 1.0) > 1e-6:
      raise ValueError(f"config.recipe_args.mixture weights must sum to 1, got {mix} (sum {sum(mix.values()):g})")
    if self.verdict not in VERDICTS:
      raise ValueError(f"config.recipe_args.verdict={self.verdict!r}; expected one of {VERDICTS.names()}")
    if self.pool_size < 1 or self.eval_items < 0:
      raise ValueError(f"config.recipe_args.pool_size must be >= 1 and eval_items >= 0, got "
                       f"{self.pool_size} / {self.eval_items}")
    if not 0.0 <= self.warmup_critique <= 1.0:
      raise ValueError(f"config.recipe_args.warmup_critique must be in [0, 1], got {self.warmup_critique}")


@dataclasses.dataclass(frozen=True)
class CritiqueItem(Problem):
  """A critique prompt: the problem, a candidate solution and whether the candidate is right."""
  candidate: str = ""
  label: Optional[bool] = None


def item_from_record(r: dict) -> CritiqueItem:
  """A dataset record -> an item; a record without a boolean label is refused, naming it."""
  if not isinstance(r.get("label"), bool):
    raise ValueError(f"critique item {r.get('id')!r}: 'label' must be true or false (whether the candidate is "
                     f"right), got {r.get('label')!r}")
  return CritiqueItem(id=r["id"], problem=r["problem"], answer=r["answer"], solution=r.get("solution"),
                      candidate=r["candidate"], label=r["label"])


@RECIPES.register("crl")
class CRL(GRPO):

  def check_args(self, args: dict):
    args = dict(args)
    if "mixture" in args:
      args["mixture"] = dict(args["mixture"])
    self.args = parse_args(CRLArgs, args)
    self.parse = VERDICTS.get(self.args.verdict)
    if not hasattr(self.template, "critique_item_prompt"):
      raise ValueError(f"recipe 'crl' needs a critique-item template (crl_arith, crl_math, crl_code); "
                       f"config.recipe_args.template={self.template.name!r} is not one")
    b = self.cfg.rollout.prompts_per_step
    self.n_critique = int(round(b * self.args.mixture.get("critique", 0.0)))
    if self.args.mixture.get("critique", 0.0) > 0 and self.n_critique == 0:
      raise ValueError(f"config.recipe_args.mixture critique weight {self.args.mixture['critique']} of "
                       f"rollout.prompts_per_step={b} rounds to no critique prompt")
    self.items: dict[str, list[CritiqueItem]] = {}

  def phases(self) -> list[Phase]:
    # The items are sampled from the policy as RL starts (after the warm-up), once per run.
    return [Phase("rl", self.cfg.train.steps, on_start=(BuildData("policy", POOL), BuildData("policy", EVAL)))]

  # --- critique items ----------------------------------------------------------------------------
  def prompt_texts(self, problems) -> list[str]:
    return [self.template.critique_item_prompt(p.problem, p.candidate) if isinstance(p, CritiqueItem)
            else self.template.first_prompt(p.problem) for p in problems]

  def build_data(self, name, params, rng) -> list[dict]:
    if name == POOL:
      problems = self.task.problems(self.cfg.seed + POOL_SEED, 0, self.args.pool_size)
    elif name == EVAL:
      problems = self.task.eval_problems(self.cfg.seed, self.cfg.train.eval_prompts)
      problems = problems[:self.args.eval_items] if self.args.eval_items else problems
    else:
      return super().build_data(name, params, rng)
    chunk = self.cfg.rollout.prompts_per_step * self.cfg.rollout.group_size
    out = []
    for i in range(0, len(problems), chunk):    # the RL batch's row count: a shape the sampler already has
      part = problems[i:i + chunk]
      texts = self.episode(SINGLE_TURN, params, part, jax.random.fold_in(rng, i)).texts(0)
      labels = self.task.score(part, texts) >= 1.0        # right = every test passes / the answer verifies
      # (a fractional code reward, task.code_reward="fraction", is 1 only when every test passes)
      out += [{"id": f"{name}:{p.id}", "problem": p.problem, "answer": p.answer, "solution": p.solution,
               "candidate": t, "label": bool(c)} for p, t, c in zip(part, texts, labels)]
    # A candidate whose critique prompt is longer than rollout.max_prompt_len cannot be asked about:
    # it is left out of the items, and counted.
    fits = [len(self.encode_prompt(self.template.critique_item_prompt(r["problem"], r["candidate"])))
            <= self.cfg.rollout.max_prompt_len for r in out]
    if not any(fits):
      raise ValueError(f"crl: no critique prompt of dataset {name!r} fits rollout.max_prompt_len="
                       f"{self.cfg.rollout.max_prompt_len} (question + candidate + instruction); raise it")
    if not all(fits):
      logging.warning("crl: %d of %d candidates of %s left out: their critique prompts exceed "
                      "rollout.max_prompt_len=%d", len(fits) - sum(fits), len(fits), name,
                      self.cfg.rollout.max_prompt_len)
    return [r for r, f in zip(out, fits) if f]

  def load_data(self, name, records) -> None:
    super().load_data(name, records)
    self.items[name] = [item_from_record(r) for r in records]

  def _mixed(self, problems: list, position: int) -> list:
    """A generation batch: the first B - C problems to solve, then C critique items from `position`."""
    if not self.n_critique:
      return list(problems)
    pool = self.items.get(POOL)
    if not pool:
      raise ValueError("crl: no critique items loaded (the RL phase's BuildData hook did not run)")
    c = self.n_critique
    return list(problems[:len(problems) - c]) + [pool[(position + j) % len(pool)] for j in range(c)]

  def collect(self, params, problems, rng, refill=None):
    b, start = len(problems), self.data_index
    batches = [0]

    def refill_mixed(n):
      batches[0] += 1
      return self._mixed(refill(n), start + batches[0] * b)
    return super().collect(params, self._mixed(problems, start), rng,
                           refill=None if refill is None else refill_mixed)

  # --- rewards and metrics -----------------------------------------------------------------------
  def rewards(self, problems, texts) -> np.ndarray:
    out = np.zeros(len(problems), np.float32)
    crit = np.array([isinstance(p, CritiqueItem) for p in problems])
    solve = [i for i in range(len(problems)) if not crit[i]]
    if solve:
      out[solve] = self.task.score([problems[i] for i in solve], [texts[i] for i in solve])
    for i in np.nonzero(crit)[0]:       # r_CRL: 1 iff the verdict equals the label; missing -> 0
      v = self.parse(texts[i]).final
      out[i] = float(v is not None and v == problems[i].label)
    return out

  def generation_metrics(self, gens) -> dict:
    probs = [p for g in gens for p in g["problems"]]
    texts = [t for g in gens for t in g["texts"]]
    rewards = np.concatenate([g["rewards"] for g in gens])
    crit = np.array([isinstance(p, CritiqueItem) for p in probs])
    out = {"critique_share": float(crit.mean())}
    if (~crit).any():     # right: reward 1 (all tests pass, also under task.code_reward="fraction")
      out["solve_accuracy"] = float((rewards[~crit] >= 1.0).mean())
      if self.cfg.task.code_reward == "fraction":
        out["solve_reward"] = float(rewards[~crit].mean())    # the mean share of test cases passed
    if crit.any():
      missing = [self.parse(t).final is None for t, c in zip(texts, crit) if c]
      out.update(critique_reward=float(rewards[crit].mean()), verdict_missing=float(np.mean(missing)))
    return out

  # --- evaluation --------------------------------------------------------------------------------
  def evaluate(self, params, problems) -> dict:
    out = super().evaluate(params, problems)
    items = self.items.get(EVAL)
    if not items:          # a warm-up-only run: the items are built when RL starts
      return out
    texts = self.episode(SINGLE_TURN, params, items, self.eval_rng, greedy=True).texts(0)
    v = np.array([self.parse(t).final for t in texts], dtype=object)
    label = np.array([it.label for it in items])
    right = np.array([x is not None and x == y for x, y in zip(v, label)])
    out.update(critique_acc=float(right.mean()), verdict_missing=float(np.mean([x is None for x in v])),
               critique_acc_right=float(right[label].mean()) if label.any() else float("nan"),
               critique_acc_wrong=float(right[~label].mean()) if (~label).any() else float("nan"),
               candidates_right=float(label.mean()))
    # The mean of the two per-label accuracies: a critic that always says False scores 50 here,
    # whatever the share of wrong candidates (its plain accuracy is that share).
    out["critique_balanced_acc"] = float(np.nanmean([out["critique_acc_right"], out["critique_acc_wrong"]]))
    return out

  # --- supervised warm-up ------------------------------------------------------------------------
  def warmup_batches(self, problems) -> dict:
    """Worked solutions, with a `warmup_critique` share of rows replaced by an oracle critique of a
    right solution or (half of them) a task-made slip, ending in \\conclusion{True|False}."""
    rng = np.random.default_rng([self.cfg.seed, zlib.crc32(problems[0].id.encode())])
    n_crit = int(round(len(problems) * self.args.warmup_critique))
    prompts, targets = [], []
    for i, p in enumerate(problems):
      if p.solution is None:
        raise ValueError(f"warm-up needs worked solutions; problem {p.id} has none")
      if i < len(problems) - n_crit:
        prompts.append(self.template.first_prompt(p.problem))
        targets.append(p.solution)
        continue
      cand = p.solution if rng.random() < 0.5 else (self.task.flawed_solution(p, rng) or p.solution)
      critique = self.task.oracle_critique(p, cand)
      if critique is None:
        raise ValueError(f"crl warm-up critiques need Task.oracle_critique; task {self.cfg.task.name!r} has none "
                         f"(set recipe_args.warmup_critique=0)")
      prompts.append(self.template.critique_item_prompt(p.problem, cand))
      targets.append(conclusion_critique(critique, self.task.score([p], [cand])[0] >= 1.0))
    cap = self.capacity()
    return {"policy": episodes.sft_batch(self.tokenizer, prompts, targets, cap, pad_id=self.pad_id)}


def conclusion_critique(oracle: str, right: bool) -> str:
  """The toy oracle critique (' col Correct ; ... ; Final Wrong') with its verdict as CRL writes it."""
  body = oracle.rsplit(";", 1)[0].rstrip() if "Final" in oracle.rsplit(";", 1)[-1] else oracle.rstrip()
  return f"{body} ; \\conclusion{{{'True' if right else 'False'}}}"

