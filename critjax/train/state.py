"""Training state with named roles: trainable models (policy, critic) and frozen ones (reference).

A role is parameters plus its optimizer state; each role has its own optax optimizer and model
config. Self-critique is the policy role used twice, not a second copy. Everything is one pytree,
so one `jax.jit` with NamedSharding in/out shardings covers the whole update and one orbax
checkpoint holds it all: parameters, optimizer state, step, data position and PRNG state.
"""
from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from critjax import sharding as sh


@flax.struct.dataclass
class RoleState:
  params: Any
  opt_state: Any


@flax.struct.dataclass
class TrainState:
  step: jax.Array               # () int32, RL steps completed (global across phases)
  data_index: jax.Array         # () int32, prompts consumed so far
  rng: jax.Array                # (2,) uint32 raw PRNG key (checkpointable)
  roles: dict                   # name -> RoleState (trainable)
  frozen: dict                  # name -> params (e.g. 'reference')


def make_optimizer(lr: float, *, warmup_steps: int = 0, b1: float = 0.9, b2: float = 0.99,
                   weight_decay: float = 0.0, grad_clip: float = 1.0) -> optax.GradientTransformation:
  """AdamW (+ global-norm clipping) with its hyper-parameters in the optimizer state
  (optax.inject_hyperparams): every phase's optimizer of a role has one state structure, so a phase
  with another learning rate (the supervised warm-up) lives in the same checkpointed TrainState."""
  # Always a schedule (constant when there is no warm-up), so the state structure never depends on it.
  sched = optax.linear_schedule(0.0, lr, warmup_steps) if warmup_steps else optax.constant_schedule(lr)
  parts = [optax.clip_by_global_norm(grad_clip)] if grad_clip else []
  parts.append(optax.inject_hyperparams(optax.adamw)(learning_rate=sched, b1=b1, b2=b2, weight_decay=weight_decay))
  return optax.chain(*parts)


def new_state(roles_params: dict, optimizers: dict, frozen: dict, seed: int) -> TrainState:
  roles = {name: RoleState(p, optimizers[name].init(p)) for name, p in roles_params.items()}
  return TrainState(step=jnp.zeros((), jnp.int32), data_index=jnp.zeros((), jnp.int32),
                    rng=jax.random.PRNGKey(seed), roles=roles, frozen=frozen)


def state_shardings(state: TrainState, axes: dict, mesh) -> TrainState:
  """NamedShardings for every leaf: parameters by their logical axes, optimizer moments like their
  parameters (optax states mirror the param tree), scalars replicated.

  `axes` maps model name (role or frozen name) -> logical-axes tree of its params."""
  rep = sh.replicated(mesh)

  def params_sh(name, params):
    return sh.tree_shardings(axes[name], params, mesh)

  def opt_sh(name, params, opt_state):
    p_sh = params_sh(name, params)
    p_struct = jax.tree.structure(params)

    def visit(node):  # any sub-tree shaped like the params gets the params' shardings
      if jax.tree.structure(node) == p_struct:
        return p_sh
      return None
    return jax.tree.map(lambda n: visit(n) or jax.tree.map(lambda _: rep, n), opt_state,
                        is_leaf=lambda n: jax.tree.structure(n) == p_struct)

  roles = {n: RoleState(params_sh(n, r.params), opt_sh(n, r.params, r.opt_state))
           for n, r in state.roles.items()}
  frozen = {n: params_sh(n, p) for n, p in state.frozen.items()}
  return TrainState(step=rep, data_index=rep, rng=rep, roles=roles, frozen=frozen)
