"""The training driver. Reads top to bottom:
workdir -> mesh -> task, tokenizer, recipe, phases -> every role's parameters -> shard -> jitted
updates -> restore -> loop over the phases (warm-up steps, then RL steps), with hooks at phase starts.

A run has named roles (config.roles; one `policy` role when the config has none). Trained roles
have an optimizer and enter the one jitted update; frozen roles, KL references and snapshots live
in `TrainState.frozen`. Everything is one pytree, one orbax checkpoint.

One RL step: the recipe's episodes for B prompts (every role it needs, sampled on one mesh) ->
one batch per trained role -> reference log-probs where the recipe asks -> mu epochs of
`num_minibatches` optimizer steps over all trained roles at once, each accumulated over
micro-batches -> metrics. One warm-up step: the recipe's supervised batch per role -> the same
update with the NLL loss and the warm-up learning rate.

Several processes (config.mesh.distributed; experiments/launch_local.py, the README's pod recipes)
run this same loop on one mesh. Every process builds the same prompts and host batches from the
same seeds and places the rows of its own devices (sharding.shard_batch); the jitted sampler and
update run over all devices; host-side rewards are split by process and gathered (GRPO's
`rewards`); every process saves its shards of each checkpoint; only process 0 writes config.json,
the tokenizer, metrics.jsonl and TensorBoard; a stop signal seen by any process stops all of them
after the same step.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
import zlib
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
from critjax.rl.advantages import GROUP_BASELINED
from critjax.rl.phases import Phase, ResetOptimizer, ResetReference, Snapshot, check_hooks, reference_name
from critjax.rl.recipes import RECIPES
from critjax.train import offline_data, tokenizer_setup
from critjax.train.checkpoint import Checkpointer, check_workdir, load_role_params
from critjax.train.metrics import MetricWriter
from critjax.train.preemption import Preempted, StopRequests
from critjax.train.state import make_optimizer, new_state, state_shardings
from critjax.train.logprobs import resolve_chunk
from critjax.train.update import RoleSpec, sequence_logprobs, update_step

TIMING_KEYS = ("tokens_per_second", "step_seconds", "rollout_seconds", "update_seconds")
WARMUP_DATA_SEED = 7919    # the warm-up's problems: a stream apart from the RL prompts


class StepFailed(RuntimeError):
  pass


def build(cfg: ExperimentConfig, workdir: Path, *, warmup: bool = True):
  """Everything before the parameters; returns a dict (used by experiments and tests). Validates
  roles, recipe args, vocabularies and phase hooks before any compute."""
  roles = cfg.role_configs()
  for name, r in roles.items():
    if r.init == "hf" and not Path(r.init_from).is_dir():
      field = "warmup.checkpoint" if not cfg.roles else f"roles.{name}.init_from"
      raise FileNotFoundError(f"config.{field}={r.init_from!r} is not a directory")
    if r.init == "checkpoint" and not (Path(r.init_from) / "checkpoints").is_dir():
      raise FileNotFoundError(f"config.roles.{name}.init_from={r.init_from!r} holds no checkpoints/ folder")
  mesh = sh.make_mesh(cfg.mesh)
  task = make_task(cfg.task)
  tokenizer = tokenizer_setup.build_tokenizer(cfg, task, workdir)
  for r in {id(r.model): r for r in roles.values()}.values():
    tokenizer_setup.check_vocab(tokenizer, r.model)  # before any compute
  template = get_template(cfg.recipe_args.get("template", task.template))
  recipe = RECIPES.get(cfg.recipe)(cfg, task, tokenizer, template)
  phases = run_phases(cfg, recipe, warmup=warmup)
  check_batches(cfg, recipe, phases)
  check_process_split(cfg, recipe.rows_per_step(), phases, jax.process_count())
  return dict(mesh=mesh, task=task, tokenizer=tokenizer, recipe=recipe, phases=phases, roles=roles)


def check_batches(cfg: ExperimentConfig, recipe, phases: list[Phase]):
  """Settings that only fail together, checked at start-up: a failure after the warm-up would lose it."""
  if not sum(p.steps for p in phases):
    raise ValueError("nothing to run: config.train.steps=0 and no warm-up steps (config.warmup.steps)")
  n, m = cfg.rl.num_minibatches, cfg.rl.micro_batch_size
  for role, rows in recipe.rows_per_step().items():
    where = (f"the {rows} rows role {role!r} trains on per RL step "
             f"(rollout.prompts_per_step={cfg.rollout.prompts_per_step} x rollout.group_size={cfg.rollout.group_size})")
    if rows % n:
      raise ValueError(f"config.rl.num_minibatches={n} does not divide {where}")
    if m and (rows // n) % m:
      raise ValueError(f"config.rl.micro_batch_size={m} does not divide the mini-batch of {rows // n} rows "
                       f"({where} / rl.num_minibatches={n})")
  uses_advantage = "policy" in recipe.loss_kinds().values() and cfg.train.steps > 0
  if uses_advantage and cfg.rollout.group_size == 1 and cfg.rl.advantage in GROUP_BASELINED:
    raise ValueError(f"config.rollout.group_size=1 with config.rl.advantage={cfg.rl.advantage!r}: a group of one "
                     f"has no baseline, so every advantage (and gradient) is 0; use group_size >= 2 or "
                     f"rl.advantage='reinforce'")


def check_process_split(cfg: ExperimentConfig, rows_per_step: dict, phases: list[Phase], processes: int):
  """Over several processes each holds the rows of its own devices: a batch (an RL mini-batch, a
  warm-up batch) whose rows do not split evenly over the processes is refused before any compute."""
  if processes == 1:
    return
  n = cfg.rl.num_minibatches
  for role, rows in rows_per_step.items():
    if cfg.train.steps and (rows // n) % processes:
      raise ValueError(f"config.rollout.prompts_per_step={cfg.rollout.prompts_per_step} x rollout.group_size="
                       f"{cfg.rollout.group_size} / rl.num_minibatches={n}: the {rows // n}-row mini-batch of role "
                       f"{role!r} does not split over {processes} processes")
  if any(p.name == "warmup" for p in phases) and cfg.warmup.batch_size % processes:
    raise ValueError(f"config.warmup.batch_size={cfg.warmup.batch_size} does not split over {processes} processes")


def run_phases(cfg: ExperimentConfig, recipe, *, warmup: bool = True) -> list[Phase]:
  """The supervised warm-up phase (when configured) and the recipe's RL phases. The first RL phase
  starts by giving every trained role a fresh optimizer and every referenced role its reference =
  its parameters at that point (the warm-up model)."""
  roles = recipe.role_cfgs
  trained = [n for n, r in roles.items() if r.trained and r.share is None]
  out = [Phase("warmup", cfg.warmup.steps, kind="sft")] if (warmup and cfg.warmup.steps) else []
  own = list(recipe.phases())
  # A recipe may start with supervised phases of its own (e.g. rejective fine-tuning on data it
  # samples at the phase's start): they run after the warm-up, before every RL phase, and their
  # batches come from recipe.phase_batches.
  n_sft = next((i for i, p in enumerate(own) if p.kind != "sft"), len(own))
  late = [p.name for p in own[n_sft:] if p.kind == "sft"]
  if late or any(p.name == "warmup" for p in own):
    raise ValueError(f"recipe {cfg.recipe!r}: supervised phases must come before its RL phases and not be named "
                     f"'warmup' (phases: {[(p.name, p.kind) for p in own]})")
  sft, rl = out + own[:n_sft], own[n_sft:] or [Phase("rl", 0)]
  auto = tuple(ResetOptimizer(r) for r in trained if sft) + tuple(ResetReference(r) for r in recipe.references())
  rl[0] = dataclasses.replace(rl[0], on_start=auto + tuple(rl[0].on_start))
  check_hooks(sft + rl, roles)
  return sft + rl


def _put_batch(batch: dict, mesh):
  return sh.shard_batch({k: np.asarray(v) for k, v in batch.items()}, mesh)


def _split_minibatches(batch: dict, n: int, rng: np.random.Generator, unit: int = 1, role: str = "policy"):
  """n mini-batches of whole units (a group, a pair: `unit` consecutive rows), in a random order."""
  rows = batch["tokens"].shape[0]
  if rows % n:
    raise ValueError(f"{rows} rollout rows of role {role!r} do not split into rl.num_minibatches={n}")
  unit = unit if (rows % unit == 0 and (rows // unit) % n == 0) else 1
  perm = (rng.permutation(rows // unit)[:, None] * unit + np.arange(unit)).reshape(-1)
  return [{k: v[idx] for k, v in batch.items()} for idx in np.split(perm, n)]


def _role_key(cfg: ExperimentConfig, name: str):
  """Random init: the policy keeps the run's seed (as single-role runs always did); other roles fold their name in."""
  key = jax.random.PRNGKey(cfg.seed)
  return key if name == "policy" else jax.random.fold_in(key, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def init_roles(cfg: ExperimentConfig, mesh, roles: Optional[dict] = None, given: Optional[dict] = None
               ) -> tuple[dict, dict]:
  """Parameters of every role with its own (not shared), created directly in their shardings:
  random (a jitted init with out_shardings), a Hugging Face import streamed onto its shards, an
  earlier run's checkpoint, or a copy of another role; `given` roles take a copy of the parameters
  passed instead (nothing is initialised or imported for them). Returns (params, axes) by role."""
  roles = cfg.role_configs() if roles is None else roles
  given = given or {}
  params, axes = {}, {}
  own = {n: r for n, r in roles.items() if r.share is None}
  for name, r in sorted(own.items(), key=lambda kv: kv[1].init == "copy"):   # copies last
    axes[name] = decoder.logical_axes(r.model)
    if name in given:  # a copy: the update donates the role's buffers and the caller keeps its own
      params[name] = jax.tree.map(jnp.copy, given[name])
      continue
    shapes = jax.eval_shape(lambda: decoder.init_params(r.model, jax.random.PRNGKey(0))[0])
    shardings = sh.tree_shardings(axes[name], shapes, mesh)
    if r.init == "random":
      init = jax.jit(lambda key: decoder.init_params(r.model, key)[0], out_shardings=shardings)
      params[name] = init(_role_key(cfg, name))
    elif r.init == "hf":
      params[name] = _import_hf(r.model, r.init_from, shardings, grow_vocab=bool(cfg.tokenizer.add_tokens))
    elif r.init == "checkpoint":
      params[name] = load_role_params(r.init_from, r.init_role or name, shapes, shardings, field=f"config.roles.{name}")
    else:  # copy
      if roles[r.init_from].model != r.model:
        raise ValueError(f"config.roles.{name}: init='copy' of role {r.init_from!r} needs the same model config")
      params[name] = jax.tree.map(jnp.copy, params[r.init_from])
  return params, axes


def init_model(cfg: ExperimentConfig, mesh):
  """The policy's initial parameters and logical axes (single-role tools and tests)."""
  params, axes = init_roles(cfg, mesh)
  return params["policy"], axes["policy"]


def _import_hf(model_cfg, path: str, shardings, grow_vocab: bool = False):
  """A Hugging Face checkpoint onto its shardings, its config checked against the role's model config.
  With `grow_vocab` (config.tokenizer.add_tokens is set) a model.vocab_size above the checkpoint's
  grows its embedding (and untied head) by mean-initialised rows (critjax.models.vocab): the import
  is then read to the host, grown, and placed."""
  from critjax.models import hf_io
  from critjax.models.vocab import resize_vocab
  loaded_cfg = None
  if grow_vocab:
    from critjax.models import families
    loaded_cfg, _ = families.config_from_hf(hf_io.read_hf_config(Path(path)), **_runtime_overrides(model_cfg))
  if loaded_cfg is not None and model_cfg.vocab_size > loaded_cfg.vocab_size:
    params, loaded = hf_io.import_hf(path, **_runtime_overrides(model_cfg))
    params, loaded = resize_vocab(params, loaded, model_cfg.vocab_size)
    logging.info("%s: vocabulary grown from %d to %d rows (config.tokenizer.add_tokens)", path,
                 loaded_cfg.vocab_size, model_cfg.vocab_size)
    params = jax.device_put(params, shardings)
  else:
    params, loaded = hf_io.import_hf(path, shardings=shardings, **_runtime_overrides(model_cfg))
  diffs = [f"model.{k}: {v!r} (config) != {getattr(loaded, k)!r} ({path})"
           for k, v in model_cfg.to_dict().items() if _comparable(v) != _comparable(getattr(loaded, k))]
  if diffs:
    raise ValueError("the model config does not match the checkpoint:\n  " + "\n  ".join(diffs))
  return params


def _comparable(v):
  return dict(v) if isinstance(v, tuple) and v and isinstance(v[0], tuple) else v


@dataclasses.dataclass
class RunResult:
  eval: dict          # the last evaluation's metrics
  params: Any         # the policy's final parameters (None when the run has no policy role)
  roles: dict = dataclasses.field(default_factory=dict)   # every trained role's final parameters


class Trainer:
  """The run's state machinery: optimizers, specs and jitted updates per phase, hooks."""

  def __init__(self, cfg: ExperimentConfig, recipe, roles: dict, mesh):
    self.cfg, self.recipe, self.roles, self.mesh = cfg, recipe, roles, mesh
    self.trained = [n for n, r in roles.items() if r.trained and r.share is None]
    self.frozen_roles = [n for n, r in roles.items() if not r.trained and r.share is None]
    self.rl_opt = {n: _optimizer(roles[n].optim) for n in self.trained}
    self.sft_opt = {n: make_optimizer(cfg.warmup.learning_rate, grad_clip=roles[n].optim.grad_clip)
                    for n in self.trained}
    self._updates: dict = {}
    # Traced under the model's activation constraints (sh.with_activation_sharding): rows stay split
    # over the batch axes through the forward and backward instead of a layout XLA picks.
    self._ref_logprobs = {n: jax.jit(sh.with_activation_sharding(functools.partial(
        sequence_logprobs, cfg=roles[n].model, temperature=self.temperature(n), chunk=self.chunk(n)), self.mesh))
                          for n in self.trained}

  def chunk(self, role: str) -> int:
    """Positions per log-prob chunk for the role's losses and reference (config.rl.logprob_chunk)."""
    return resolve_chunk(self.cfg.rl.logprob_chunk, self.roles[role].model.vocab_size)

  def temperature(self, role: str) -> float:
    t = self.roles[role].temperature
    return (self.cfg.rollout.temperature if t is None else t) or 1.0   # the sampler's: ratios compare like with like

  def initial_state(self, params: dict, axes: dict, phases: list[Phase]):
    """The first TrainState from every role's own parameters (donated), built by one jitted function
    straight into its shardings: optimizer states, reference and snapshot copies, step and PRNG key.
    (Eagerly, every op on a global array compiles a program of its own: dozens of them, in each process.)"""
    sources = {reference_name(r): r for r in self.recipe.references()}
    sources.update({h.name: h.role for p in phases for h in p.on_start if isinstance(h, Snapshot)})
    first = self.sft_opt if phases and phases[0].kind == "sft" else self.rl_opt
    own = {n: params[n] for n in self.trained + self.frozen_roles}

    def make(own):
      # Copies (distinct outputs): the update donates the trained roles' buffers, which must not be shared.
      frozen = {**{n: own[n] for n in self.frozen_roles}, **{k: own[r] for k, r in sources.items()}}
      return new_state({n: own[n] for n in self.trained}, first, frozen, self.cfg.seed)

    all_axes = {**axes, **{k: axes[r] for k, r in sources.items()}}
    self.shardings = state_shardings(jax.eval_shape(make, own), all_axes, self.mesh)
    return jax.jit(make, out_shardings=self.shardings, donate_argnums=0)(own)

  def params_view(self, state) -> dict:
    """role / snapshot -> parameters, as recipes receive them (shared roles resolve to their owner)."""
    return {**{n: r.params for n, r in state.roles.items()}, **state.frozen}

  def update(self, phase: Phase):
    """The jitted update over all trained roles for a phase's kind (compiled once per kind)."""
    # A supervised phase trains with the NLL unless the recipe names another loss for a role
    # (supervised_loss_kinds, e.g. a meta RM's BCE); one compiled update per distinct set of losses.
    sft_kinds = self.recipe.supervised_loss_kinds(phase) if phase.kind == "sft" else {}
    key = (phase.kind, tuple(sorted(sft_kinds.items())))
    if key not in self._updates:
      if phase.kind == "sft":
        specs = {n: RoleSpec(model=self.roles[n].model, optimizer=self.sft_opt[n], kind=sft_kinds.get(n, "nll"),
                             logprob_chunk=self.chunk(n)) for n in self.trained}
      else:
        kinds = self.recipe.loss_kinds()
        specs = {n: RoleSpec(model=self.roles[n].model, optimizer=self.rl_opt[n], kind=kinds.get(n, "policy"),
                             loss=self.cfg.rl.loss, micro_batch_size=self.cfg.rl.micro_batch_size,
                             temperature=self.temperature(n), logprob_chunk=self.chunk(n)) for n in self.trained}
      self._updates[key] = jax.jit(sh.with_activation_sharding(functools.partial(update_step, specs=specs), self.mesh),
                                   donate_argnums=0,
                                   out_shardings=(self.shardings, None))
    return self._updates[key]

  def ref_logprobs(self, state, role: str, tokens):
    return sh.to_host(self._ref_logprobs[role](state.frozen[reference_name(role)], jnp.asarray(tokens)))

  def start_phase(self, state, phase: Phase):
    """Apply the phase's hooks (only when a run crosses the phase's first step)."""
    roles, frozen = dict(state.roles), dict(state.frozen)
    opts = self.sft_opt if phase.kind == "sft" else self.rl_opt
    for h in phase.on_start:
      if isinstance(h, ResetReference):
        frozen[reference_name(h.role)] = jax.tree.map(jnp.copy, roles[h.role].params)
      elif isinstance(h, Snapshot):
        frozen[h.name] = jax.tree.map(jnp.copy, self.params_view(state)[h.role])
      elif isinstance(h, ResetOptimizer):
        roles[h.role] = roles[h.role].replace(opt_state=opts[h.role].init(roles[h.role].params))
    if phase.on_start:
      logging.info("phase %s starts: %s", phase.name, ", ".join(type(h).__name__ + f"({h.role})" for h in phase.on_start))
    return jax.device_put(state.replace(roles=roles, frozen=frozen), self.shardings)


def _optimizer(o):
  return make_optimizer(o.learning_rate, warmup_steps=o.warmup_steps, b1=o.b1, b2=o.b2,
                        weight_decay=o.weight_decay, grad_clip=o.grad_clip)


@dataclasses.dataclass
class Prepared:
  """A run validated and built, nothing written yet (`prepare`); `train` starts it."""
  parts: dict         # build()'s
  trainer: "Trainer"
  state: Any          # the initial TrainState, on its shardings
  init_params: Any = None


def prepare(cfg: ExperimentConfig, workdir: str | Path, *, init_params=None) -> Prepared:
  """Everything a run needs before it writes to `workdir`: the workdir checked against this config,
  every setting validated, the tokenizer, recipe, phases, every role's parameters and the initial
  state built. A ValueError or OSError from here is bad input (the command line prints it in one
  line); nothing in the workdir has changed."""
  workdir = Path(workdir)
  check_workdir(workdir, cfg.to_json(), write=False)   # another experiment's workdir: stop here
  parts = build(cfg, workdir, warmup=init_params is None)   # validates the rest (roles, recipe args, vocab)
  sh.log_mesh(parts["mesh"])
  params, axes = init_roles(cfg, parts["mesh"], parts["roles"],
                            given=None if init_params is None else {"policy": init_params})
  trainer = Trainer(cfg, parts["recipe"], parts["roles"], parts["mesh"])
  return Prepared(parts, trainer, trainer.initial_state(params, axes, parts["phases"]), init_params)


def train(cfg: ExperimentConfig, workdir: str | Path, *, stop_after: Optional[int] = None,
          init_params=None, prepared: Optional[Prepared] = None) -> RunResult:
  """Runs (or resumes) the experiment in `workdir` (from `prepared` when given, else `prepare`s it).

  Everything is validated and built before the workdir is written: config.json and a trained
  tokenizer are written (atomically) only once the run has started, so a start that fails never
  blocks its corrected rerun. SIGTERM / SIGINT end the run after the current step with a
  checkpoint of it (`Preempted`, see critjax/train/preemption.py); writers are closed on every exit.
  `stop_after` ends this invocation after that many RL steps (tests use it to simulate an
  interruption). `init_params` starts the policy from given parameters instead of init + warm-up
  (ablation sweeps share one warm-up across methods); they also become the reference."""
  workdir = Path(workdir)
  prepared = prepared or prepare(cfg, workdir, init_params=init_params)
  parts, trainer, state = prepared.parts, prepared.trainer, prepared.state
  prepared.state = None            # the update donates the state's buffers: one owner
  task, recipe, phases = parts["task"], parts["recipe"], parts["phases"]
  # Every process has checked the workdir before any writes to it (a peer's fresh config.json would
  # look like a resume).
  sh.sync_processes("critjax.train: every process prepared")
  primary = sh.is_primary()
  # The run has started: from here on the workdir is this run's.
  if primary:
    tokenizer_setup.save_tokenizer(parts["tokenizer"], workdir)
  check_workdir(workdir, cfg.to_json(), write=primary)
  ckpt = Checkpointer(workdir, keep=cfg.train.keep_checkpoints)
  keep_rows = 0                  # no checkpoint: the run starts over, and so does its log
  if ckpt.latest_step() is not None:
    keep_rows = ckpt.log_rows(ckpt.latest_step())
    state = ckpt.restore(state, trainer.shardings)
    logging.info("resumed from step %d", int(state.step))
  writer = MetricWriter(workdir, keep_rows=keep_rows, primary=primary)
  bar = None
  try:
    with StopRequests() as stop:
      bar = tqdm(total=sum(p.steps for p in phases), initial=int(state.step), desc=cfg.name, unit="step",
                 dynamic_ncols=True, disable=not primary)
      state, last_eval = _run(cfg, workdir, task, recipe, trainer, phases, state, ckpt, writer, bar, stop, stop_after)
  finally:
    if bar is not None:
      bar.close()
    ckpt.close()         # waits for a checkpoint still being written
    writer.close()
    task.close()
  trained = {n: r.params for n, r in state.roles.items()}
  policy = trainer.params_view(state).get("policy")
  return RunResult(eval=last_eval, params=policy, roles=trained)


def _run(cfg, workdir, task, recipe, trainer: Trainer, phases, state, ckpt, writer, bar, stop, stop_after):
  """The steps of every phase from the state's step on; returns (state, the last evaluation)."""
  mesh = trainer.mesh
  starts = np.cumsum([0] + [p.steps for p in phases])
  sft_steps = sum(p.steps for p in phases if p.kind == "sft")    # the warm-up comes first
  rl_phases = [p for p in phases if p.kind == "rl"]
  total = int(starts[-1])
  eval_problems = task.eval_problems(cfg.seed, cfg.train.eval_prompts)
  start = int(state.step)
  last_eval: dict = {}
  skipped_in_a_row = 0
  saved = ckpt.latest_step()
  offline_data.restore(recipe, phases, starts, start, workdir)

  def save(step: int, force: bool = False):
    nonlocal saved
    if saved != step:
      ckpt.save(step, state, force=force, log_rows=writer.rows)
      saved = step

  for step in range(start, total):
    i = int(np.searchsorted(starts, step, side="right")) - 1
    phase = phases[i]
    if step == starts[i]:
      state = trainer.start_phase(state, phase)
      offline_data.build(recipe, phase, trainer.params_view(state), cfg.seed, workdir)
    recipe.set_phase(phase)
    recipe.phase_step = step - int(starts[i])     # steps of this phase done before this one
    if phase.kind == "sft":
      state = _warmup_step(cfg, recipe, trainer, state, phase, step, int(starts[i]), mesh, writer, bar)
      if step + 1 == starts[i + 1]:
        save(step + 1, force=True)    # the warm-up is never redone
    else:
      if step == sft_steps:  # the "before" number every comparison needs
        last_eval = _evaluate(recipe, trainer, state, eval_problems, writer, 0)
      state, metrics = _rl_step(cfg, recipe, trainer, state, phase, step - sft_steps, rl_phases.index(phase))
      done = step + 1 - sft_steps            # RL steps done: what metrics, evals and cadences count
      skipped_in_a_row = skipped_in_a_row + 1 if metrics.get("skipped", 0) > 0 else 0
      if done % cfg.train.log_every == 0 or step + 1 == total or skipped_in_a_row:
        writer.write(done, metrics)
      if skipped_in_a_row > cfg.train.max_skipped_steps:
        raise StepFailed(f"{skipped_in_a_row} consecutive steps skipped (non-finite loss or failing reward) "
                         f"at step {done}; last checkpoint kept at step {saved}")
      if done % cfg.train.eval_every == 0 or step + 1 == total:
        last_eval = _evaluate(recipe, trainer, state, eval_problems, writer, done)
      if done % cfg.train.checkpoint_every == 0 or step + 1 == total:
        save(step + 1)
      bar.set_postfix(reward=f"{metrics.get('reward_mean', float('nan')):.3f}",
                      acc=f"{next((last_eval[k] for k in ('accuracy', 'acc_t2', 'acc_after') if k in last_eval), float('nan')):.3f}")
    bar.update(1)
    signum = sh.process_max(stop.signum or 0)     # every process stops after the same step
    if signum:
      save(step + 1, force=True)
      ckpt.wait()
      raise Preempted(signum, step + 1, workdir)
    if stop_after is not None and phase.kind == "rl" and step + 1 - max(start, sft_steps) >= stop_after:
      break
  if not last_eval:
    # Nothing evaluated in this invocation: a run with no RL steps (a warm-up-only base) evaluates
    # its model; a run already finished returns its last logged evaluation (no new rows).
    last_eval = last_logged_eval(workdir) if start >= total else {}
    if not last_eval:
      last_eval = _evaluate(recipe, trainer, state, eval_problems, writer, max(total - sft_steps, 0))
  return state, last_eval


def _rl_step(cfg, recipe, trainer: Trainer, state, phase: Phase, rl_step: int, phase_index: int):
  """One RL step (`rl_step` RL steps done before it): episodes -> batches -> the update; (state, metrics)."""
  t0 = time.perf_counter()
  stream = ProblemStream(recipe.task, cfg.seed, int(state.data_index), cfg.task.pool_size)
  problems = stream.take(cfg.rollout.prompts_per_step)
  rng, key = jax.random.split(state.rng)
  recipe.data_index = int(state.data_index)
  try:
    collected = recipe.collect(trainer.params_view(state), problems, key, refill=stream.take)
  except Exception as e:  # a raising reward function: skip this update, count it, keep going
    logging.error("step %d: rollout/reward failed (%s: %s); update skipped", rl_step + 1, type(e).__name__, e)
    collected = None
  t_roll = time.perf_counter() - t0
  metrics: dict = {"phase": phase_index}
  if collected is None:
    metrics.update(skipped=1.0, reward_errors=1.0)
  else:
    batches = collected.batches
    for role in recipe.references():
      if role in batches:
        batches[role]["ref_logp"] = trainer.ref_logprobs(state, role, batches[role]["tokens"])
    np_rng = np.random.default_rng([cfg.seed, rl_step])
    update = trainer.update(phase)
    for _ in range(cfg.rl.ppo_epochs):
      split = {r: _split_minibatches(b, cfg.rl.num_minibatches, np_rng, collected.group_rows, r)
               for r, b in batches.items()}
      for j in range(cfg.rl.num_minibatches):
        state, m = update(state, {r: _put_batch(mbs[j], trainer.mesh) for r, mbs in split.items()})
    metrics.update({k: float(v) for k, v in m.items()}, **collected.metrics, reward_errors=0.0)
  state = state.replace(step=state.step + 1, data_index=state.data_index + stream.taken, rng=rng)
  dt = time.perf_counter() - t0
  metrics.update(step_seconds=dt, rollout_seconds=t_roll, update_seconds=dt - t_roll,
                 tokens_per_second=metrics.get("generated_tokens", 0) / max(t_roll, 1e-9))
  return state, metrics


def _warmup_step(cfg, recipe, trainer: Trainer, state, phase: Phase, step: int, first: int, mesh, writer, bar):
  """One supervised step (global `step`; the phase starts at `first`) of every role the phase's
  batches fit. Deterministic in the seed."""
  if phase.name == "warmup":
    w = cfg.warmup
    problems = recipe.task.problems(cfg.seed + WARMUP_DATA_SEED, step * w.batch_size, w.batch_size)
    host = recipe.warmup_batches(problems)
  else:                       # a recipe's own supervised phase: its k-th batch (deterministic in k)
    host = recipe.phase_batches(phase, step - first)
  batches = {r: _put_batch(b, mesh) for r, b in host.items()}
  state, m = trainer.update(phase)(state, batches)
  state = state.replace(step=state.step + 1)
  if (step - first) % 10 == 0 or step - first == phase.steps - 1:
    m = {k: float(v) for k, v in m.items()}
    writer.write(step, {"phase": 0, **m}, prefix=f"{phase.name}/")
    bar.set_postfix({k: f"{v:.3f}" for k, v in m.items() if k.endswith("nll")})
  return state


class ProblemStream:
  """The run's training problems in order from `start` (the checkpointed data_index). A step takes
  prompts_per_step; a recipe that refills its batch (DAPO dynamic sampling) takes more, and
  data_index advances by everything taken, so a resumed run draws what an uninterrupted one would.
  `pool` > 0 (config.task.pool_size): the stream cycles through its first `pool` problems, the
  members of a contamination study; the warm-up and held-out problems are other streams."""

  def __init__(self, task, seed: int, start: int, pool: int = 0):
    self.task, self.seed, self.start, self.taken, self.pool = task, seed, start, 0, pool

  def take(self, n: int) -> list:
    i0 = self.start + self.taken
    self.taken += n
    if not self.pool:
      return self.task.problems(self.seed, i0, n)
    return [self.task.problems(self.seed, i % self.pool, 1)[0] for i in range(i0, i0 + n)]


def _evaluate(recipe, trainer: Trainer, state, problems, writer, step: int) -> dict:
  try:
    result = recipe.evaluate(trainer.params_view(state), problems)
  except Exception as e:  # a failing scorer must not take the run (and its checkpoints) down
    logging.error("step %d: evaluation failed (%s: %s)", step, type(e).__name__, e)
    result = {"errors": 1.0}
  writer.write(step, result, prefix="eval/")
  return result


def last_logged_eval(workdir: Path) -> dict:
  """The last evaluation a run in `workdir` logged (metrics.jsonl), without the eval/ prefix; {} if none."""
  from critjax.train.metrics import read_metrics
  path = Path(workdir) / "metrics.jsonl"
  rows = [r for r in read_metrics(workdir) if any(k.startswith("eval/") for k in r)] if path.exists() else []
  return {k[len("eval/"):]: v for k, v in rows[-1].items() if k.startswith("eval/")} if rows else {}


def _runtime_overrides(model_cfg) -> dict:
  """Fields of the run's model config that are not in a checkpoint's config.json."""
  keys = ("attention_impl", "dtype", "param_dtype", "remat", "scalar_head")
  return {k: getattr(model_cfg, k) for k in keys}
