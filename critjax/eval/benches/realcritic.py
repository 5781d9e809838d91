"""RealCritic (Tang et al. 2025, arXiv 2501.14492): critiques scored closed-loop, by whether the
correction each one leads to is right.

Per item (a question and a model's solution, labelled right or wrong):
  direct   the model solves the question itself (Direct CoT).
  cross    it critiques the given solution and then writes a corrected solution (one turn: the
           critique, then "Corrected solution:" and a final answer).
  self     the same, on its own Direct-CoT solution.
  iter     a second critique-and-correct round on its cross-critique correction (iterative
           critique, 2 rounds).
A final answer is the last \\boxed{} (math tasks, checked with math-verify against `gt`) or the
last standalone letter A-E (multiple-choice tasks). Metrics (bench_metrics.realcritic_metrics): the
accuracy after each mode, with the c->c / c->i / i->c / i->i breakdown against the critiqued
solution's correctness. Chance: the critiqued solutions' own accuracy (a critic that changes
nothing scores it in cross-critique), and 1 / #choices for multiple choice.
`--limit N` takes ceil(N / tasks) items of each task from a fixed shuffle (seed 0).
"""
from __future__ import annotations

import re

import numpy as np

from critjax.eval import bench_data, bench_metrics
from critjax.eval.benches.base import BENCHES, Bench, Result, pick_subsets, last_boxed
from critjax.eval.generation import Sampling

SOLVE = """Solve the question step by step. Put the final answer in \\boxed{{}}{mc}.

Question: {question}{choices}"""

CRITIQUE = """Question: {question}{choices}

Proposed solution:
{solution}

Critique the proposed solution step by step: is its reasoning and final answer right? Then write \
"Corrected solution:" and solve the question correctly, with the final answer in \\boxed{{}}{mc}."""

LETTER = re.compile(r"\b([A-E])\b")


def answer_of(text: str, multiple_choice: bool) -> str:
  boxed = last_boxed(text)
  if multiple_choice:
    found = LETTER.findall(boxed if boxed is not None else text)
    return found[-1] if found else ""
  return "" if boxed is None else boxed


def _fields(it):
  mc = it.task in bench_data.REALCRITIC_MULTIPLE_CHOICE
  choices = ("\n" + "\n".join(it.choices)) if it.choices else ""
  return dict(question=it.question, choices=choices, mc=" (the letter of the right choice)" if mc else "")


@BENCHES.register("realcritic")
class RealCritic(Bench):
  name = "realcritic"
  description = "closed-loop critique: direct, self-, cross- and iterative critique, scored by the correction"

  def load(self, limit, subset):
    tasks = pick_subsets(subset, bench_data.REALCRITIC_TASKS, "RealCritic task")
    return self.take_per_subset(bench_data.load_realcritic, tasks, limit, "realcritic")

  def _grade(self, items, texts) -> np.ndarray:
    from critjax.rewards.math_reward import MathVerifier
    mc = [it.task in bench_data.REALCRITIC_MULTIPLE_CHOICE for it in items]
    ans = [answer_of(t, m) for t, m in zip(texts, mc)]
    out = np.array([m and a != "" and a == it.gold.strip() for it, a, m in zip(items, ans, mc)])
    math_rows = [i for i, m in enumerate(mc) if not m]
    if math_rows:
      with MathVerifier(num_workers=1) as mv:
        r, _ = mv.score([items[i].gold for i in math_rows], ["\\boxed{" + ans[i] + "}" for i in math_rows])
      out[math_rows] = np.asarray(r) > 0
    return out

  def run(self, gen, items, opts) -> Result:
    s = Sampling(max_new_tokens=opts.get("max_new_tokens", 768))
    user = lambda text: [{"role": "user", "content": text}]
    direct = gen.generate("realcritic_direct", [(it.id, user(SOLVE.format(**_fields(it)))) for it in items], s)
    crit = lambda stage, sols: gen.generate(stage, [(it.id, user(CRITIQUE.format(solution=sols[it.id], **_fields(it))))
                                                    for it in items], s)
    cross = crit("realcritic_cross", {it.id: it.solution for it in items})
    own = crit("realcritic_self", {it.id: direct[it.id][0] for it in items})
    again = crit("realcritic_iter", {it.id: cross[it.id][0] for it in items})
    ok = {k: self._grade(items, [d[it.id][0] for it in items])
          for k, d in (("direct", direct), ("cross", cross), ("self", own), ("iter", again))}
    given = np.array([it.solution_correct for it in items])
    tasks = [it.task for it in items]
    metrics = {}
    for k, corrected, previous in (("direct", ok["direct"], None), ("cross", ok["cross"], given),
                                   ("self", ok["self"], ok["direct"]),
                                   ("iter", np.stack([ok["cross"], ok["iter"]], 1), given)):
      m = bench_metrics.realcritic_metrics(corrected, previous, tasks)
      metrics.update({f"{k}/{n}": 100 * float(v) for n, v in m.items() if n != "n"})
    chance = {"cross/acc_t1": 100 * float(given.mean())}
    rows = [{"id": it.id, "task": it.task, "given_correct": bool(g), **{k: bool(v[i]) for k, v in ok.items()}}
            for i, (it, g) in enumerate(zip(items, given))]
    return Result(metrics=metrics, chance=chance, items=rows)
