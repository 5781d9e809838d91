"""Evaluation protocols for self-correction beyond SCoRe's own two-attempt episode.

  self_refine       Self-Refine (Madaan et al., arXiv 2303.17651) as a prompted baseline: attempt,
                    self-feedback, refined attempt; Acc@t1 scores the attempt, Acc@t2 the refinement.
  compute_matched   SCoRe Fig. 1 (right): K samples each self-corrected then majority vote over the
                    corrected answers, against 2K independent samples with majority vote.
Both run on a MultiTurn recipe (critjax.rl.recipes.score) so they share its sampler and templates.
"""
from __future__ import annotations

import numpy as np

from critjax.data.templates import get_template
from critjax.eval.self_correction import self_correction_metrics
from critjax.eval.voting import compute_matched_accuracy
from critjax.sampling.sampler import Sampler


def self_refine(recipe, params, problems, template_name: str = "self_refine_toy") -> dict:
  """Greedy attempt -> feedback -> refinement; metrics in the SCoRe table's shape."""
  tpl = get_template(template_name)
  chunks = [None, recipe.context_ids(tpl.critique_prompt()), recipe.context_ids(tpl.refine_prompt())]
  r = recipe.cfg.rollout
  sampler = Sampler(recipe.model_cfg, recipe.greedy_sampler.scfg,   # three generated turns to fit
                    r.max_prompt_len + 3 * r.max_new_tokens + sum(len(c) for c in chunks[1:]))
  _, texts = recipe.run_turns(sampler, params, problems, recipe.eval_rng, 1, chunks)
  correct = np.stack([recipe.task.score(problems, texts[0]), recipe.task.score(problems, texts[2])], axis=1)
  return self_correction_metrics(correct > 0, [[a, b] for a, b in zip(texts[0], texts[2])])


def compute_matched(recipe, params, problems, rng, ks=(1, 2, 4, 8)) -> list[dict]:
  """Majority-vote accuracy at equal sample budgets 2k: 2k first attempts vs k (first, corrected) pairs."""
  import jax
  kmax = max(ks)
  k1, k2 = jax.random.split(rng)
  # 2K independent first attempts (one turn), and K two-attempt episodes, sampled at the training temperature
  _, _, par_texts = recipe.attempts(recipe.sampler, params, problems, k1, 2 * kmax, turns=1)
  _, _, pair_texts = recipe.attempts(recipe.sampler, params, problems, k2, kmax)
  n = len(problems)
  # Votes are over extracted final answers (None = no answer, no vote); golds are already answers.
  extract = lambda texts: [recipe.task.extract(t) for t in texts]
  parallel = np.array(extract(par_texts[0]), dtype=object).reshape(n, 2 * kmax)
  pairs = np.stack([np.array(extract(t), dtype=object).reshape(n, kmax) for t in (pair_texts[0], pair_texts[-1])],
                   axis=-1)
  gold = [p.answer for p in problems]
  return compute_matched_accuracy(parallel.tolist(), pairs.tolist(), gold, lambda a: a, ks=list(ks))
