"""Multi-attempt episodes on one role: the K-attempt protocol, its evaluation and its warm-up data.

Episode: [prompt][y1][instruction][y2]...[y_K]; each attempt continues from the KV cache of the
previous one (critjax.rl.protocols), never re-prefilling. Shared by SCoRe (critjax.rl.recipes.score)
and the self-correction baselines (critjax.rl.recipes.correction_baselines).
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Optional

import numpy as np

from critjax.data.toy_warmup import make_builder
from critjax.eval.self_correction import self_correction_metrics
from critjax.rl import episodes
from critjax.rl.protocols import Turn
from critjax.rl.recipes.base import Recipe


def parse_args(cls, args: dict):
  """recipe_args -> the recipe's frozen args dataclass, unknown fields named with their full path."""
  known = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(args) - known)
  if unknown:
    raise ValueError(f"unknown field(s) {', '.join('config.recipe_args.' + u for u in unknown)}; known: {sorted(known)}")
  try:
    return cls(**args)
  except TypeError as e:
    raise ValueError(f"config.recipe_args: {e}") from None


class MultiTurn(Recipe):
  """Shared K-attempt rollout and evaluation (used by SCoRe and the self-correction baselines).
  Subclasses set `args_cls`, a frozen dataclass with at least `template` and `attempts`."""
  args_cls = None

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

  def attempt_turns(self, k: int, role: str = "policy") -> tuple:
    """SCoRe's protocol: K attempts by one role, each later one after the correction instruction."""
    instr = self.instruction_ids()
    return tuple(Turn(role, None if i == 0 else instr) for i in range(k))

  def attempts(self, params, problems, rng, num_samples: int, turns: Optional[int] = None, greedy: bool = False,
               role: str = "policy"):
    """K attempts separated by the correction instruction: rollout, (N, K) correctness, texts [K][N]."""
    k = self.turns if turns is None else turns
    ep = self.episode(self.attempt_turns(k, role), params, problems, rng, num_samples=num_samples, greedy=greedy)
    texts = [ep.texts(i) for i in range(k)]
    correct = np.stack([self.task.score(ep.problems, t) for t in texts], axis=1)     # (N, K)
    return ep.rollout, correct, texts

  def warmup_batch(self, problems) -> dict:
    """Multi-attempt format: [prompt][attempt][instruction][attempt]..., loss on every attempt.

    Which attempts an episode shows is the warm-up data builder's (`warmup.data`, with
    `warmup.data_args`; critjax/data/toy_warmup.py): by default every attempt is the correct
    solution; the toy's designed mixes add correction demonstrations on task-made slips, "hasty"
    single attempts trained on their check only, and revisions of a right attempt into a wrong one.
    With a chat template (real models) the episode is the model's own conversation, as rollouts
    build it, with the loss on the assistant turns."""
    tok, instr = self.tokenizer, self.instruction_ids()
    build = make_builder(self.cfg.warmup.data, dict(self.cfg.warmup.data_args))
    rng = np.random.default_rng([self.cfg.seed, zlib.crc32(problems[0].id.encode())])  # stable across processes
    cap = self.cfg.rollout.max_prompt_len + self.turns * (self.cfg.rollout.max_new_tokens + len(instr))
    tokens = np.full((len(problems), cap), self.pad_id, np.int32)
    mask = np.zeros((len(problems), cap), np.float32)
    for i, p in enumerate(problems):
      text = self.template.first_prompt(p.problem)
      attempts, hasty = build(self.task, p, rng, self.turns)     # the completion texts, one per attempt
      prompt = tok.encode(text)
      if self.chat is not None:
        if hasty is not None:
          raise ValueError("warmup.data_args.hasty_fraction > 0 needs a tokenizer without a chat template "
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
    _, correct, texts = self.attempts(params, problems, self.eval_rng, 1, greedy=True)
    return self_correction_metrics(correct > 0, [list(row) for row in zip(*texts)])
