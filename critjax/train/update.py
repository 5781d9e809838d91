"""The jitted update: gradients accumulated over micro-batches, one optimizer step per role.

Dimension key: N rows in the mini-batch, M micro-batches, T tokens.

A batch for a role is a dict of (N, T) arrays aligned with the tokens they score:
  tokens (int32), mask (loss mask), and for policy-gradient roles adv, old_logp and optionally
  ref_logp (KL reference) and kl_coef (per-token beta); a meta RM role (loss 'meta_rm_bce') has
  (N,) score_pos, label and optionally row_valid instead. Losses return (sum, denominator), so
  summing both over micro-batches before dividing gives exactly the full-batch gradient.
A step whose loss or gradient is not finite leaves that role unchanged and reports `skipped` = 1.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from critjax.models import decoder
from critjax.models.config import ModelConfig
from critjax.rl.losses import LOSSES, SCALAR_LOSSES, LossConfig
from critjax.train.logprobs import logprobs_from_logits, token_logprobs
from critjax.train.state import RoleState, TrainState


@dataclasses.dataclass(frozen=True)
class RoleSpec:
  """How one trainable role is updated: its model, loss (a name in critjax.rl.losses.LOSSES:
  'policy', 'nll', ...) and micro-batching."""
  model: ModelConfig
  optimizer: Any                      # optax.GradientTransformation
  kind: str = "policy"
  loss: LossConfig = LossConfig()
  micro_batches: int = 1
  micro_batch_size: int = 0           # rows per micro-batch; when > 0 it sets micro_batches from the batch
  temperature: float = 1.0            # the sampler's: ratios compare like with like
  logprob_chunk: int = 0              # > 0: log-probs over this many positions at a time (logprobs.chunked_logprobs)


def role_loss(params, mb: dict, spec: RoleSpec):
  """-> (loss_sum, denom, metrics as (sum, denom) pairs) for one micro-batch.

  A loss in SCALAR_LOSSES also gets the scalar head's output of the same forward pass, as
  mb['scalar'] (B, T); the logits it may ignore are dead code under jit, which XLA drops."""
  if spec.kind in SCALAR_LOSSES:
    if not spec.model.scalar_head:
      raise ValueError(f"loss {spec.kind!r} reads the scalar head: set model.scalar_head=True for this role")
    logits, scalar_bt = decoder.forward(params, mb["tokens"], spec.model, return_scalar=True)
    mb = {**mb, "scalar": scalar_bt}
    logp, entropy = logprobs_from_logits(logits, mb["tokens"], spec.temperature)
  else:
    logp, entropy = token_logprobs(params, mb["tokens"], spec.model, spec.temperature, spec.logprob_chunk)
  return LOSSES.get(spec.kind)(logp, entropy, mb, spec.loss)


# Rows that must share a micro-batch: a pair loss's (chosen, rejected) rows 2i and 2i + 1.
ROW_UNITS = {"dpo": 2, "reward_bt": 2}


def split_micro_batches(x, m: int, unit: int = 1):
  """(N, ...) -> (M, N / M, ...): micro-batch j takes every M-th unit of `unit` rows, from j on.

  Strided, not contiguous: the batch's rows are split over the (data, fsdp) devices in contiguous
  blocks, and a contiguous split would put each micro-batch on a few devices, which XLA then
  replicates on all of them (every device computing the whole micro-batch; 31 (B, T, V) logits of
  one micro-batch per device in experiments/memory_report.py's Qwen2.5-1.5B step, not 1/8 of it).
  A strided micro-batch holds N / M / devices rows of every device. The sum over micro-batches is
  the same rows' sum, so the accumulated gradient is unchanged (up to float32 summation order)."""
  n = x.shape[0]
  if n % (m * unit):
    raise ValueError(f"batch of {n} rows does not split into {m} micro-batches of whole {unit}-row units")
  y = x.reshape(n // (m * unit), m, unit, *x.shape[1:]).swapaxes(0, 1)
  return y.reshape(m, n // m, *x.shape[1:])


def accumulate_grads(params, batch: dict, spec: RoleSpec):
  """Sum gradients of loss_sum over M micro-batches (lax.scan), divide once by the total denominator."""
  n = batch["tokens"].shape[0]
  if spec.micro_batch_size and n % spec.micro_batch_size:
    raise ValueError(f"rl.micro_batch_size={spec.micro_batch_size} must divide the mini-batch of {n} rows")
  m = n // spec.micro_batch_size if spec.micro_batch_size else spec.micro_batches
  if n % m:
    raise ValueError(f"batch of {n} rows does not split into {m} micro-batches")
  mbs = jax.tree.map(lambda x: split_micro_batches(x, m, ROW_UNITS.get(spec.kind, 1)), batch)

  def loss_fn(p, mb):
    total, denom, metrics = role_loss(p, mb, spec)
    return total, (denom, metrics)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

  def body(carry, mb):
    (total, (denom, metrics)), grads = grad_fn(params, mb)
    return jax.tree.map(jnp.add, carry, (grads, total, denom, metrics)), None

  (total0, (denom0, metrics0)), grads0 = jax.eval_shape(grad_fn, params, jax.tree.map(lambda x: x[0], mbs))
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (grads0, total0, denom0, metrics0))
  (grads, total, denom, metrics), _ = jax.lax.scan(body, zeros, mbs)
  scale = 1.0 / jnp.maximum(denom, 1.0)
  return jax.tree.map(lambda g: g * scale, grads), total * scale, metrics


def apply_role_update(role: RoleState, batch: dict, spec: RoleSpec):
  grads, loss, metrics = accumulate_grads(role.params, batch, spec)
  grad_norm = optax.tree_utils.tree_norm(grads)
  ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  updates, opt_state = spec.optimizer.update(grads, role.opt_state, role.params)
  params = optax.apply_updates(role.params, updates)
  keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
  out = {k: s / jnp.maximum(d, 1.0) for k, (s, d) in metrics.items()}
  out.update(loss=loss, grad_norm=grad_norm, skipped=1.0 - ok.astype(jnp.float32))
  return RoleState(keep(params, role.params), keep(opt_state, role.opt_state)), out


def update_step(state: TrainState, batches: dict, *, specs: dict) -> tuple[TrainState, dict]:
  """One optimizer step for every role that has a batch. Metrics of role 'policy' are unprefixed."""
  roles = dict(state.roles)
  metrics = {}
  for name, batch in batches.items():
    roles[name], m = apply_role_update(state.roles[name], batch, specs[name])
    metrics.update({(k if name == "policy" else f"{name}/{k}"): v for k, v in m.items()})
  return state.replace(roles=roles), metrics


def sequence_logprobs(params, tokens_bt, cfg: ModelConfig, temperature: float = 1.0, chunk: int = 0):
  """Reference / old-policy scoring without gradients: (B, T) log-probs aligned with tokens."""
  return token_logprobs(params, tokens_bt, cfg, temperature, chunk)[0]
