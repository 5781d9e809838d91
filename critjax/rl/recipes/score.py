"""SCoRe: multi-turn self-correction RL (Kumar et al., arXiv 2409.12917) and its two-stage schedule.

Episode: [prompt][y1][instruction][y2]...[y_K]; each attempt continues from the KV cache of the
previous one (`Sampler.append` + `decode`), never re-prefilling.

  Stage I  (eq. 3): reward only the last attempt; strong KL beta2 on attempt-1 tokens keeps turn 1
           near the base model, beta1 on the rest (critjax.rl.score_rewards).
  Stage II (eq. 4): every attempt rewarded; attempt k > 1 shaped by alpha * (r_k - r_{k-1}); beta1 KL.
  Estimator: REINFORCE with the KL penalty to a fixed reference (the paper's), i.e.
  `rl.advantage = 'reinforce'`; a group baseline ('rloo', 'grpo') is an explicit option, per turn.

recipe_args (all optional): template, attempts (K, default 2), alpha (10), beta1 (0.01), beta2 (0.1),
stage1_steps (default: a third of train.steps), shaping (True). `stage1_steps = 0` is the
"w/o Stage I" ablation, `shaping = False` the "w/o reward shaping" one.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from critjax.eval.self_correction import self_correction_metrics
from critjax.rl import episodes
from critjax.rl.advantages import ADVANTAGES
from critjax.rl.recipes.base import RECIPES, Collected, Phase, Recipe
from critjax.rl.score_rewards import TURN_REWARDS, validate_score_hparams


@dataclasses.dataclass(frozen=True)
class ScoreArgs:
  template: Optional[str] = None
  attempts: int = 2
  alpha: float = 10.0
  beta1: float = 0.01
  beta2: float = 0.1
  stage1_steps: Optional[int] = None
  shaping: bool = True

  def __post_init__(self):
    try:
      validate_score_hparams(alpha=self.alpha, beta1=self.beta1, beta2=self.beta2, num_attempts=self.attempts)
    except ValueError as e:
      raise ValueError(f"config.recipe_args.{e}") from None
    if self.stage1_steps is not None and self.stage1_steps < 0:
      raise ValueError(f"config.recipe_args.stage1_steps must be >= 0, got {self.stage1_steps}")


def parse_args(cls, args: dict):
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(args) - known)
  if unknown:
    raise ValueError(f"unknown field(s) {', '.join('config.recipe_args.' + u for u in unknown)}; known: {sorted(known)}")
  return cls(**args)


class MultiTurn(Recipe):
  """Shared K-attempt rollout and evaluation (used by SCoRe and the self-correction baselines)."""
  args_cls = ScoreArgs

  def check_args(self, args: dict):
    self.args = parse_args(self.args_cls, dict(args))
    self.turns = self.args.attempts

  def instruction_ids(self) -> list[int]:
    ids = self.context_ids(self.template.correction_prompt())
    if not ids:
      raise ValueError(f"template {self.template.name!r}: the correction instruction encodes to no tokens")
    return ids

  def instruction_budget(self) -> int:
    return len(self.instruction_ids())

  def run_turns(self, sampler, params, problems, rng, num_samples: int, chunks: list):
    """Generates len(chunks) turns per row; chunks[k] (token ids or None) is appended before turn k.

    Returns the rollout and the decoded text of every turn, [K][N]."""
    ro = self.start(params, problems, num_samples, sampler)
    n = len(problems) * num_samples
    keys = jax.random.split(rng, len(chunks))
    texts = []
    for k, chunk in enumerate(chunks):
      if chunk:
        ro = sampler.append(params, ro, np.tile(chunk, (n, 1)), np.full((n,), len(chunk), np.int32))
      ro = sampler.decode(params, ro, keys[k], segment_id=k)
      texts.append(episodes.turn_texts(self.tokenizer, ro, k))
    return ro, texts

  def attempts(self, sampler, params, problems, rng, num_samples: int, turns: Optional[int] = None):
    """K attempts separated by the correction instruction: rollout, (N, K) correctness, texts [K][N]."""
    instr = self.instruction_ids()
    k = self.turns if turns is None else turns
    ro, texts = self.run_turns(sampler, params, problems, rng, num_samples, [None] + [instr] * (k - 1))
    rep = [p for p in problems for _ in range(num_samples)]
    correct = np.stack([self.task.score(rep, t) for t in texts], axis=1)     # (N, K)
    return ro, correct, texts

  def warmup_batch(self, problems) -> dict:
    """Two-attempt format: [prompt][attempt][instruction][solution], loss on every attempt.

    Mostly the attempt is the correct solution (answer again after the instruction). A fraction
    `warmup.correction_fraction` of episodes instead start from a task-made flawed solution (a
    dropped carry, a column off by one) corrected in the next attempt: the base model sees what a
    correction is, on synthetic slips, not on its own errors. A fraction `warmup.hasty_fraction`
    are a single attempt from `Task.hasty_solution` (a wrong answer, then a correct check of it),
    trained on the check only. A fraction `warmup.revise_fraction` revise a correct first attempt
    into a flawed one, for a base that sometimes breaks a right answer when asked to correct it (as
    the paper's base models do): a random slip (`warmup.revise_error="slip"`, rarely the greedy
    choice, see BENCHMARKS.md) or the task's systematic misconception ("misconception"; where it
    changes nothing, e.g. a sum without carries, the episode repeats the right attempt).
    With a chat template (real models) the episode is the model's own conversation, as rollouts
    build it, with the loss on the assistant turns."""
    tok, instr = self.tokenizer, self.instruction_ids()
    rng = np.random.default_rng([self.cfg.seed, zlib.crc32(problems[0].id.encode())])  # stable across processes
    cap = self.cfg.rollout.max_prompt_len + self.turns * (self.cfg.rollout.max_new_tokens + len(instr))
    tokens = np.full((len(problems), cap), self.pad_id, np.int32)
    mask = np.zeros((len(problems), cap), np.float32)
    for i, p in enumerate(problems):
      text = self.template.first_prompt(p.problem)
      attempts = [p.solution] * self.turns          # the completion texts, one per attempt
      u, hasty = rng.random(), None
      if u < self.cfg.warmup.correction_fraction:
        flawed = self.task.flawed_solution(p, rng)
        if flawed is not None:
          attempts[0] = flawed
      elif u < self.cfg.warmup.correction_fraction + self.cfg.warmup.hasty_fraction:
        hasty = self.task.hasty_solution(p, rng)
      elif u < (self.cfg.warmup.correction_fraction + self.cfg.warmup.hasty_fraction
                + self.cfg.warmup.revise_fraction):
        flawed = (self.task.flawed_solution(p, rng) if self.cfg.warmup.revise_error == "slip"
                  else self.task.misconceived_solution(p))
        if flawed is not None:     # a right first attempt "revised" into a wrong one, every later turn
          attempts[1:] = [flawed] * (self.turns - 1)
      prompt = tok.encode(text)
      if self.chat is not None:
        if hasty is not None:
          raise ValueError("warmup.hasty_fraction > 0 needs a tokenizer without a chat template "
                           "(tokenizer.chat_template = False): hasty attempts train part of one turn")
        ids, spans = self._chat_episode(text, attempts)
      elif hasty is not None:
        # One attempt, loss on its check only: the wrong answer is context, not a target, and no
        # second attempt shows what to do about it.
        head = episodes.completion_ids(tok, text, prompt, hasty[0])[:-1]
        full = episodes.completion_ids(tok, text, prompt, hasty[0] + hasty[1])
        shared = next((j for j, (x, y) in enumerate(zip(head, full)) if x != y), len(head))
        ids = list(prompt) + full
        spans = [(len(prompt) + shared, len(ids))]
      else:
        ids, spans = list(prompt), []
        for k, completion in enumerate(attempts):
          if k:
            ids += instr
          att = episodes.completion_ids(tok, text, prompt, completion)
          spans.append((len(ids), len(ids) + len(att)))
          ids += att
      if len(ids) > cap:
        raise ValueError(f"warm-up episode for problem {p.id} is {len(ids)} tokens, more than the sampler's "
                         f"capacity {cap} (rollout.max_prompt_len + attempts x (max_new_tokens + instruction))")
      tokens[i, :len(ids)] = ids
      for a, b in spans:
        mask[i, a:b] = 1.0
    length = episodes.bucket(int(np.max(np.nonzero(mask.any(0))[0])) + 1, cap)   # trim the shared padding
    return {"tokens": tokens[:, :length], "mask": mask[:, :length]}

  def _chat_episode(self, text: str, attempts: list[str]) -> tuple[list[int], list[tuple[int, int]]]:
    """The episode in the model's chat template, as the sampler builds it (encode_prompt, each turn
    ending at its stop token, instruction_ids between turns); loss on the assistant turns."""
    from critjax.data.chat import NO_TURN, self_correction_messages, tokenize_chat
    msgs = self_correction_messages(text, [a.strip() for a in attempts], self.template.correction_prompt())
    toks = tokenize_chat(self.tokenizer, self.chat, msgs)
    turn = np.asarray(toks.assistant_turn)
    last = int(np.nonzero(turn != NO_TURN)[0][-1]) + 1      # drop template glue after the last stop token
    ids = toks.ids[:last].tolist()
    spans = []
    for k in range(len(attempts)):
      where = np.nonzero(turn == k)[0]
      spans.append((int(where[0]), int(where[-1]) + 1))
    return ids, spans

  def evaluate(self, params, problems) -> dict:
    _, correct, texts = self.attempts(self.greedy_sampler, params, problems, self.eval_rng, 1)
    return self_correction_metrics(correct > 0, [list(row) for row in zip(*texts)])


@RECIPES.register("score")
class SCoRe(MultiTurn):

  def phases(self) -> list[Phase]:
    total = self.cfg.train.steps
    n1 = total // 3 if self.args.stage1_steps is None else self.args.stage1_steps
    if n1 > total:
      raise ValueError(f"config.recipe_args.stage1_steps={n1} exceeds train.steps={total}")
    phases = [Phase("stage1", n1, {"stage": 1}), Phase("stage2", total - n1, {"stage": 2})]
    return [p for p in phases if p.steps > 0]

  def needs_reference(self) -> bool:
    return True

  def collect(self, params, problems, rng, refill=None) -> Collected:
    g, a = self.cfg.rollout.group_size, self.args
    ro, correct, _ = self.attempts(self.sampler, params, problems, rng, g)
    stage = self.phase.args.get("stage", 2)
    rewards = TURN_REWARDS.get(f"score_stage{stage}")(correct, alpha=a.alpha, shaping=a.shaping)   # (N, K)
    n, k = rewards.shape
    adv = np.asarray(ADVANTAGES.get(self.cfg.rl.advantage)(
        jnp.asarray(rewards.reshape(-1, g, k).transpose(0, 2, 1).reshape(-1, g))))          # per turn, per group
    adv = adv.reshape(-1, k, g).transpose(0, 2, 1).reshape(n, k)
    betas = [a.beta2 if (stage == 1 and t == 0) else a.beta1 for t in range(k)]
    batch = episodes.policy_batch(ro, adv, kl_coef_turn=betas)
    lengths = episodes.turn_lengths(ro, k)
    metrics = {"reward_mean": float(rewards.sum(1).mean()), "accuracy": float(correct[:, -1].mean()),
               "accuracy_t1": float(correct[:, 0].mean()), "response_length": float(lengths.sum(1).mean()),
               "generated_tokens": int(lengths.sum()), "stage": stage}
    return Collected(batch=batch, metrics=metrics)
