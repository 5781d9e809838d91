"""What a recipe is: the pieces of one method that differ from the shared loop.

A recipe declares the roles it needs (`roles`: name -> 'trained' | 'any'), builds episodes for a
batch of problems through an episode protocol (critjax.rl.protocols), turns them into one batch per
role it trains (rewards, advantages, loss kind), and says how to evaluate. The loop
(critjax/train/loop.py) owns everything else: every role's parameters, optimizer and shardings,
reference log-probs, the one jitted update over all trained roles, phases and their hooks,
checkpoints and logging. `phases` lets a method run stages in order (SCoRe, Critique-RL: stage I
then II) inside one run; the loop puts the supervised warm-up phase in front.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import jax
import numpy as np

from critjax.data.tasks import Problem
from critjax.registry import Registry
from critjax.rl import episodes, protocols
from critjax.rl.phases import Phase, Snapshot  # noqa: F401  (Phase is part of the recipe API)
from critjax.sampling.sampler import Sampler


@dataclasses.dataclass
class Collected:
  batches: dict               # role -> per-token arrays for its update (see episodes.policy_batch)
  metrics: dict               # host-side scalars (reward_mean, accuracy, response_length, ...)
  group_rows: int = 1         # consecutive rows that mini-batching keeps together (a group, a pair)

  @property
  def batch(self) -> dict:
    """The policy's batch (single-role recipes)."""
    return self.batches["policy"]


class Recipe:
  """Base class; subclasses implement `collect` and `evaluate`."""
  roles: dict = {"policy": "trained"}   # the roles the recipe needs: 'trained' | 'any'
  turns: int = 1              # generated turns per episode (sizes the sampler's capacity)
  loss_kind: str = "policy"   # every trained role's loss, a name in critjax.rl.losses.LOSSES

  def __init__(self, cfg, task, tokenizer, template):
    self.cfg, self.task, self.tokenizer, self.template = cfg, task, tokenizer, template
    self.role_cfgs = cfg.role_configs()
    self._check_roles()
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
    runtimes = {}
    for name, r in self.role_cfgs.items():
      mk = lambda greedy: Sampler(r.model, dataclasses.replace(
          cfg.role_sampling(name, eos, self.pad_id, greedy=greedy, extra_stop_ids=stops),
          **self.sampling_overrides(name)), cap)
      runtimes[name] = protocols.RoleRuntime(name, r.share or name, mk(False), mk(True))
    self.engine = protocols.Engine(runtimes, tokenizer, self.encode_prompt, self.pad_id, cfg.rollout.max_prompt_len)
    for p in self.phases():
      for h in p.on_start:
        if isinstance(h, Snapshot):
          self.engine.alias(h.name, like=h.role)
    self.data: dict[str, list[dict]] = {}   # offline datasets by name (load_data)
    # The stream position of this step's first problem (the checkpointed TrainState.data_index),
    # set by the loop before `collect`: recipes with data of their own (CRL's critique items) index
    # it from here, so a resumed run draws what an uninterrupted one would.
    self.data_index = 0
    # Steps of the current phase done before this one (set by the loop before each step): an RL
    # phase that reads an offline dataset (DPO pairs) takes its k-th batch from here, so a resumed
    # run reads what an uninterrupted one would.
    self.phase_step = 0
    self.eval_rng = jax.random.PRNGKey(0)  # unused by greedy decoding; fixed for reproducibility

  def _check_roles(self):
    have = self.role_cfgs
    for name, need in self.roles.items():
      if name not in have:
        raise ValueError(f"recipe {self.cfg.recipe!r} needs role {name!r} ({need}); config.roles has "
                         f"{sorted(have)}")
      if need == "trained" and not have[name].trained:
        raise ValueError(f"recipe {self.cfg.recipe!r} trains role {name!r}, but config.roles.{name}.trained is False")
    # Protocols hand token ids from one role's turn to the next role's cache: one vocabulary for all.
    vocab = {name: have[name].model.vocab_size for name in self.roles}
    if len(set(vocab.values())) > 1:
      (a, va), (b, vb) = [(n, v) for n, v in vocab.items() if v != next(iter(vocab.values()))][:1] + \
          [next(iter(vocab.items()))]
      raise ValueError(f"roles {b!r} (config.roles.{b}.model.vocab_size={vb}) and {a!r} ({va}) have different "
                       f"vocabularies; the recipe's protocol hands tokens between them. Give them one tokenizer's "
                       f"models (re-tokenizing through text is not supported)")

  @property
  def sampler(self) -> Sampler:
    return self.engine.roles["policy"].sampler

  @property
  def greedy_sampler(self) -> Sampler:
    return self.engine.roles["policy"].greedy_sampler

  @property
  def model_cfg(self):
    return self.role_cfgs["policy"].model

  def trained_roles(self) -> list[str]:
    """Roles this recipe updates in RL (its batches' keys)."""
    return [n for n, need in self.roles.items() if need == "trained"]

  def references(self) -> list[str]:
    """Trained roles whose RL batches are scored under a frozen reference (KL terms)."""
    return self.trained_roles() if self.cfg.rl.loss.kl_coef > 0 else []

  def loss_kinds(self) -> dict[str, str]:
    return {r: self.loss_kind for r in self.trained_roles()}

  def supervised_loss_kinds(self, phase: Phase) -> dict[str, str]:
    """role -> loss (a name in LOSSES) for a supervised phase of this recipe; roles left out take
    'nll' (the warm-up, rejective fine-tuning). A meta RM's phase names 'meta_rm_bce'."""
    return {}

  def rows_per_step(self) -> dict[str, int]:
    """Rows of each trained role's RL batch per step (every recipe so far: B prompts x G samples);
    the loop checks mini- and micro-batch sizes against it before any compute."""
    r = self.cfg.rollout
    return {role: r.prompts_per_step * r.group_size for role in self.trained_roles()}

  # --- configuration -----------------------------------------------------------------------------
  def check_args(self, args: dict):
    extra = sorted(set(args) - {"template"})
    if extra:
      raise ValueError(f"recipe {self.cfg.recipe!r} takes only recipe_args.template, got {extra}")

  def sampling_overrides(self, role: str) -> dict:
    """SamplingConfig fields this method sets for a role's samplers (ReVISE: stop after the n-th
    [refine] token, `stop_after`); none by default."""
    return {}

  def capacity(self) -> int:
    r = self.cfg.rollout
    return r.max_prompt_len + self.turns * (r.max_new_tokens + self.instruction_budget())

  def instruction_budget(self) -> int:
    return 0

  def phases(self) -> list[Phase]:
    return [Phase("rl", self.cfg.train.steps)]

  def set_phase(self, phase: Phase):
    self.phase = phase

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

  def episode(self, turns: Sequence[protocols.Turn], params: dict, problems: Sequence[Problem], rng,
              num_samples: int = 1, greedy: bool = False, engine: Optional[protocols.Engine] = None):
    """Run a protocol from the first-turn prompts of `problems` (critjax.rl.protocols.run)."""
    return protocols.run(engine or self.engine, turns, problems, self.prompt_texts(problems), params, rng,
                         num_samples=num_samples, greedy=greedy)

  def collect(self, params: dict, problems: Sequence[Problem], rng,
              refill: Optional[Callable[[int], list[Problem]]] = None) -> Collected:
    """Episodes for `problems` -> a batch per trained role. `params`: role (or snapshot) -> params.
    `refill(n)`, when given, takes n more problems from the run's stream (for methods that replace
    prompts they drop, e.g. DAPO dynamic sampling)."""
    raise NotImplementedError

  def evaluate(self, params: dict, problems: Sequence[Problem]) -> dict:
    raise NotImplementedError

  # --- offline datasets (critjax.rl.phases.BuildData) ----------------------------------------------
  def build_data(self, name: str, params: dict, rng) -> list[dict]:
    """Sample the offline dataset `name` once, at its phase's start: JSON-able records."""
    raise NotImplementedError(f"recipe {self.cfg.recipe!r} builds no dataset {name!r}")

  def load_data(self, name: str, records: list[dict]) -> None:
    """Receive dataset `name` (just built, or read back from the workdir on a resume)."""
    self.data[name] = records

  # --- supervised warm-up ------------------------------------------------------------------------
  def warmup_batches(self, problems: Sequence[Problem]) -> dict:
    """role -> supervised batch for the warm-up phase (every role the warm-up fits)."""
    return {"policy": self.warmup_batch(problems)}

  def phase_batches(self, phase: Phase, k: int) -> dict:
    """role -> supervised batch for step k of one of the recipe's own supervised phases
    (Phase(kind='sft') in `phases()`, e.g. rejective fine-tuning on a BuildData set); k counts from
    the phase's start, so a resumed run takes the batches an uninterrupted one would."""
    raise NotImplementedError(f"recipe {self.cfg.recipe!r} has no batches for supervised phase {phase.name!r}")

  def warmup_batch(self, problems: Sequence[Problem]) -> dict:
    """Prompt + correct worked solution: fits the base model to the task format."""
    missing = [p.id for p in problems if p.solution is None]
    if missing:
      raise ValueError(f"warm-up needs worked solutions; problems {missing[:5]} have none")
    prompts = self.prompt_texts(problems)
    return episodes.sft_batch(self.tokenizer, prompts, [p.solution for p in problems],
                              self.cfg.rollout.max_prompt_len + self.cfg.rollout.max_new_tokens, pad_id=self.pad_id)


RECIPES: Registry[type] = Registry("recipe")
