"""SPC, the self-play critic (Chen et al., arXiv 2504.19162; ALGORITHMS.md Sec. 8): a sneaky generator
and a step critic, two copies of one base model, trained against each other.

Roles (both trained; configs/spc.py starts the critic as a copy of the generator's init, one base):
  generator  reads (problem, the solution's steps before k, the correct step k, an error type) and
             rewrites step k into a subtly wrong one
  critic     reads (problem, a partial solution) and judges its LAST step: an analysis (on the toy,
             the column re-worked), then <Answer>Correct</Answer> / <Answer>Incorrect</Answer>
             (critjax.rl.verdicts 'answer_tag')
On the toy (critjax.data.arithmetic) a step is a column of the worked solution; the error types
change an operand digit, the carry into the column, or the column's sum (ArithmeticTask.sneaky_step).

Rounds (phases):
  round 0    the loop's supervised warm-up (warmup_batches): the generator on task-made sneaky steps
             of a given error type; the critic on task-made critiques of last steps, half right steps
             and half the first wrong step of a task-made flawed solution (Task.flawed_solution: the
             paper's SFT critic learns from real errors, PRM800K; its sneaky steps are other errors)
  round r>0  self-play: the CURRENT generator (trained online in the round) plays a frozen snapshot
             of the critic as it was at the round's start, i.e. the previous round's critic
             (Snapshot('critic', 'critic_prev') at each round's start); the critic learns offline
             from those games. ALGORITHMS.md: pairing the current generator with the previous-round
             critic keeps the game balanced (details UNVERIFIED); the released code trains the
             round-2 critic on round-1 and round-2 game data judged by earlier critics, which this
             pairing matches. Both optimizers restart at each later round (the released rounds are
             separate fine-tuning runs, each with its own 10 warm-up steps).

One RL step, B problems: a step k and an error type per problem (seeded by the problem's id), G
sneaky rewrites each by the generator (rollout.group_size), then per rewrite:
  unchanged  the rewrite equals the original step: not a game (counted: unchanged_share)
  validity   N completions (recipe_args.completions) by a solver from the original and from the
             rewritten step; a real error only if the success rate drops by more than
             recipe_args.validity_margin. Otherwise invalid: not a game, and discarded from the
             critic's data, ALGORITHMS.md's "safest default" (counted: invalid_share). The toy's
             solver is task-made (Task.step_success): it trusts the prefix and works the remaining
             columns right, slipping with probability recipe_args.solver_slip; the paired original /
             rewritten completions draw the same slips. Why not the model: the check's purpose is to
             ask whether the step really breaks the solution; the arithmetic's exact answer is that
             verdict without sampling cost or a solver model's own noise, and the slips keep N and
             the threshold meaningful (a prefix whose completions fail anyway cannot be made worse).
             The paper's completions are independent samples; pairing is a variance reduction.
  game       the previous-round critic (T = its sampling temperature) judges the partial solution
             ending in the rewrite: flagged Incorrect -> r_critic = +1, r_generator = -1; fooled
             (Correct, or no verdict) -> r_critic = -1, r_generator = +1
With recipe_args.judge_original (default) the critic also judges each problem's original step, G
times like its rewrites (reward +1 for Correct): the games alone are all wrong steps, and on them a
critic that always says Incorrect wins (on the toy it collapsed to that within one round without
them); with them its data is half right, half wrong steps, like the paper's PRM800K step pairs (the
paper's balancing of its RL data is UNVERIFIED).

Updates:
  critic     the released offline loss (critjax.rl.spc_losses, LOSSES['spc_critic']): length-normalised
             sequence ratio against the frozen SFT critic (the loop's reference: ResetReference at the
             first round, never reset later, as the released code's ref_model is SPC-Critic-0), clipped
             at rl.loss.clip_low / clip_high = 0.2, plus recipe_args.sft_coef (0.15) x the NLL of
             recipe_args.sft_rows task-made SFT critiques per step (round 0's data)
  generator  the engine's 'policy' loss (PPO-clip, token ratio against the behaviour log-probs,
             seq-mean-token-mean) with advantage = rl.advantage of its reward, 'reinforce' in the config
             (A = r, the spec's raw +-1; one epoch, so the ratio is 1: REINFORCE). Its reward for an
             unchanged or invalid rewrite is recipe_args.invalid_reward (-1: a rewrite that is no real
             error failed its task; 0: left out of its loss). UNVERIFIED: the paper's handling of
             these for the generator, and whether it updates the generator with this same loss.

Evaluation (greedy, on held-out problems, comparable across rounds: every choice seeded by the
problem's id): the critic's accuracy on the right step (correct_acc), on held-out sneaky steps made by
the task's fixed error procedure (sneaky_acc, per type), on the first wrong step of task-made flawed
solutions, half slips and half misread digits (real_error_acc), the balanced pair accuracies (the
paper's PRM800K step pairs), and the current generator's attack: valid / unchanged shares and its
fooling rate against the current critic (fool_rate) and against the frozen SFT critic (fool_rate_sft).
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from critjax.data.tasks import Problem
from critjax.data.templates import StepGameTemplate
from critjax.rl import episodes, protocols
from critjax.rl import spc_losses  # noqa: F401  (registers LOSSES['spc_critic'])
from critjax.rl.advantages import ADVANTAGES
from critjax.rl.phases import Phase, ResetOptimizer, Snapshot, reference_name
from critjax.rl.protocols import Turn
from critjax.rl.recipes.base import RECIPES, Collected, Recipe
from critjax.rl.recipes.multi_turn import parse_args
from critjax.rl.verdicts import VERDICTS

PREV = "critic_prev"                       # the snapshot the generator plays in a round
REF = reference_name("critic")             # the frozen SFT critic (the loop's reference)
TASK_NEEDS = ("worked_steps", "error_types", "sneaky_step", "step_success", "real_error_step")
# Streams of the host-side random choices, each seeded by (seed, problem id, stream).
PLAN, SOLVER, SFT, EVAL_PLAN, EVAL_STEPS = range(5)


@dataclasses.dataclass(frozen=True)
class SPCArgs:
  template: Optional[str] = None      # a StepGameTemplate: spc_arith (toy) | spc_math
  rounds: int = 2                     # self-play rounds after round 0; train.steps split evenly
  completions: int = 4                # N solver completions per step in the validity check
  solver_slip: float = 0.1            # the toy solver's chance to slip on each remaining column
  validity_margin: float = 0.0        # real error iff success(original) - success(sneaky) > margin
  invalid_reward: float = -1.0        # the generator's reward for an unchanged or invalid rewrite
  judge_original: bool = True         # the critic also judges (and learns from) the original steps
  sft_coef: float = 0.15              # the released lm_sft_coeff
  sft_rows: int = 8                   # SFT critiques in the critic's batch per step
  loss_norm: str = "means"            # 'means' (the formula) | 'per_sample' (the released script's mixing)
  verdict: str = "answer_tag"

  def __post_init__(self):
    if self.template is None:
      raise ValueError("config.recipe_args.template must name a step-game template (spc_arith, spc_math)")
    if self.rounds < 1:
      raise ValueError(f"config.recipe_args.rounds={self.rounds} must be >= 1")
    if self.completions < 1:
      raise ValueError(f"config.recipe_args.completions={self.completions} must be >= 1")
    if not 0.0 <= self.solver_slip < 1.0:
      raise ValueError(f"config.recipe_args.solver_slip={self.solver_slip} must be in [0, 1)")
    if not 0.0 <= self.validity_margin < 1.0:
      raise ValueError(f"config.recipe_args.validity_margin={self.validity_margin} must be in [0, 1)")
    if self.sft_coef < 0 or self.sft_rows < 0:
      raise ValueError("config.recipe_args.sft_coef and sft_rows must be >= 0")
    if self.loss_norm not in ("means", "per_sample"):
      raise ValueError(f"config.recipe_args.loss_norm={self.loss_norm!r}; expected 'means' or 'per_sample'")
    if self.verdict not in VERDICTS:
      raise ValueError(f"config.recipe_args.verdict={self.verdict!r}; expected one of {VERDICTS.names()}")


@dataclasses.dataclass
class Attack:
  """The generator's rewrites of one batch: rows i*n .. i*n+n-1 rewrite problem i's step."""
  episode: protocols.Episode
  problems: list                      # (N,) the problem of each row
  steps: list                         # (N,) k of each row
  texts: list                         # (N,) the rewrites
  unchanged: np.ndarray               # (N,) bool
  valid: np.ndarray                   # (N,) bool: a real error (a game)
  drop: np.ndarray                    # (N,) success(original) - success(rewrite)


@RECIPES.register("spc")
class SPC(Recipe):
  roles = {"generator": "trained", "critic": "trained"}

  def __init__(self, cfg, task, tokenizer, template):
    super().__init__(cfg, task, tokenizer, template)
    self.engine.alias(REF, like="critic")       # the frozen SFT critic, sampled in evaluation
    self._check_lengths()

  def check_args(self, args: dict):
    self.args = parse_args(SPCArgs, dict(args))
    self.parse = VERDICTS.get(self.args.verdict)
    if not isinstance(self.template, StepGameTemplate):
      raise ValueError(f"config.recipe_args.template={self.args.template!r} is not a step-game template "
                       f"(critjax.data.templates.StepGameTemplate: spc_arith, spc_math)")
    missing = [n for n in TASK_NEEDS if not hasattr(self.task, n)]
    if missing or self.cfg.task.answer_first:
      raise ValueError(f"recipe 'spc' needs a task with worked steps, an error taxonomy and a solver "
                       f"({', '.join(TASK_NEEDS)}): the arithmetic task with task.answer_first=False; "
                       f"task {self.cfg.task.name!r} has none of {missing or ['the default format']}")

  def references(self) -> list[str]:
    """The critic's loss always needs its SFT reference; the generator's only for a KL term."""
    return ["critic"] + (["generator"] if self.cfg.rl.loss.kl_coef > 0 else [])

  def loss_kinds(self) -> dict[str, str]:
    return {"generator": "policy", "critic": "spc_critic"}

  def rows_per_step(self) -> dict[str, int]:
    b, g = self.cfg.rollout.prompts_per_step, self.cfg.rollout.group_size
    return {"generator": b * g, "critic": b * g * (1 + self.args.judge_original) + self.args.sft_rows}

  def capacity(self) -> int:
    roles = self.cfg.role_configs()
    return self.cfg.rollout.max_prompt_len + max(roles[n].max_new_tokens or self.cfg.rollout.max_new_tokens
                                                 for n in ("generator", "critic"))

  def phases(self) -> list[Phase]:
    out = []
    for i, steps in enumerate(round_steps(self.cfg.train.steps, self.args.rounds), 1):
      hooks = (Snapshot("critic", PREV),)
      if i > 1:
        hooks = (ResetOptimizer("generator"), ResetOptimizer("critic")) + hooks
      out.append(Phase(f"round{i}", steps, {"round": i}, on_start=hooks))
    return [p for p in out if p.steps > 0]

  def _check_lengths(self):
    """The longest prompt and target of the largest problem fit the configured lengths (start-up, so a
    too-small setting never fails after the warm-up)."""
    n = self.cfg.task.max_digits
    p = Problem("length-check", f"{'9' * n}+{'9' * n}", "")
    steps = self.task.worked_steps(p)
    k, t = len(steps) - 1, self.template
    kinds = self.task.error_types()
    longest = lambda texts: max(len(self.encode_prompt(x)) for x in texts)
    prompt = max(longest([t.sneaky_prompt(p.problem, steps[:k], steps[k], e) for e in kinds]),
                 longest([t.critic_prompt(p.problem, steps[:k], f"{steps[k]}9")]))
    if prompt > self.cfg.rollout.max_prompt_len:
      raise ValueError(f"an SPC prompt of a {n}-digit problem has {prompt} tokens > rollout.max_prompt_len="
                       f"{self.cfg.rollout.max_prompt_len}")
    roles = self.cfg.role_configs()
    for role, text in (("generator", f" {steps[k]}9"), ("critic", t.critique(steps[k], False))):
      need, have = len(self.tokenizer.encode(text)) + 1, roles[role].max_new_tokens or self.cfg.rollout.max_new_tokens
      if need > have:
        raise ValueError(f"the {role}'s target {text!r} needs {need} tokens (with EOS) > its max_new_tokens={have} "
                         f"(roles.{role}.max_new_tokens)")

  # --- host-side pieces ----------------------------------------------------------------------------
  def _rng(self, problem, stream: int) -> np.random.Generator:
    return np.random.default_rng([self.cfg.seed, zlib.crc32(problem.id.encode()), stream])

  def _plan(self, problem, stream: int) -> tuple[int, str]:
    """(k, error type) for a problem: the step the generator attacks and how."""
    rng, kinds = self._rng(problem, stream), self.task.error_types()
    return int(rng.integers(len(self.task.worked_steps(problem)))), kinds[int(rng.integers(len(kinds)))]

  def _row(self, prompt: str, completion: str) -> tuple[list, list]:
    ids = self.encode_prompt(prompt)
    out = episodes.completion_ids(self.tokenizer, prompt, ids, completion)
    return list(ids) + out, [(len(ids), len(ids) + len(out))]

  def _critic_sft_row(self, problem, rng) -> tuple[list, list]:
    """A task-made critique: half the right step k, half the first wrong step of a flawed solution."""
    steps = self.task.worked_steps(problem)
    if rng.random() < 0.5:
      k = int(rng.integers(len(steps)))
      last = steps[k]
    else:
      k, last = self.task.real_error_step(problem, "slip", rng)
    return self._row(self.template.critic_prompt(problem.problem, steps[:k], last),
                     self.template.critique(steps[k], last == steps[k]))

  # --- the game ------------------------------------------------------------------------------------
  def _attack(self, params, problems, plans, rng, num_samples: int, greedy: bool = False) -> Attack:
    """The generator's rewrites of each problem's planned step and their validity check."""
    t, a = self.template, self.args
    steps = [self.task.worked_steps(p) for p in problems]
    prompts = [t.sneaky_prompt(p.problem, s[:k], s[k], kind) for p, s, (k, kind) in zip(problems, steps, plans)]
    ep = protocols.run(self.engine, (Turn("generator"),), problems, prompts, params, rng,
                       num_samples=num_samples, greedy=greedy)
    texts = [" ".join(x.split()) for x in ep.texts(0)]
    rows = [i for i in range(len(problems)) for _ in range(num_samples)]
    seeds = [(self.cfg.seed, zlib.crc32(p.id.encode()), SOLVER) for p in problems]
    base = [self.task.step_success(p, k, s[k], a.completions, a.solver_slip, sd)
            for p, s, (k, _), sd in zip(problems, steps, plans, seeds)]
    unchanged = np.array([texts[r] == steps[i][plans[i][0]] for r, i in enumerate(rows)])
    drop = np.array([0.0 if unchanged[r] else base[i] - self.task.step_success(
        problems[i], plans[i][0], texts[r], a.completions, a.solver_slip, seeds[i]) for r, i in enumerate(rows)])
    valid = ~unchanged & (drop > a.validity_margin)
    return Attack(ep, [problems[i] for i in rows], [plans[i][0] for i in rows], texts, unchanged, valid, drop)

  def _judge(self, params, role: str, items, rng, greedy: bool = False):
    """`role` judges the last step of each (problem, k, last): (episode, (N,) verdicts True/False/None)."""
    problems = [p for p, _, _ in items]
    prompts = [self.template.critic_prompt(p.problem, self.task.worked_steps(p)[:k], last) for p, k, last in items]
    ep = protocols.run(self.engine, (Turn(role),), problems, prompts, params, rng, greedy=greedy)
    return ep, np.array([self.parse(x).final for x in ep.texts(0)], dtype=object)

  # --- RL ------------------------------------------------------------------------------------------
  def collect(self, params, problems, rng, refill=None) -> Collected:
    b, g, a = len(problems), self.cfg.rollout.group_size, self.args
    k_gen, k_judge = jax.random.split(rng)
    plans = [self._plan(p, PLAN) for p in problems]
    atk = self._attack(params, problems, plans, k_gen, g)
    originals = [(p, k, self.task.worked_steps(p)[k]) for p, (k, _) in zip(problems, plans)
                 for _ in range(g)] if a.judge_original else []
    judge_ep, final = self._judge(params, PREV, list(zip(atk.problems, atk.steps, atk.texts)) + originals, k_judge)
    n = b * g
    caught = final[:n] == False  # noqa: E712  (None, no verdict, is not a catch)
    game = atk.valid
    r_gen = np.where(game, np.where(caught, -1.0, 1.0), a.invalid_reward).astype(np.float32)
    adv = np.asarray(ADVANTAGES.get(self.cfg.rl.advantage)(jnp.asarray(r_gen.reshape(b, g)))).reshape(-1, 1)
    gen_batch = _widen(episodes.policy_batch(atk.episode.rollout, adv, row_valid_n=game | (a.invalid_reward != 0),
                                             trained_turns=[0]), self.capacity(), self.pad_id)
    right = np.concatenate([caught, final[n:] == True])  # noqa: E712
    keep = np.concatenate([game, np.ones(len(originals), bool)])
    sft = [self._critic_sft_row(p, self._rng(p, SFT)) for p in (problems * (a.sft_rows // b + 1))[:a.sft_rows]]
    critic_batch = self._critic_batch(judge_ep, np.where(right, 1.0, -1.0), keep, sft)
    lengths = np.concatenate([atk.episode.lengths()[:, 0], judge_ep.lengths()[:, 0]])
    metrics = {"round": self.phase.args.get("round", 1), "games": int(game.sum()),
               "game_share": float(game.mean()), "unchanged_share": float(atk.unchanged.mean()),
               "invalid_share": float((~atk.unchanged & ~game).mean()),
               "fool_rate": float((game & ~caught).sum() / game.sum()) if game.any() else float("nan"),
               "critic_game_acc": float(right[keep].mean()),
               "verdict_missing": float(np.mean([v is None for v in final])),
               "success_drop": float(atk.drop[~atk.unchanged].mean()) if (~atk.unchanged).any() else 0.0,
               "reward_mean": float(r_gen.mean()),
               "sneaky_length": float(atk.episode.lengths()[:, 0].mean()),
               "critique_length": float(judge_ep.lengths()[:, 0].mean()),
               "generated_tokens": int(lengths.sum())}
    if originals:
      metrics["original_acc"] = float(right[n:].mean())
    return Collected(batches={"generator": gen_batch, "critic": critic_batch}, metrics=metrics)

  def _critic_batch(self, judge_ep, adv: np.ndarray, keep: np.ndarray, sft_rows: list) -> dict:
    """Game rows (the previous critic's judgments, `keep` in the loss) then SFT rows, with the
    per-row weights that make spc_critic's (sum, denom) the released loss (critjax/rl/spc_losses.py)."""
    games = episodes.policy_batch(judge_ep.rollout, np.zeros((len(adv), 1), np.float32), row_valid_n=keep,
                                  trained_turns=[0])
    parts = [_widen(games, self.capacity(), self.pad_id)]
    if sft_rows:
      parts.append(_rows_batch(sft_rows, self.capacity(), self.pad_id))
    n_g, n_s, a = int(keep.sum()), len(sft_rows), self.args
    if a.loss_norm == "means":
      w_game, w_sft = 1.0 / max(n_g, 1), a.sft_coef / max(n_s, 1)
    else:
      w_game = w_sft = 1.0 / max(n_g + n_s, 1)
      w_sft *= a.sft_coef
    rows = len(adv) + n_s
    return {"tokens": np.concatenate([x["tokens"] for x in parts]).astype(np.int32),
            "mask": np.concatenate([x["mask"] for x in parts]).astype(np.float32),
            "seq_adv": np.concatenate([adv, np.zeros(n_s)]).astype(np.float32),
            "seq_sft": np.concatenate([np.zeros(len(adv)), np.ones(n_s)]).astype(np.float32),
            "seq_weight": np.concatenate([keep * w_game, np.full(n_s, w_sft)]).astype(np.float32),
            "seq_share": np.full(rows, 1.0 / rows, np.float32)}

  def evaluate(self, params, problems) -> dict:
    """Greedy critic on held-out right, sneaky and real-error steps, and the generator's greedy attack."""
    plans = [self._plan(p, EVAL_PLAN) for p in problems]
    rngs = [self._rng(p, EVAL_STEPS) for p in problems]
    right, held, real = [], [], []
    for i, (p, (k, kind), rng) in enumerate(zip(problems, plans, rngs)):
      right.append((p, k, self.task.worked_steps(p)[k]))
      held.append((p, k, self.task.sneaky_step(p, k, kind, rng)))
      real.append((p, *self.task.real_error_step(p, "slip" if i % 2 == 0 else "misread", rng)))
    atk = self._attack(params, problems, plans, self.eval_rng, 1, greedy=True)
    attacks = list(zip(atk.problems, atk.steps, atk.texts))
    _, final = self._judge(params, "critic", right + held + real + attacks, self.eval_rng, greedy=True)
    n = len(problems)
    ok, flag = final == True, final == False  # noqa: E712
    kinds = np.array([kind for _, kind in plans])
    out = {"correct_acc": float(ok[:n].mean()), "sneaky_acc": float(flag[n:2 * n].mean()),
           "real_error_acc": float(flag[2 * n:3 * n].mean()),
           "verdict_missing": float(np.mean([v is None for v in final[:3 * n]])),
           "gen_valid": float(atk.valid.mean()), "gen_unchanged": float(atk.unchanged.mean()),
           "fool_rate": _rate(~flag[3 * n:], atk.valid), "n": n}
    out["sneaky_pair_acc"] = (out["correct_acc"] + out["sneaky_acc"]) / 2
    out["real_pair_acc"] = (out["correct_acc"] + out["real_error_acc"]) / 2
    for kind in self.task.error_types():
      out[f"sneaky_acc_{kind}"] = _rate(flag[n:2 * n], kinds == kind)
    half = np.arange(n) % 2 == 0
    out.update(real_acc_slip=_rate(flag[2 * n:3 * n], half), real_acc_misread=_rate(flag[2 * n:3 * n], ~half))
    if self.cfg.train.steps > 0:     # the reference is the SFT critic once RL has started
      _, sft_final = self._judge(params, REF, attacks, self.eval_rng, greedy=True)
      out["fool_rate_sft"] = _rate(sft_final != False, atk.valid)  # noqa: E712
    return out

  # --- round 0: the supervised warm-up ---------------------------------------------------------------
  def warmup_batches(self, problems) -> dict:
    """Generator: [sneaky prompt] -> a task-made rewrite of the given type; critic: [critic prompt] ->
    a task-made critique (see _critic_sft_row). One problem feeds one row of each."""
    rng = np.random.default_rng([self.cfg.seed, zlib.crc32(problems[0].id.encode())])
    kinds, gen_rows, critic_rows = self.task.error_types(), [], []
    for p in problems:
      steps = self.task.worked_steps(p)
      k, kind = int(rng.integers(len(steps))), kinds[int(rng.integers(len(kinds)))]
      sneaky = self.task.sneaky_step(p, k, kind, rng)
      gen_rows.append(self._row(self.template.sneaky_prompt(p.problem, steps[:k], steps[k], kind), " " + sneaky))
      critic_rows.append(self._critic_sft_row(p, rng))
    cap = self.capacity()
    return {"generator": _rows_batch(gen_rows, cap, self.pad_id), "critic": _rows_batch(critic_rows, cap, self.pad_id)}


def round_steps(total: int, rounds: int) -> list[int]:
  """RL steps of each self-play round: train.steps split as evenly as it goes, earlier rounds longer."""
  return [total // rounds + (i < total % rounds) for i in range(rounds)]


def _rate(hit: np.ndarray, where: np.ndarray) -> float:
  """Share of `hit` among rows `where`; NaN when there are none (no valid attack to fool with)."""
  return float(np.asarray(hit, bool)[where].mean()) if where.any() else float("nan")


def _widen(batch: dict, length: int, pad_id: int) -> dict:
  """A policy batch's (N, T) arrays padded to T = `length`: every SPC batch has one width per role,
  so the one jitted update over both roles compiles once, not once per pair of bucketed lengths
  (on the toy, compiling dominated the run)."""
  fill = lambda k: pad_id if k == "tokens" else 0.0
  return {k: np.pad(v, ((0, 0), (0, length - v.shape[1])), constant_values=fill(k)) for k, v in batch.items()}


def _rows_batch(rows: list, cap: int, pad_id: int) -> dict:
  """(ids, loss spans) rows -> an nll batch of width `cap` (see _widen)."""
  tokens = np.full((len(rows), cap), pad_id, np.int32)
  mask = np.zeros((len(rows), cap), np.float32)
  for i, (ids, spans) in enumerate(rows):
    if len(ids) > cap:
      raise ValueError(f"an SPC supervised row of {len(ids)} tokens exceeds the episode capacity {cap} "
                       "(rollout.max_prompt_len + the roles' max_new_tokens)")
    tokens[i, :len(ids)] = ids
    for a, b in spans:
      mask[i, a:b] = 1.0
  return {"tokens": tokens, "mask": mask}
