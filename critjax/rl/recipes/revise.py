"""ReVISE: Refine via Intrinsic Self-Verification (Lee et al., arXiv 2502.14565, ICML 2025;
ALGORITHMS.md §9; the released code is seunghyukoh/ReVISE).

A trajectory is x -> y_1 [refine] y_2 [refine] ... y_k [eos]: after each attempt the model either
stops ([eos]: "I verified it") or writes the refine token and a new attempt, so p([eos] | x, y) is
an intrinsic verifier. The refine token is `recipe_args.refine_token` ('[refine]' added with
config.tokenizer.add_tokens; Llama 3 reuses <|reserved_special_token_0|>). Decoding continues after
[refine] up to `max_attempts` attempts (the sampler stops a row at its max_attempts-th [refine];
the final answer is the last attempt's).

Phases (all the paper's stages are offline preference learning on the model's own samples):
  warmup   Stage 0, SFT on gold solutions (config.warmup: prompt + worked solution + [eos]).
  verify   Stage 1, `verify_steps` DPO steps. At its start (BuildData 'revise1') `samples`
           trajectories per question of `pool` fresh questions are sampled (rollout.temperature,
           top_p; the paper: 10 at T 0.7, top_p 0.9), split at [refine], each attempt graded by the
           task's verifier, stopping at the first wrong one (make_dataset.py); per attempt y a pair
           with the question alone as prompt: y right -> y[eos] over y[refine][eos]; y wrong ->
           y[refine][eos] over y[eos].
  correct  Stage 2, `correct_steps` DPO steps from the Stage-1 model on fresh samples
           (BuildData 'revise2'): y right as in Stage 1; y wrong -> y[refine] gold[eos] over y[eos].
Each stage's DPO reference is the model at the stage's start (TRL's default copy of the model it
trains): ResetReference. The loss is 'dpo' with rl.loss.rpo_alpha (the paper: RPO, beta 0.1 and
alpha 0.1). Every response ends in [eos] because the released data are chat turns, whose template
closes each assistant message with it.

Evaluation (held-out questions):
  greedy    accuracy_t1 (first attempt), accuracy (final attempt), refine_rate (trajectories with a
            second attempt), delta_i2c / delta_c2i (first wrong -> final right, and the reverse);
  verifier  on the greedy first attempts, p([eos]) and p([refine]) at the attempt's end (T = 1):
            verify_accuracy = mean over attempts of [p(eos) > p(refine)] == right, verify_auc = AUROC
            of p(eos) / (p(eos) + p(refine)) for right attempts;
  voting    `vote_samples` sampled trajectories per question: majority voting over the final
            answers (maj_k) against confidence-aware voting (conf_k), answer* = argmax_a
            sum_{i: ans_i = a} p_i([eos] | x, y_i), for k = 1, 2, 4, ... <= vote_samples. The paper
            describes it without code (UNVERIFIED form); our p_i is the full-softmax probability of
            [eos] at the end of the final attempt, in the trajectory's own context (earlier attempts
            included); a trajectory cut by max_new_tokens is weighed at its last token likewise.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import jax
import numpy as np

from critjax.eval.bench_metrics import auroc, maj_at_k, weighted_maj_at_k
from critjax.rl import pairs
from critjax.rl.phases import BuildData, Phase, ResetReference
from critjax.rl.recipes.base import RECIPES, Collected
from critjax.rl.recipes.grpo import GRPO, SINGLE_TURN
from critjax.rl.recipes.multi_turn import parse_args

REVISE_SEED = 5_203_009        # the stages' questions: a stream apart from the warm-up's and the held-out ones
PREFILL_ROWS = 256             # rows per verifier prefill (bounds its cache)


@dataclasses.dataclass(frozen=True)
class ReviseArgs:
  template: str = "toy"
  refine_token: str = "[refine]"
  max_attempts: int = 2            # attempts per trajectory at decoding
  samples: int = 10                # trajectories per question when a stage's data is built (the paper's 10)
  pool: int = 128                  # questions per stage
  verify_steps: int = 20           # Stage 1 DPO steps
  correct_steps: int = 20          # Stage 2 DPO steps
  pairs_per_step: int = 16
  vote_samples: int = 8            # N of the voting evaluation (0: no voting evaluation)

  def __post_init__(self):
    if self.max_attempts < 1 or self.samples < 1 or self.pool < 1 or self.pairs_per_step < 1:
      raise ValueError("config.recipe_args.max_attempts, samples, pool and pairs_per_step must be >= 1; got "
                       f"{self.max_attempts} / {self.samples} / {self.pool} / {self.pairs_per_step}")
    if min(self.verify_steps, self.correct_steps, self.vote_samples) < 0:
      raise ValueError("config.recipe_args.verify_steps, correct_steps and vote_samples must be >= 0")


def stage_pair(stage: int, prompt: str, attempt: str, right: bool, gold: str, refine: str) -> tuple[str, str]:
  """(chosen, rejected) responses for one graded attempt (module docstring; make_dataset.py)."""
  if right:
    return attempt, attempt + refine
  if stage == 1:
    return attempt + refine, attempt
  return attempt + refine + gold, attempt


@RECIPES.register("revise")
class Revise(GRPO):
  loss_kind = "dpo"

  def check_args(self, args: dict):
    self.args = a = parse_args(ReviseArgs, dict(args))
    tok = self.tokenizer
    self.refine_id = tok.token_to_id(a.refine_token)
    if self.refine_id is None:
      raise ValueError(f"config.recipe_args.refine_token={a.refine_token!r} is not in the tokenizer: add it with "
                       f"config.tokenizer.add_tokens=({a.refine_token!r},), or name a token the tokenizer has "
                       "(Llama 3: '<|reserved_special_token_0|>')")
    if self.refine_id in (tok.eos_id, tok.pad_id):
      raise ValueError(f"config.recipe_args.refine_token={a.refine_token!r} is the tokenizer's EOS or pad token")
    if self.cfg.train.steps:
      raise ValueError(f"config.train.steps={self.cfg.train.steps}: recipe 'revise' trains recipe_args.verify_steps "
                       "+ correct_steps steps; set train.steps=0")
    if not a.verify_steps + a.correct_steps:
      raise ValueError("config.recipe_args.verify_steps + correct_steps is 0: nothing to train after the warm-up")

  def sampling_overrides(self, role: str) -> dict:
    return {"stop_after": ((self.refine_id, self.args.max_attempts),)}

  def phases(self) -> list[Phase]:
    a, out = self.args, []
    for stage, name, steps in ((1, "verify", a.verify_steps), (2, "correct", a.correct_steps)):
      if steps:
        out.append(Phase(name, steps, args={"data": f"revise{stage}", "stage": stage},
                         on_start=(ResetReference("policy"), BuildData("policy", f"revise{stage}"))))
    return out

  def references(self) -> list[str]:
    return ["policy"]                 # DPO's reference, whatever rl.loss.kl_coef says

  def rows_per_step(self) -> dict[str, int]:
    return {"policy": 2 * self.args.pairs_per_step}

  # --- trajectories ------------------------------------------------------------------------------
  def attempts(self, ep) -> tuple[list[list[str]], list[list[list[int]]]]:
    """Per row, the attempts' texts and ids: the generated turn split at [refine], EOS and padding
    dropped. Each text is decoded after the row's prompt and cut after it, so prompt + text
    re-encodes to the ids the model wrote (a tokenizer that drops a leading space when decoding a
    piece alone would otherwise change them)."""
    tok = self.tokenizer
    texts, ids = [], []
    for prompt, gen in zip(*self._split_rows(ep)):
      gen = [t for t in gen if t not in (tok.eos_id, self.pad_id)]
      parts, cur = [], []
      for t in gen:
        if t == self.refine_id:
          parts.append(cur)
          cur = []
        else:
          cur.append(t)
      if cur or not parts:
        parts.append(cur)
      head = tok.decode(prompt)
      texts.append([tok.decode(prompt + p)[len(head):] for p in parts])
      ids.append(parts)
    return texts, ids

  def graded(self, problems, texts) -> list[np.ndarray]:
    """Per row, (attempts,) bool: each attempt right by the task's verifier."""
    return [self.task.score([p] * len(t), t) >= 1.0 for p, t in zip(problems, texts)]

  def eos_probs(self, params, contexts: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(p([eos]), p([refine])) of the next token after each context (token ids, prompt included),
    at T = 1: the last logits of one prefill of the policy."""
    cap = self.capacity()
    p_eos, p_ref = [], []
    for s in range(0, len(contexts), PREFILL_ROWS):
      part = [list(c)[-cap:] for c in contexts[s:s + PREFILL_ROWS]]
      ids = np.full((len(part), cap), self.pad_id, np.int32)
      for i, c in enumerate(part):
        ids[i, :len(c)] = c
      ro = self.greedy_sampler.start(params["policy"], ids, np.array([len(c) for c in part], np.int32))
      lp = np.asarray(jax.nn.log_softmax(ro.last_logits.astype(np.float32), axis=-1))
      p_eos.append(np.exp(lp[:, self.tokenizer.eos_id]))
      p_ref.append(np.exp(lp[:, self.refine_id]))
    return np.concatenate(p_eos), np.concatenate(p_ref)

  def pair_context(self) -> int:
    """Tokens of a DPO row: the prompt, a sampled trajectory's attempt (at most max_new_tokens), the
    [refine] token and a gold solution (room for another max_new_tokens), EOS."""
    r = self.cfg.rollout
    return r.max_prompt_len + 2 * r.max_new_tokens + 1

  # --- offline stage data ------------------------------------------------------------------------
  def build_data(self, name, params, rng) -> list[dict]:
    if name not in ("revise1", "revise2"):
      return super().build_data(name, params, rng)
    a, stage = self.args, int(name[-1])
    items = self.task.problems(self.cfg.seed + REVISE_SEED + 7919 * stage, 0, a.pool)
    chunk = max(1, self.cfg.rollout.prompts_per_step * self.cfg.rollout.group_size // a.samples)
    out, counts = [], {"right": 0, "wrong": 0, "trajectories": 0}
    for i in range(0, len(items), chunk):
      part = items[i:i + chunk]
      ep = self.episode(SINGLE_TURN, params, part, jax.random.fold_in(rng, i), num_samples=a.samples)
      texts, _ = self.attempts(ep)
      prompts = [t for t in self.prompt_texts(part) for _ in range(a.samples)]
      rows = [p for p in part for _ in range(a.samples)]
      for p, prompt, ys, ok in zip(rows, prompts, texts, self.graded(rows, texts)):
        counts["trajectories"] += 1
        for y, right in zip(ys, ok):           # up to and including the first wrong attempt
          chosen, rejected = stage_pair(stage, prompt, y, bool(right), p.solution, a.refine_token)
          out.append({"id": p.id, "prompt": prompt, "chosen": chosen, "rejected": rejected, "right": bool(right)})
          counts["right" if right else "wrong"] += 1
          if not right:
            break
    # One fixed shuffle (from the stage's key), so a step's pairs mix questions.
    order = np.random.default_rng(np.asarray(jax.random.key_data(rng)).ravel().tolist()).permutation(len(out))
    out = [out[j] for j in order]
    logging.info("revise %s: %d pairs from %d trajectories of %d questions (%d right, %d wrong attempts)", name,
                 len(out), counts["trajectories"], len(items), counts["right"], counts["wrong"])
    out, _ = pairs.finalize(f"revise stage {stage} ({name})", out, self.tokenizer, self.pair_context(),
                            f"{counts['trajectories']} trajectories gave no gradable attempt")
    return out

  def collect(self, params, problems, rng, refill=None) -> Collected:
    rows = self.data[self.phase.args["data"]]
    part = pairs.step_records(rows, self.phase_step, self.args.pairs_per_step)
    batch = pairs.batch(self.tokenizer, part, self.pair_context(), self.pad_id)
    return Collected(batches={"policy": batch}, group_rows=2,
                     metrics={"pairs": len(rows), "pairs_right_frac": float(np.mean([r["right"] for r in part]))})

  # --- evaluation --------------------------------------------------------------------------------
  def evaluate(self, params, problems) -> dict:
    ep = self.episode(SINGLE_TURN, params, problems, self.eval_rng, greedy=True)
    texts, ids = self.attempts(ep)
    ok = self.graded(problems, texts)
    first = np.array([o[0] for o in ok])
    final = np.array([o[-1] for o in ok])
    out = {"accuracy_t1": float(first.mean()), "accuracy": float(final.mean()),
           "refine_rate": float(np.mean([len(t) > 1 for t in texts])),
           "attempts_mean": float(np.mean([len(t) for t in texts])),
           "delta_i2c": float((~first & final).mean()), "delta_c2i": float((first & ~final).mean())}
    prompts = self._split_rows(ep)[0]
    p_eos, p_ref = self.eos_probs(params, [pr + i[0] for pr, i in zip(prompts, ids)])
    out["verify_accuracy"] = float(np.mean((p_eos > p_ref) == first))
    out["verify_auc"] = auroc(p_eos / np.maximum(p_eos + p_ref, 1e-30), first)
    out["p_eos_right"] = float(p_eos[first].mean()) if first.any() else float("nan")
    out["p_eos_wrong"] = float(p_eos[~first].mean()) if (~first).any() else float("nan")
    if self.args.vote_samples:
      out.update(self.evaluate_voting(params, problems))
    return out

  @staticmethod
  def _split_rows(ep) -> tuple[list[list[int]], list[list[int]]]:
    """Per row, (prompt ids, generated ids): the tokens before the turn and the turn's own."""
    ro = ep.rollout
    tokens, segment, length = np.asarray(ro.tokens), np.asarray(ro.segment), np.asarray(ro.length)
    prompts, gens = [], []
    for i in range(tokens.shape[0]):
      row, seg = tokens[i, :length[i]], segment[i, :length[i]]
      at = np.nonzero(seg == 0)[0]
      start = int(at[0]) if at.size else int(length[i])
      prompts.append([int(t) for t in row[:start]])
      gens.append([int(t) for t in row[at]])
    return prompts, gens

  def evaluate_voting(self, params, problems) -> dict:
    """maj_k and conf_k over vote_samples sampled trajectories per question (module docstring)."""
    n = self.args.vote_samples
    ep = self.episode(SINGLE_TURN, params, problems, jax.random.fold_in(self.eval_rng, 1), num_samples=n)
    texts, ids = self.attempts(ep)
    rows = [p for p in problems for _ in range(n)]
    ok = self.graded(rows, texts)
    prompts = self._split_rows(ep)[0]
    # The final attempt's context: the prompt, every earlier attempt and its [refine], the attempt.
    contexts = [pr + [t for part in parts[:-1] for t in part + [self.refine_id]] + parts[-1]
                for pr, parts in zip(prompts, ids)]
    p_eos, _ = self.eos_probs(params, contexts)
    answers = np.array([t[-1] for t in texts], dtype=object).reshape(len(problems), n)
    correct = np.array([o[-1] for o in ok]).reshape(len(problems), n)
    conf = p_eos.reshape(len(problems), n)
    norm = self.task.extract
    out = {}
    k = 1
    while k <= n:
      out[f"maj_{k}"] = maj_at_k(answers.tolist(), correct, k, norm)
      out[f"conf_{k}"] = weighted_maj_at_k(answers.tolist(), conf, correct, k, norm)
      k *= 2
    out["sampled_accuracy"] = float(correct.mean())
    return out
