"""Speed of the two-role engine, side by side in one process.

  python -m experiments.bench_two_roles --warmup_dir=/tmp/critique_rl_table/seed0/warmup

1. step: one Critique-RL Stage-II step on the toy (actor attempt, K critic critiques, K greedy
   refinements, the critic's reference log-probs and its 2-epoch update) against one single-role
   GRPO step of the same actor (G samples per prompt, update) on about as many generated tokens.
   Both start from the warm-up run in --warmup_dir (real output lengths, not random-model ones).
   Reported: seconds per step (and the last timed step's rollout part), generated tokens, and the
   ratio of seconds per 1k generated tokens.
2. critique turn: the critic's turn continued from the actor's KV cache (self-critique: the critic
   is the actor) against the same parameters held as a separate role, whose turn is handed over as
   one re-prefill of the whole row. Random tiny model, fixed lengths (no EOS); tokens must agree.
Times are medians of --repeats runs after a compile run.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from absl import app, flags, logging

from configs import critique_rl, grpo
from configs.common import tiny_model
from critjax.config import from_configdict
from critjax.models import decoder
from critjax.models.config import ModelConfig
from critjax.rl import protocols
from critjax.rl.protocols import Turn
from critjax.sampling.sampler import Sampler
from critjax.sampling.token_choice import SamplingConfig
from critjax.train import loop
from experiments.critique_rl_table import arm_config

_WARMUP = flags.DEFINE_string("warmup_dir", None, "a critique_rl warm-up run (train.steps=0)")
_REPEATS = flags.DEFINE_integer("repeats", 5, "timed runs of each")
_B = flags.DEFINE_integer("batch", 32, "rows in the critique-turn comparison")
_T = flags.DEFINE_integer("tokens", 128, "attempt and critique tokens in the critique-turn comparison")


class StepRunner:
  """One RL step of a config as train() runs it (collect, reference log-probs, epochs x mini-batches)."""

  def __init__(self, cfg, workdir):
    self.cfg = cfg
    parts = loop.build(cfg, workdir)
    self.recipe, self.mesh = parts["recipe"], parts["mesh"]
    params, axes = loop.init_roles(cfg, self.mesh, parts["roles"])
    self.trainer = loop.Trainer(cfg, self.recipe, parts["roles"], self.mesh)
    self.state = self.trainer.initial_state(params, axes, parts["phases"])
    self.phase = parts["phases"][-1]          # Critique-RL: Stage II (all three turns)
    self.recipe.set_phase(self.phase)
    self.problems = self.recipe.task.problems(0, 0, cfg.rollout.prompts_per_step)

  def step(self, i: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    c = self.recipe.collect(self.trainer.params_view(self.state), self.problems, jax.random.PRNGKey(i))
    rollout = time.perf_counter() - t0
    for role in self.recipe.references():
      c.batches[role]["ref_logp"] = self.trainer.ref_logprobs(self.state, role, c.batches[role]["tokens"])
    update = self.trainer.update(self.phase)
    rng = np.random.default_rng(i)
    for _ in range(self.cfg.rl.ppo_epochs):
      split = {r: loop._split_minibatches(b, self.cfg.rl.num_minibatches, rng, c.group_rows, r)
               for r, b in c.batches.items()}
      for j in range(self.cfg.rl.num_minibatches):
        self.state, m = update(self.state, {r: loop._put_batch(mb[j], self.mesh) for r, mb in split.items()})
    jax.block_until_ready(m)
    return int(c.metrics["generated_tokens"]), rollout


def timed(fn, repeats):
  fn(0)                                       # compile
  times, out = [], None
  for i in range(repeats):
    t0 = time.perf_counter()
    out = fn(i + 1)
    times.append(time.perf_counter() - t0)
  return statistics.median(times), out


def step_comparison(warmup_dir: Path, repeats: int) -> dict:
  two = arm_config(critique_rl.get_config("tiny"), warmup_dir, 1 / 3)
  one = grpo.get_config("tiny")
  one.roles = ml_collections.ConfigDict(dict(policy=dict(init="checkpoint", init_from=str(warmup_dir),
                                                         init_role="actor")))
  one.warmup.steps = 0
  one.tokenizer.update(kind="spm", path=str(warmup_dir / "tokenizer.model"))
  one.model = two.model
  one.rollout.update(prompts_per_step=16, group_size=12, max_new_tokens=two.rollout.max_new_tokens)
  one.rl.ppo_epochs = two.rl.ppo_epochs          # the same update work per generated row
  with tempfile.TemporaryDirectory() as tmp:
    runners = {"two_role": StepRunner(from_configdict(two), Path(tmp) / "two"),
               "grpo": StepRunner(from_configdict(one), Path(tmp) / "one")}
    out = {}
    for name, r in runners.items():
      sec, (tokens, rollout) = timed(r.step, repeats)
      out[name] = {"seconds": sec, "rollout_seconds_last": rollout, "generated_tokens": tokens,
                   "seconds_per_1k_tokens": 1e3 * sec / tokens}
  out["ratio_per_token"] = out["two_role"]["seconds_per_1k_tokens"] / out["grpo"]["seconds_per_1k_tokens"]
  return out


def critique_turn_comparison(b: int, t: int, repeats: int) -> dict:
  cfg = ModelConfig(**{**tiny_model(), "vocab_size": 4096})
  params = decoder.init_params(cfg, jax.random.PRNGKey(0))[0]
  cap = 32 + t + 12 + t
  scfg = SamplingConfig(max_new_tokens=t, temperature=0.0, eos_id=-1)
  sampler = Sampler(cfg, scfg, cap)
  rng = np.random.default_rng(0)
  prompt_ids = {str(i): list(rng.integers(4, 4096, 32)) for i in range(b)}
  instr = list(rng.integers(4, 4096, 12))

  class P:
    def __init__(self, i):
      self.id = self.problem = str(i)

  problems = [P(i) for i in range(b)]
  out = {}
  for name, owner in (("continued", "actor"), ("transferred", "critic")):
    roles = {"actor": protocols.RoleRuntime("actor", "actor", sampler, sampler),
             "critic": protocols.RoleRuntime("critic", owner, sampler, sampler)}
    eng = protocols.Engine(roles, None, lambda text: prompt_ids[text], 0, 32)
    ps = {"actor": params, "critic": params}

    def critique_turn(i, eng=eng, ps=ps):
      ep = protocols.start(eng, "actor", problems, [p.problem for p in problems], ps)
      protocols.take_turn(ep, Turn("actor"), ps, jax.random.PRNGKey(i), greedy=True)
      jax.block_until_ready(ep.rollout.tokens)
      t0 = time.perf_counter()
      protocols.take_turn(ep, Turn("critic", instr), ps, jax.random.PRNGKey(i), greedy=True)
      jax.block_until_ready(ep.rollout.tokens)
      return time.perf_counter() - t0, np.asarray(ep.rollout.tokens)

    critique_turn(0)
    runs = [critique_turn(i + 1) for i in range(repeats)]
    out[name] = {"seconds": statistics.median(r[0] for r in runs), "tokens": runs[-1][1]}
  agree = float((out["continued"]["tokens"] == out["transferred"]["tokens"]).mean())
  return {"rows": b, "tokens_per_turn": t, "continued_seconds": out["continued"]["seconds"],
          "transferred_seconds": out["transferred"]["seconds"],
          "speedup": out["transferred"]["seconds"] / out["continued"]["seconds"], "token_agreement": agree}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  result = {"critique_turn": critique_turn_comparison(_B.value, _T.value, _REPEATS.value)}
  if _WARMUP.value:
    result["step"] = step_comparison(Path(_WARMUP.value), _REPEATS.value)
  print(json.dumps(result, indent=2))


if __name__ == "__main__":
  app.run(main)
