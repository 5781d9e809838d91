"""The training driver. Reads top to bottom:
workdir -> mesh -> task, tokenizer, recipe -> model (+ supervised warm-up) -> shard -> jitted steps
-> restore -> loop (collect, reference log-probs, update epochs, log, eval, checkpoint).

One RL step: sample G completions for each of B prompts -> rewards -> advantages -> mu epochs of
`num_minibatches` optimizer steps, each accumulated over micro-batches -> metrics.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
from pathlib import Path
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from critjax import sharding as sh
from critjax.config import ExperimentConfig
from critjax.data.tasks import make_task
from critjax.data.templates import get_template
from critjax.models import decoder
from critjax.rl.recipes import RECIPES
from critjax.train import tokenizer_setup
from critjax.train.checkpoint import Checkpointer, check_workdir
from critjax.train.metrics import MetricWriter
from critjax.train.state import make_optimizer, new_state, state_shardings
from critjax.train.update import RoleSpec, sequence_logprobs, update_step

TIMING_KEYS = ("tokens_per_second", "step_seconds", "rollout_seconds", "update_seconds")


class StepFailed(RuntimeError):
  pass


def build(cfg: ExperimentConfig, workdir: Path):
  """Everything before the loop; returns a namespace-like dict (used by experiments and tests)."""
  if cfg.warmup.checkpoint and not Path(cfg.warmup.checkpoint).is_dir():
    raise FileNotFoundError(f"config.warmup.checkpoint={cfg.warmup.checkpoint!r} is not a directory")
  mesh = sh.make_mesh(cfg.mesh)
  task = make_task(cfg.task)
  tokenizer = tokenizer_setup.build_tokenizer(cfg, task, workdir)
  tokenizer_setup.check_vocab(tokenizer, cfg.model)  # before any compute
  template = get_template(cfg.recipe_args.get("template", task.template))
  recipe = RECIPES.get(cfg.recipe)(cfg, task, tokenizer, template, cfg.model)
  return dict(mesh=mesh, task=task, tokenizer=tokenizer, recipe=recipe)


def _put_batch(batch: dict, mesh):
  return sh.shard_batch({k: np.asarray(v) for k, v in batch.items()}, mesh)


def _split_minibatches(batch: dict, n: int, rng: np.random.Generator):
  rows = batch["tokens"].shape[0]
  if rows % n:
    raise ValueError(f"{rows} rollout rows do not split into rl.num_minibatches={n}")
  perm = rng.permutation(rows)
  return [{k: v[idx] for k, v in batch.items()} for idx in np.split(perm, n)]


def init_model(cfg: ExperimentConfig, mesh):
  """Parameters created directly in their shardings: shapes from `jax.eval_shape`, then either a
  jitted init with out_shardings or a Hugging Face import that streams each tensor onto its shard."""
  axes = decoder.logical_axes(cfg.model)
  shapes = jax.eval_shape(lambda: decoder.init_params(cfg.model, jax.random.PRNGKey(cfg.seed))[0])
  shardings = sh.tree_shardings(axes, shapes, mesh)
  if cfg.warmup.checkpoint:
    from critjax.models import hf_io
    params, loaded = hf_io.import_hf(cfg.warmup.checkpoint, shardings=shardings, **_runtime_overrides(cfg.model))
    diffs = [f"model.{k}: {v!r} (config) != {getattr(loaded, k)!r} ({cfg.warmup.checkpoint})"
             for k, v in cfg.model.to_dict().items() if _comparable(v) != _comparable(getattr(loaded, k))]
    if diffs:
      raise ValueError("the model config does not match the checkpoint:\n  " + "\n  ".join(diffs))
    return params, axes
  init = jax.jit(lambda key: decoder.init_params(cfg.model, key)[0], out_shardings=shardings)
  return init(jax.random.PRNGKey(cfg.seed)), axes


def _comparable(v):
  return dict(v) if isinstance(v, tuple) and v and isinstance(v[0], tuple) else v


def supervised_warmup(cfg: ExperimentConfig, recipe, params, axes, mesh, writer, seed: int):
  """Fits the base model on correct worked solutions (cfg.warmup). Deterministic in `seed`."""
  w = cfg.warmup
  opt = make_optimizer(w.learning_rate, grad_clip=cfg.optim.grad_clip)
  spec = RoleSpec(model=cfg.model, optimizer=opt, kind="nll")
  state = new_state({"policy": params}, {"policy": opt}, {}, seed)
  shardings = state_shardings(state, {"policy": axes}, mesh)
  state = jax.device_put(state, shardings)
  step_fn = jax.jit(functools.partial(update_step, specs={"policy": spec}), donate_argnums=0,
                    out_shardings=(shardings, None))
  bar = tqdm(range(w.steps), desc="warm-up (SFT)", unit="step", dynamic_ncols=True)
  for i in bar:
    problems = recipe.task.problems(seed + 7919, i * w.batch_size, w.batch_size)
    batch = _put_batch(recipe.warmup_batch(problems), mesh)
    state, m = step_fn(state, {"policy": batch})
    if i % 10 == 0 or i == w.steps - 1:
      m = {k: float(v) for k, v in m.items()}
      writer.write(i, {"phase": 0, **m}, prefix="warmup/")
      bar.set_postfix(nll=f"{m['nll']:.3f}")
  return state.roles["policy"].params


@dataclasses.dataclass
class RunResult:
  eval: dict          # the last evaluation's metrics
  params: Any         # the policy's final parameters


def train(cfg: ExperimentConfig, workdir: str | Path, *, stop_after: Optional[int] = None,
          init_params=None) -> RunResult:
  """Runs (or resumes) the experiment in `workdir`.

  `stop_after` ends this invocation after that many RL steps (tests use it to simulate an
  interruption). `init_params` starts from given parameters instead of init + warm-up (ablation
  sweeps share one warm-up across methods); they also become the reference."""
  workdir = Path(workdir)
  check_workdir(workdir, cfg.to_json(), write=False)   # another experiment's workdir: stop here
  parts = build(cfg, workdir)                          # validates the rest (recipe args, vocab)
  check_workdir(workdir, cfg.to_json())
  mesh, task, recipe = parts["mesh"], parts["task"], parts["recipe"]
  writer = MetricWriter(workdir)
  ckpt = Checkpointer(workdir, keep=cfg.train.keep_checkpoints)
  sh.log_mesh(mesh)

  # Model: random init (or imported), warm-up only on a fresh run: a checkpoint already holds it.
  if init_params is None:
    params, axes = init_model(cfg, mesh)
  else:  # a copy: the update donates the policy's buffers and the caller keeps its own
    params, axes = jax.tree.map(jnp.copy, init_params), decoder.logical_axes(cfg.model)
  fresh = ckpt.latest_step() is None
  if fresh and cfg.warmup.steps and init_params is None:
    params = supervised_warmup(cfg, recipe, params, axes, mesh, writer, cfg.seed)

  # State: policy (+ frozen reference = the post-warm-up model), sharded by logical axes.
  opt = make_optimizer(cfg.optim.learning_rate, warmup_steps=cfg.optim.warmup_steps, b1=cfg.optim.b1,
                       b2=cfg.optim.b2, weight_decay=cfg.optim.weight_decay, grad_clip=cfg.optim.grad_clip)
  # The reference is a copy: the update donates the policy's buffers, which must not be shared.
  keep_reference = recipe.needs_reference() or recipe.samples_from_reference()
  frozen = {"reference": jax.tree.map(jnp.copy, params)} if keep_reference else {}
  state = new_state({"policy": params}, {"policy": opt}, frozen, cfg.seed)
  shardings = state_shardings(state, {"policy": axes, "reference": axes}, mesh)
  state = jax.device_put(state, shardings)
  if not fresh:
    state = ckpt.restore(state, shardings)
    logging.info("resumed from step %d", int(state.step))
  elif cfg.warmup.steps:
    ckpt.save(0, state, force=True)  # the warm-up is never redone

  temperature = cfg.rollout.temperature or 1.0
  spec = RoleSpec(model=cfg.model, optimizer=opt, kind=recipe.loss_kind, loss=cfg.rl.loss,
                  micro_batches=_micro_batches(cfg), temperature=temperature)
  update = jax.jit(functools.partial(update_step, specs={"policy": spec}), donate_argnums=0,
                   out_shardings=(shardings, None))
  ref_logprobs = jax.jit(functools.partial(sequence_logprobs, cfg=cfg.model, temperature=temperature))

  eval_problems = task.eval_problems(cfg.seed, cfg.train.eval_prompts)
  phases = recipe.phases()
  total = sum(p.steps for p in phases)
  start = int(state.step)
  last_eval: dict = {}
  skipped_in_a_row = 0
  if start == 0:  # the "before" number every comparison needs
    last_eval = _evaluate(recipe, state, eval_problems, writer, 0)
  bar = tqdm(total=total, initial=start, desc=cfg.name, unit="step", dynamic_ncols=True)
  for step in range(start, total):
    recipe.set_phase(_phase_at(phases, step))
    t0 = time.perf_counter()
    b = cfg.rollout.prompts_per_step
    stream = ProblemStream(task, cfg.seed, int(state.data_index))
    problems = stream.take(b)
    rng, key = jax.random.split(state.rng)
    try:
      actor = state.frozen["reference"] if recipe.samples_from_reference() else state.roles["policy"].params
      collected = recipe.collect(actor, problems, key, refill=stream.take)
    except Exception as e:  # a raising reward function: skip this update, count it, keep going
      logging.error("step %d: rollout/reward failed (%s: %s); update skipped", step + 1, type(e).__name__, e)
      collected = None
    t_roll = time.perf_counter() - t0
    metrics: dict = {"phase": phases.index(recipe.phase)}
    if collected is None:
      metrics.update(skipped=1.0, reward_errors=1.0)
    else:
      batch = collected.batch
      if recipe.needs_reference():
        batch["ref_logp"] = np.asarray(ref_logprobs(state.frozen["reference"], jnp.asarray(batch["tokens"])))
      np_rng = np.random.default_rng([cfg.seed, step])
      for _ in range(cfg.rl.ppo_epochs):
        for mb in _split_minibatches(batch, cfg.rl.num_minibatches, np_rng):
          state, m = update(state, {"policy": _put_batch(mb, mesh)})
      metrics.update({k: float(v) for k, v in m.items()}, **collected.metrics, reward_errors=0.0)
    state = state.replace(step=state.step + 1, data_index=state.data_index + stream.taken, rng=rng)
    dt = time.perf_counter() - t0
    metrics.update(step_seconds=dt, rollout_seconds=t_roll, update_seconds=dt - t_roll,
                   tokens_per_second=metrics.get("generated_tokens", 0) / max(t_roll, 1e-9))
    done = step + 1
    skipped_in_a_row = skipped_in_a_row + 1 if metrics.get("skipped", 0) > 0 else 0
    if done % cfg.train.log_every == 0 or done == total or skipped_in_a_row:
      writer.write(done, metrics)
    if skipped_in_a_row > cfg.train.max_skipped_steps:
      ckpt.close()
      raise StepFailed(f"{skipped_in_a_row} consecutive steps skipped (non-finite loss or failing reward) "
                       f"at step {done}; last checkpoint kept at step {ckpt.latest_step()}")
    if done % cfg.train.eval_every == 0 or done == total:
      last_eval = _evaluate(recipe, state, eval_problems, writer, done)
    if done % cfg.train.checkpoint_every == 0 or done == total:
      ckpt.save(done, state)
    bar.update(1)
    bar.set_postfix(reward=f"{metrics.get('reward_mean', float('nan')):.3f}",
                    acc=f"{last_eval.get('accuracy', last_eval.get('acc_t2', float('nan'))):.3f}")
    if stop_after is not None and done - start >= stop_after:
      break
  bar.close()
  ckpt.close()
  writer.close()
  task.close()
  return RunResult(eval=last_eval, params=state.roles["policy"].params)


class ProblemStream:
  """The run's training problems in order from `start` (the checkpointed data_index). A step takes
  prompts_per_step; a recipe that refills its batch (DAPO dynamic sampling) takes more, and
  data_index advances by everything taken, so a resumed run draws what an uninterrupted one would."""

  def __init__(self, task, seed: int, start: int):
    self.task, self.seed, self.start, self.taken = task, seed, start, 0

  def take(self, n: int) -> list:
    problems = self.task.problems(self.seed, self.start + self.taken, n)
    self.taken += n
    return problems


def _evaluate(recipe, state, problems, writer, step: int) -> dict:
  try:
    result = recipe.evaluate(state.roles["policy"].params, problems)
  except Exception as e:  # a failing scorer must not take the run (and its checkpoints) down
    logging.error("step %d: evaluation failed (%s: %s)", step, type(e).__name__, e)
    result = {"errors": 1.0}
  writer.write(step, result, prefix="eval/")
  return result


def _runtime_overrides(model_cfg) -> dict:
  """Fields of the run's model config that are not in a checkpoint's config.json."""
  keys = ("attention_impl", "dtype", "param_dtype", "remat")
  return {k: getattr(model_cfg, k) for k in keys}


def _phase_at(phases, step: int):
  for p in phases:
    if step < p.steps:
      return p
    step -= p.steps
  return phases[-1]


def _micro_batches(cfg: ExperimentConfig) -> int:
  rows = cfg.rollout.prompts_per_step * cfg.rollout.group_size // cfg.rl.num_minibatches
  mbs = cfg.rl.micro_batch_size or rows
  if rows % mbs:
    raise ValueError(f"rl.micro_batch_size={mbs} must divide the mini-batch of {rows} rows")
  return rows // mbs
