"""Evaluation protocols for self-correction beyond SCoRe's own two-attempt episode.

  self_refine       Self-Refine (Madaan et al., arXiv 2303.17651) as a prompted baseline: attempt,
                    self-feedback, refined attempt; Acc@t1 scores the attempt, Acc@t2 the refinement.
  compute_matched   SCoRe Fig. 1 (right): K samples each self-corrected then majority vote over the
                    corrected answers, against 2K independent samples with majority vote.
  fixed_first       SCoRe §4's distribution-shift check: a model corrects *given* first attempts (e.g.
                    the base model's) instead of its own, so models compare on one pool of errors.
All run on a MultiTurn recipe (critjax.rl.recipes.multi_turn) through the one protocol mechanism
(critjax.rl.protocols), so they share its roles, samplers and templates. `params`: role -> params.
"""
from __future__ import annotations

import numpy as np

from critjax.data.templates import get_template
from critjax.eval.self_correction import self_correction_metrics
from critjax.eval.voting import compute_matched_accuracy
from critjax.rl import protocols
from critjax.rl.protocols import Turn
from critjax.sampling.sampler import completions


def self_refine(recipe, params, problems, template_name: str = "self_refine_toy", role: str = "policy") -> dict:
  """Greedy attempt -> feedback -> refinement; metrics in the SCoRe table's shape."""
  tpl = get_template(template_name)
  feedback, refine = recipe.context_ids(tpl.critique_prompt()), recipe.context_ids(tpl.refine_prompt())
  turns = (Turn(role), Turn(role, feedback), Turn(role, refine))
  r = recipe.cfg.rollout      # three generated turns to fit
  engine = recipe.engine.with_capacity(protocols.capacity(
      r.max_prompt_len, [(0, r.max_new_tokens), (len(feedback), r.max_new_tokens), (len(refine), r.max_new_tokens)]))
  ep = recipe.episode(turns, params, problems, recipe.eval_rng, greedy=True, engine=engine)
  texts = [ep.texts(k) for k in range(3)]
  correct = np.stack([recipe.task.score(problems, texts[0]), recipe.task.score(problems, texts[2])], axis=1)
  return self_correction_metrics(correct > 0, [[a, b] for a, b in zip(texts[0], texts[2])])


def compute_matched(recipe, params, problems, rng, ks=(1, 2, 4, 8)) -> list[dict]:
  """Majority-vote accuracy at equal sample budgets 2k: 2k first attempts vs k (first, corrected) pairs."""
  import jax
  kmax = max(ks)
  k1, k2 = jax.random.split(rng)
  # 2K independent first attempts (one turn), and K two-attempt episodes, sampled at the training temperature
  _, _, par_texts = recipe.attempts(params, problems, k1, 2 * kmax, turns=1)
  _, _, pair_texts = recipe.attempts(params, problems, k2, kmax)
  n = len(problems)
  # Votes are over extracted final answers (None = no answer, no vote); golds are already answers.
  extract = lambda texts: [recipe.task.extract(t) for t in texts]
  parallel = np.array(extract(par_texts[0]), dtype=object).reshape(n, 2 * kmax)
  pairs = np.stack([np.array(extract(t), dtype=object).reshape(n, kmax) for t in (pair_texts[0], pair_texts[-1])],
                   axis=-1)
  gold = [p.answer for p in problems]
  return compute_matched_accuracy(parallel.tolist(), pairs.tolist(), gold, lambda a: a, ks=list(ks))


def first_attempts(recipe, params, problems) -> tuple[list[np.ndarray], np.ndarray]:
  """The greedy first attempt on every problem: token ids (stop token included), [N], and correct (N,) bool."""
  ro, correct, _ = recipe.attempts(params, problems, recipe.eval_rng, 1, turns=1, greedy=True)
  return completions(ro, 0), correct[:, 0] > 0


def fixed_first(recipe, params, problems, first_ids, first_correct) -> dict:
  """Greedy second attempts of `params` after given first attempts (token ids, [N]; correctness (N,)).

  SCoRe §4 (Kumar et al., arXiv 2409.12917) compares correcting the base model's first attempts with
  correcting the model's own, to show the distribution shift of SFT on base-model data. Here it also
  separates a method's correction rate from its own first-attempt accuracy: every model sees the same
  wrong attempts. The episode is the two-attempt protocol's ([prompt][attempt][instruction][turn 2]),
  with the attempt appended as context instead of decoded. Returns `self_correction_metrics` of
  (given, second) plus fix_rate = P(t2 right | t1 wrong) and break_rate = P(t2 wrong | t1 right)
  (NaN when no first attempt is wrong, resp. right)."""
  n = len(problems)
  first_correct = np.asarray(first_correct, bool)
  if len(first_ids) != n or first_correct.shape != (n,):
    raise ValueError(f"{n} problems but {len(first_ids)} first attempts and correctness of shape {first_correct.shape}")
  lens = np.array([len(ids) for ids in first_ids], np.int32)
  if lens.min() < 1:
    raise ValueError(f"first attempt of problem {problems[int(lens.argmin())].id} is empty")
  instr = recipe.instruction_ids()
  # One turn after context = [given attempt][instruction]: the given attempt sits where the model's
  # own first attempt would, as context it did not write.
  given = lambda ep: [list(ids) + instr for ids in first_ids]
  ep = recipe.episode((Turn("policy", given),), params, problems, recipe.eval_rng, greedy=True)
  second = recipe.task.score(problems, ep.texts(0)) > 0
  out = self_correction_metrics(np.stack([first_correct, second], axis=1))
  wrong, right = ~first_correct, first_correct
  out["fix_rate"] = float(second[wrong].mean()) if wrong.any() else float("nan")
  out["break_rate"] = float((~second[right]).mean()) if right.any() else float("nan")
  return out
