"""Typed, validated experiment config: the ml_collections ConfigDict is converted once, at the boundary.

Every field and its default is declared here; the rest of the code reads attributes of frozen
dataclasses and never probes a ConfigDict. An unknown field anywhere raises with its full path
(`config.rl.clip_hgih`), which catches typos in config files and `--config.x.y=` overrides.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Optional

from critjax.models.config import ModelConfig
from critjax.rl.losses import LossConfig
from critjax.sampling.token_choice import SamplingConfig
from critjax.sharding import MeshConfig


def _require(ok: bool, message: str):
  if not ok:
    raise ValueError(message)


CODE_REWARDS = ("all_pass", "fraction")
CODE_TASKS = ("humaneval",)


@dataclasses.dataclass(frozen=True)
class TaskConfig:
  name: str = "arithmetic"          # arithmetic | gsm8k | math500 | humaneval
  min_digits: int = 2               # arithmetic only
  max_digits: int = 3
  answer_first: bool = False        # arithmetic only: "A: <answer> ; check <columns> ; = <total>" format
  check_total: bool = True          # answer_first only: end the check with its total ("; = 625")
  filler_max: int = 0               # arithmetic only: up to this many ' ; sure' after the answer (BRPO's toy)
  path: Optional[str] = None        # dataset file (real tasks); None = the copy in ../shared/data
  split: str = "train"
  # RL prompts cycle through the first `pool_size` problems of the RL stream, task.problems(seed,
  # 0, pool_size) (0 = the whole stream). A finite pool is the member set of a contamination study
  # (RL-MIA, experiments/rl_mia_toy.py); the warm-up and the held-out problems keep their streams.
  pool_size: int = 0
  # Code tasks (humaneval): "all_pass" rewards 1 iff every test passes; "fraction" rewards the
  # share of test cases passed (Critique-Coder, arXiv 2509.22824; registry.HumanEvalReward).
  code_reward: str = "all_pass"     # all_pass | fraction

  def __post_init__(self):
    _require(self.pool_size >= 0, f"pool_size={self.pool_size} must be >= 0 (0 = no pool)")
    _require(self.code_reward in CODE_REWARDS,
             f"code_reward={self.code_reward!r}; expected one of {' | '.join(CODE_REWARDS)}")
    _require(self.code_reward == "all_pass" or self.name in CODE_TASKS,
             f"code_reward={self.code_reward!r} needs a code task ({' | '.join(CODE_TASKS)}); "
             f"task {self.name!r} has no test cases")


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
  kind: str = "train_spm"           # train_spm (train on the task corpus) | spm | hf
  path: Optional[str] = None        # .model or tokenizer.json / HF directory
  vocab_size: int = 48              # train_spm only
  corpus_size: int = 20_000
  chat_template: bool = False       # render episodes with the model's chat template (tokenizer_config.json in path)
  # Special tokens a method adds (ReVISE's '[refine]'): appended with the next free ids; the model
  # then needs vocab_size >= the grown vocabulary (a Hugging Face import grows its rows, critjax.models.vocab)
  add_tokens: tuple = ()

  def __post_init__(self):
    if self.kind not in ("train_spm", "spm", "hf"):
      raise ValueError(f"config.tokenizer.kind={self.kind!r}; expected train_spm | spm | hf")
    if self.kind != "train_spm" and not self.path:
      raise ValueError(f"config.tokenizer.path is required for tokenizer.kind={self.kind!r}")
    if any(not isinstance(t, str) or not t.strip() for t in self.add_tokens) or \
        len(set(self.add_tokens)) != len(self.add_tokens):
      raise ValueError(f"config.tokenizer.add_tokens={self.add_tokens!r}: distinct, non-empty strings expected")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
  learning_rate: float = 1e-4
  warmup_steps: int = 0
  b1: float = 0.9
  b2: float = 0.99
  weight_decay: float = 0.0
  grad_clip: float = 1.0

  def __post_init__(self):
    if self.learning_rate <= 0:
      raise ValueError(f"optim.learning_rate must be > 0, got {self.learning_rate}")


@dataclasses.dataclass(frozen=True)
class WarmupConfig:
  """Supervised warm-up on correct worked solutions before RL (0 steps = none)."""
  steps: int = 0
  batch_size: int = 32
  learning_rate: float = 1e-3
  checkpoint: Optional[str] = None  # HF model directory to start from instead of random init
  # Multi-attempt recipes: which attempts a warm-up episode shows (critjax/data/toy_warmup.py):
  # "repeat" (every attempt the correct solution) or a registered builder with its data_args.
  data: str = "repeat"
  data_args: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    _require(self.steps >= 0, f"steps={self.steps} must be >= 0 (0 = no warm-up)")
    _require(self.batch_size >= 1, f"batch_size={self.batch_size} must be >= 1")
    _require(self.learning_rate > 0, f"learning_rate={self.learning_rate} must be > 0 (a negative one climbs the loss)")
    from critjax.data.toy_warmup import make_builder
    make_builder(self.data, dict(self.data_args))      # unknown builder or field: named here, at start-up


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
  prompts_per_step: int = 16        # B
  group_size: int = 8               # G samples per prompt
  max_prompt_len: int = 32
  max_new_tokens: int = 48
  temperature: float = 1.0
  top_k: int = 0
  top_p: float = 1.0

  def __post_init__(self):
    for f in ("prompts_per_step", "group_size", "max_prompt_len", "max_new_tokens"):
      _require(getattr(self, f) >= 1, f"{f}={getattr(self, f)} must be >= 1")
    _require(self.temperature >= 0, f"temperature={self.temperature} must be >= 0 (0 = greedy)")
    _require(self.top_k >= 0, f"top_k={self.top_k} must be >= 0 (0 = off)")
    _require(0 < self.top_p <= 1, f"top_p={self.top_p} must be in (0, 1]")


@dataclasses.dataclass(frozen=True)
class RLConfig:
  advantage: str = "grpo"           # grpo | dr_grpo | rloo | reinforce
  loss: LossConfig = LossConfig()
  ppo_epochs: int = 1               # mu: update epochs per rollout batch
  num_minibatches: int = 1          # optimizer steps per epoch
  micro_batch_size: int = 0         # rows per gradient-accumulation micro-batch; 0 = whole mini-batch
  dynamic_sampling: bool = False    # DAPO: drop groups whose accuracy is 0 or 1
  # DAPO dynamic sampling: generation batches per step (each of prompts_per_step new prompts) to fill
  # the prompt batch with kept groups (verl's max_num_gen_batches); 1 = drop and mask, no refill.
  max_gen_batches: int = 1
  overlong_filter: bool = False     # DAPO: mask the loss of truncated samples
  soft_overlong_cache: int = 0      # DAPO soft overlong punishment window L_cache (0 = off)
  # Token log-probs of the loss and the reference over this many positions at a time, never the
  # whole (B, T, V) float32 logits (critjax.train.logprobs.chunked_logprobs); 0 = off, -1 = on
  # (1024) from a 32k vocabulary.
  logprob_chunk: int = -1

  def __post_init__(self):
    if self.logprob_chunk < -1:
      raise ValueError(f"rl.logprob_chunk={self.logprob_chunk} must be -1 (auto), 0 (off) or > 0")
    if self.ppo_epochs < 1 or self.num_minibatches < 1 or self.micro_batch_size < 0:
      raise ValueError("rl.ppo_epochs and rl.num_minibatches must be >= 1, rl.micro_batch_size >= 0")
    if self.max_gen_batches < 1:
      raise ValueError(f"rl.max_gen_batches must be >= 1, got {self.max_gen_batches}")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  steps: int = 100
  log_every: int = 1
  eval_every: int = 25
  eval_prompts: int = 256
  checkpoint_every: int = 25
  keep_checkpoints: int = 2
  max_skipped_steps: int = 10       # consecutive skipped (non-finite / failed reward) steps before stopping

  def __post_init__(self):
    _require(self.steps >= 0, f"steps={self.steps} must be >= 0 (RL steps; 0 = a warm-up-only run)")
    for f in ("log_every", "eval_every", "checkpoint_every", "eval_prompts"):
      _require(getattr(self, f) >= 1, f"{f}={getattr(self, f)} must be >= 1")
    # 0 would let orbax delete every checkpoint already saved, this run's included.
    _require(self.keep_checkpoints >= 1, f"keep_checkpoints={self.keep_checkpoints} must be >= 1")
    _require(self.max_skipped_steps >= 0, f"max_skipped_steps={self.max_skipped_steps} must be >= 0")



ROLE_INITS = ("random", "hf", "copy", "checkpoint")


@dataclasses.dataclass(frozen=True)
class RoleConfig:
  """One model of the run (`config.roles.<name>`): what it is, how it starts, whether it trains.

  A config without `roles` has one role, `policy`, read from the top-level `model`, `optim` and
  `rollout` fields (and `warmup.checkpoint` as its Hugging Face start): every single-policy config
  keeps working unchanged. Fields left None take those top-level values, so each default is stated
  once. Roles live on the run's one mesh (`mesh = "shared"`), each sharded by its own logical axes.
  """
  model: Optional[ModelConfig] = None     # None: config.model
  init: str = "random"                    # random | hf | copy | checkpoint
  init_from: Optional[str] = None         # hf: model directory; copy: a role's name; checkpoint: an earlier run's workdir
  init_role: Optional[str] = None         # checkpoint: which role of that run (default: this role's name)
  share: Optional[str] = None             # use another role's parameters (self-critique: critic = policy)
  trained: bool = True                    # False: frozen (no optimizer state, never updated)
  optim: Optional[OptimConfig] = None     # trained roles; None: config.optim
  temperature: Optional[float] = None     # sampling settings; None: config.rollout's
  top_k: Optional[int] = None
  top_p: Optional[float] = None
  max_new_tokens: Optional[int] = None
  mesh: str = "shared"

  def __post_init__(self):
    if self.init not in ROLE_INITS:
      raise ValueError(f"init={self.init!r}; expected one of {ROLE_INITS}")
    if self.init != "random" and not self.init_from:
      raise ValueError(f"init={self.init!r} needs init_from (a directory or a role name)")
    if self.mesh != "shared":
      raise ValueError(f"mesh={self.mesh!r}; only 'shared' (the run's one mesh) is supported")
    if not self.trained and self.optim is not None:
      raise ValueError("optim is set but trained=False: a frozen role takes no optimizer fields")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  name: str = "grpo"
  recipe: str = "grpo"
  seed: int = 0
  model: ModelConfig = ModelConfig()
  mesh: MeshConfig = MeshConfig()
  task: TaskConfig = TaskConfig()
  tokenizer: TokenizerConfig = TokenizerConfig()
  warmup: WarmupConfig = WarmupConfig()
  rollout: RolloutConfig = RolloutConfig()
  rl: RLConfig = RLConfig()
  optim: OptimConfig = OptimConfig()
  train: TrainConfig = TrainConfig()
  recipe_args: dict = dataclasses.field(default_factory=dict)  # recipe-specific, checked by the recipe
  roles: dict = dataclasses.field(default_factory=dict)        # name -> RoleConfig; empty: one 'policy' role

  def role_configs(self) -> dict[str, RoleConfig]:
    """Every role with its defaults filled in (model, optimizer); see RoleConfig."""
    roles = dict(self.roles) or {"policy": RoleConfig(
        init="hf" if self.warmup.checkpoint else "random", init_from=self.warmup.checkpoint)}
    out = {}
    for name, r in roles.items():
      if r.share is not None:
        own = [f for f in ("model", "init_from", "init_role", "optim") if getattr(r, f) is not None]
        if own or r.init != "random":
          raise ValueError(f"config.roles.{name}.share={r.share!r} uses that role's parameters; it cannot "
                           f"also set {own or ['init']}")
        if r.share not in roles or roles[r.share].share is not None:
          raise ValueError(f"config.roles.{name}.share={r.share!r} must name a role with its own "
                           f"parameters; roles: {sorted(roles)}")
        base = roles[r.share]
        r = dataclasses.replace(r, trained=base.trained)
      if r.init == "copy" and (r.init_from not in roles or r.init_from == name):
        raise ValueError(f"config.roles.{name}.init_from={r.init_from!r} must name another role; "
                         f"roles: {sorted(roles)}")
      out[name] = dataclasses.replace(
          r, model=r.model or self.model,
          optim=(r.optim or self.optim) if (r.trained and r.share is None) else None)
    return out

  def role_sampling(self, name: str, eos_id: int, pad_id: int, greedy: bool = False,
                    extra_stop_ids=()) -> SamplingConfig:
    """The sampling settings of role `name`: its own fields where set, else config.rollout's."""
    r, role = self.rollout, self.role_configs()[name]
    pick = lambda field: getattr(r, field) if getattr(role, field) is None else getattr(role, field)
    return SamplingConfig(max_new_tokens=pick("max_new_tokens"), temperature=0.0 if greedy else pick("temperature"),
                          top_k=pick("top_k"), top_p=pick("top_p"), eos_id=eos_id, pad_id=pad_id,
                          extra_stop_ids=tuple(extra_stop_ids))

  def to_json(self) -> str:
    return json.dumps(to_dict(self), indent=2, sort_keys=True)


def to_dict(obj) -> Any:
  if dataclasses.is_dataclass(obj):
    if hasattr(obj, "to_dict"):
      return obj.to_dict()
    return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
  if isinstance(obj, (list, tuple)):
    return [to_dict(x) for x in obj]
  if isinstance(obj, dict):
    return {k: to_dict(v) for k, v in obj.items()}
  return obj


def _unwrap_optional(tp):
  args = [a for a in typing.get_args(tp) if a is not type(None)]
  return args[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1 else tp


def _is_dataclass_type(tp) -> bool:
  return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def from_dict(cls, d: dict, path: str = "config"):
  """Builds dataclass `cls` from nested dicts, raising on unknown fields with their full path."""
  if not isinstance(d, dict):
    raise TypeError(f"{path} must be a mapping, got {type(d).__name__}")
  hints = typing.get_type_hints(cls)
  fields = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(d) - fields)
  if unknown:
    raise ValueError(f"unknown field(s) {', '.join(f'{path}.{u}' for u in unknown)}; "
                     f"known fields of {path}: {sorted(fields)}")
  kwargs = {}
  for name, value in d.items():
    tp = _unwrap_optional(hints[name])
    if cls is ExperimentConfig and name == "roles":
      if not isinstance(value, dict):
        raise TypeError(f"{path}.roles must be a mapping of role name -> role fields")
      kwargs[name] = {role: from_dict(RoleConfig, dict(v or {}), f"{path}.roles.{role}") for role, v in value.items()}
    elif _is_dataclass_type(tp) and isinstance(value, dict):
      if tp is ModelConfig:
        try:
          kwargs[name] = ModelConfig.from_dict(value)
        except ValueError as e:
          raise ValueError(f"{path}.{name}: {e}") from None
      else:
        kwargs[name] = from_dict(tp, value, f"{path}.{name}")
    else:
      kwargs[name] = tuple(value) if isinstance(value, list) and tp is not dict else value
  try:
    return cls(**kwargs)
  except (TypeError, ValueError) as e:
    raise ValueError(f"{path}: {e}") from None


def from_configdict(cd) -> ExperimentConfig:
  """ml_collections.ConfigDict (or plain dict) -> validated ExperimentConfig."""
  d = cd.to_dict() if hasattr(cd, "to_dict") else dict(cd)
  return from_dict(ExperimentConfig, d)
