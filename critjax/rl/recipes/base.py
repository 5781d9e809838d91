"""What a recipe is: the pieces of one method that differ from the shared loop.

A recipe builds episodes for a batch of problems (rollout protocol, rewards, advantages) and says
how to evaluate. The loop (critjax/train/loop.py) owns everything else: model, sharding, reference
log-probs, the jitted update, checkpoints and logging. `phases` lets a method run stages in order
(SCoRe stage I then II) inside one run; each phase is a range of global steps with its own args.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

from critjax.data.tasks import Problem
from critjax.registry import Registry
from critjax.rl import episodes
from critjax.sampling.sampler import Sampler


@dataclasses.dataclass
class Collected:
  batch: dict                 # per-token arrays for the policy update (see episodes.policy_batch)
  metrics: dict               # host-side scalars (reward_mean, accuracy, response_length, ...)


@dataclasses.dataclass(frozen=True)
class Phase:
  name: str
  steps: int
  args: dict = dataclasses.field(default_factory=dict)


class Recipe:
  """Base class; subclasses implement `collect` and `evaluate`."""
  turns: int = 1              # generated turns per episode (sizes the sampler's capacity)
  loss_kind: str = "policy"   # 'policy' (policy-gradient batch) | 'nll' (filtered SFT batch)

  def __init__(self, cfg, task, tokenizer, template, model_cfg):
    self.cfg, self.task, self.tokenizer, self.template = cfg, task, tokenizer, template
    self.model_cfg = model_cfg
    self.phase = Phase("rl", cfg.train.steps)
    self.chat = None
    stops: tuple = ()
    if cfg.tokenizer.chat_template:  # episodes rendered as chat turns of the model's own template
      from critjax.data.chat import ChatTemplate
      from critjax.data.tokenizers import stop_ids
      self.chat = ChatTemplate.from_tokenizer_config(cfg.tokenizer.path)
      stops = tuple(i for i in stop_ids(tokenizer) if i != tokenizer.eos_id)
    self.check_args(cfg.recipe_args)
    cap = self.capacity()
    eos = tokenizer.eos_id
    # Many HF tokenizers define no pad token; padding is always masked, so EOS serves.
    self.pad_id = tokenizer.pad_id if tokenizer.pad_id is not None else eos
    self.sampler = Sampler(model_cfg, cfg.sampling(eos, self.pad_id, extra_stop_ids=stops), cap)
    self.greedy_sampler = Sampler(model_cfg, cfg.sampling(eos, self.pad_id, greedy=True, extra_stop_ids=stops), cap)
    self.eval_rng = jax.random.PRNGKey(0)  # unused by greedy decoding; fixed for reproducibility

  # --- configuration -----------------------------------------------------------------------------
  def check_args(self, args: dict):
    extra = sorted(set(args) - {"template"})
    if extra:
      raise ValueError(f"recipe {self.cfg.recipe!r} takes only recipe_args.template, got {extra}")

  def capacity(self) -> int:
    r = self.cfg.rollout
    return r.max_prompt_len + self.turns * (r.max_new_tokens + self.instruction_budget())

  def instruction_budget(self) -> int:
    return 0

  def phases(self) -> list[Phase]:
    return [Phase("rl", self.cfg.train.steps)]

  def set_phase(self, phase: Phase):
    self.phase = phase

  def needs_reference(self) -> bool:
    """Keep a frozen copy of the starting model and score every batch under it (KL terms)."""
    return self.cfg.rl.loss.kl_coef > 0

  def samples_from_reference(self) -> bool:
    """Roll out with the frozen starting model instead of the policy (offline-data baselines)."""
    return False

  # --- rollouts ----------------------------------------------------------------------------------
  def prompt_texts(self, problems: Sequence[Problem]) -> list[str]:
    return [self.template.first_prompt(p.problem) for p in problems]

  def encode_prompt(self, text: str) -> list[int]:
    """Token ids of a first-turn prompt; with a chat template, the user turn plus the generation prompt."""
    if self.chat is None:
      return self.tokenizer.encode(text)
    from critjax.data.chat import tokenize_chat
    return tokenize_chat(self.tokenizer, self.chat, [{"role": "user", "content": text}],
                         add_generation_prompt=True).ids.tolist()

  def context_ids(self, text: str) -> list[int]:
    """Ids appended between generated turns: with a chat template, the end of the assistant turn,
    a user turn holding `text` and the next generation prompt (the template's own glue)."""
    if self.chat is None:
      return self.tokenizer.encode(text)
    from critjax.data.chat import tokenize_chat
    msgs = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}, {"role": "user", "content": text}]
    toks = tokenize_chat(self.tokenizer, self.chat, msgs, add_generation_prompt=True)
    last_generated = int(np.nonzero(toks.assistant_turn == 0)[0][-1])   # the turn's stop token
    return toks.ids[last_generated + 1:].tolist()

  def start(self, params, problems: Sequence[Problem], num_samples: int, sampler: Optional[Sampler] = None):
    """Prefill the prompts of `problems` (with `sampler`'s capacity; default the training sampler)."""
    ids, lens = episodes.encode_prompts(self.encode_prompt, self.prompt_texts(problems), self.cfg.rollout.max_prompt_len,
                                        [p.id for p in problems], pad_id=self.pad_id)
    return (sampler or self.sampler).start(params, ids, lens, num_samples=num_samples)

  def collect(self, params, problems: Sequence[Problem], rng,
              refill: Optional[Callable[[int], list[Problem]]] = None) -> Collected:
    """Episodes for `problems` -> the update's batch. `refill(n)`, when given, takes n more problems
    from the run's stream (for methods that replace prompts they drop, e.g. DAPO dynamic sampling)."""
    raise NotImplementedError

  def evaluate(self, params, problems: Sequence[Problem]) -> dict:
    raise NotImplementedError

  # --- supervised warm-up ------------------------------------------------------------------------
  def warmup_batch(self, problems: Sequence[Problem]) -> dict:
    """Prompt + correct worked solution: fits the base model to the task format."""
    missing = [p.id for p in problems if p.solution is None]
    if missing:
      raise ValueError(f"warm-up needs worked solutions; problems {missing[:5]} have none")
    prompts = self.prompt_texts(problems)
    return episodes.sft_batch(self.tokenizer, prompts, [p.solution for p in problems],
                              self.cfg.rollout.max_prompt_len + self.cfg.rollout.max_new_tokens, pad_id=self.pad_id)


RECIPES: Registry[type] = Registry("recipe")
