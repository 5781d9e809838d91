"""Phases of a run and the hooks that run when a phase starts.

A run is a list of phases, each a range of global steps: the supervised warm-up (`kind="sft"`, every
trained role fitted on the recipe's warm-up batches) and then the recipe's RL stages (`kind="rl"`:
SCoRe Stage I / II, Critique-RL Stage I / II). A phase's `args` switch the reward or the data inside
the recipe; its `on_start` hooks change the train state when the phase begins:

  ResetReference(role)     the role's KL reference := its current parameters (Critique-RL Stage II:
                           the reference is the Stage-I critic; every run's first RL phase: the
                           model after the warm-up)
  Snapshot(role, name)     a frozen copy of the role's current parameters kept as role `name`
                           (offline-data baselines sample the base model; self-play rounds)
  ResetOptimizer(role)     fresh optimizer state for the phase's optimizer (RL after the warm-up)
  BuildData(role, name)    an offline dataset sampled once from the role's current parameters
                           (`recipe.build_data`), written to workdir/data/<name>.jsonl and handed to
                           the recipe (`recipe.load_data`): Critique-Coder's candidate solutions

Hooks act only when a run crosses the phase's first step; a resumed run finds their effect in the
checkpoint, because every frozen copy they write is part of the TrainState from the start; a
BuildData's records are read back from their file (written before any checkpoint of the phase).
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ResetReference:
  role: str


@dataclasses.dataclass(frozen=True)
class Snapshot:
  role: str
  name: str


@dataclasses.dataclass(frozen=True)
class ResetOptimizer:
  role: str


@dataclasses.dataclass(frozen=True)
class BuildData:
  role: str
  name: str


@dataclasses.dataclass(frozen=True)
class Phase:
  name: str
  steps: int
  args: dict = dataclasses.field(default_factory=dict)
  kind: str = "rl"                       # 'rl' (recipe.collect) | 'sft' (recipe.warmup_batches)
  on_start: tuple = ()                   # hooks, in order

  def __post_init__(self):
    if self.kind not in ("rl", "sft"):
      raise ValueError(f"phase {self.name!r}: kind={self.kind!r}; expected 'rl' or 'sft'")
    if self.steps < 0:
      raise ValueError(f"phase {self.name!r}: steps={self.steps} must be >= 0")


def reference_name(role: str) -> str:
  """The frozen-state key of a role's KL reference (the policy's keeps the historical name)."""
  return "reference" if role == "policy" else f"{role}_reference"


def check_hooks(phases, roles: dict) -> None:
  """Every hook names a role of the run, before any compute (`roles`: name -> RoleConfig)."""
  for p in phases:
    for h in p.on_start:
      if h.role not in roles:
        raise ValueError(f"phase {p.name!r}: {type(h).__name__} names role {h.role!r}, which config.roles "
                         f"lacks; roles: {sorted(roles)}")
      if isinstance(h, (ResetReference, ResetOptimizer)) and not roles[h.role].trained:
        raise ValueError(f"phase {p.name!r}: {type(h).__name__}({h.role!r}) needs a trained role; "
                         f"config.roles.{h.role}.trained is False")
      if isinstance(h, BuildData) and not (h.name and h.name.replace("_", "").isalnum()):
        raise ValueError(f"phase {p.name!r}: BuildData name {h.name!r} must be letters, digits and '_' "
                         f"(it names the file workdir/data/<name>.jsonl)")
      if isinstance(h, Snapshot) and h.name in roles:
        raise ValueError(f"phase {p.name!r}: Snapshot name {h.name!r} is already a role")
