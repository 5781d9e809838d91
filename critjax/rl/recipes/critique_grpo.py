"""Critique-GRPO (Zhang et al., arXiv 2506.03106; ALGORITHMS.md §3): critique-guided refinements of
the policy's own samples mixed into the GRPO group.

Dimension key: B prompts, G = n samples per prompt, N = B * G rows, k refinements kept per group,
L trimmed row length.

Per question, each step:
  1. n initial samples y_i ~ pi_old(.|q) (sampled at rollout.temperature), rewards R_i in {0, 1};
  2. a critique c_i of every sample, by recipe_args.critique:
       simple     "The generated solution is correct/incorrect."  (the template's indicative_critique)
       simple_gt  the same plus the ground truth ("..., the ground truth is <answer>.")
       cot        a step-by-step critique written by the `critic` role (config.roles.critic: a model
                  of its own, frozen in RL, or the policy itself with share="policy": self-critique)
       none       no critique and no refinement: plain GRPO through the same advantage and loss
                  (the baseline arm of experiments/critique_grpo_table.py);
  3. one sampled refinement per sample, by the policy, after [q][y_i][c_i][refine instruction];
  4. k refinements per group (recipe_args.k; the code's 1): the correct ones first, in sample order,
     then the rest in order (the code: the first refinement scoring 1, else the max-score one, i.e. the
     first); they replace group slots 0..k-1 (the released code's slot), their tokens attached to the
     ORIGINAL prompt q: the training row is [q][refinement], scored as a response to q;
  5. advantage over the mixed group (rl.advantage; the configs use mean-only 'dr_grpo', the paper's);
  6. loss 'critique_grpo' (critjax.rl.losses.critique_grpo_loss): the unclipped token ratio on initial
     samples, f(p) = p / (p + 0.1) on refinement tokens (batch["shaped"]), constant normaliser,
     entropy bonus.

The toy's CoT critic: a second tiny decoder fitted in the warm-up on the task's oracle critiques
(Task.oracle_critique: every column re-worked from the gold working and judged, then the final
verdict) of right and task-slipped attempts, frozen in RL. The paper's CoT critic is an external
model (GPT-4o) that reads the reference solution; the toy's stand-in learned its format and
judgement from critiques built from the reference, but reads only the attempt, so some of its
critiques are wrong, as a real critic's are. The oracle itself would hand every refinement the gold
working; the policy writing its own critiques is `configs/critique_grpo.py:tiny_self`.

Departures (besides the toy):
  * The refinement continues the episode's KV cache after [q][y_i][c_i]: it reads what the paper's
    fresh refine prompt holds (question, previous solution, critique, instructions), in this order
    but not its wording, and its ids enter the batch as generated (the code decodes and re-tokenises).
  * cot: the critic critiques every sample; the released code uses the templated simple_gt critique
    for samples that are already right and calls the critic only on wrong ones.
  * The initial sample in a replaced slot is dropped from the update, as in the code; its critique
    and refinement were made and count in the metrics.
Bad input: a refinement that fills its turn without a stop token, or whose row [q][refinement] would
exceed max_prompt_len + max_new_tokens (it is then cut to fit), stays in the batch and is counted
(`refinement_truncated`); a ground truth longer than GT_ANSWER_TOKENS is cut in the simple_gt
critique and counted (`critique_truncated`).

recipe_args: template (critique_grpo_arith | critique_grpo_math), critique (none | simple |
simple_gt | cot), k (refinements kept per group, 1 <= k < G).
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from critjax.rl import episodes, protocols
from critjax.rl.advantages import ADVANTAGES
from critjax.rl.protocols import Turn
from critjax.rl.recipes.base import RECIPES, Collected, Recipe
from critjax.rl.recipes.critique_rl import _rows_batch
from critjax.rl.recipes.multi_turn import parse_args

CRITIQUES = ("none", "simple", "simple_gt", "cot")
INITIAL = 0                # turn index of the initial samples
GT_ANSWER_TOKENS = 16      # context budgeted for the ground truth of a simple_gt critique
WARMUP_FLAWED = 0.5        # share of warm-up attempts that are task-made slips (as Critique-RL's)


@dataclasses.dataclass(frozen=True)
class CritiqueGRPOArgs:
  template: Optional[str] = None
  critique: str = "cot"
  k: int = 1

  def __post_init__(self):
    if self.critique not in CRITIQUES:
      raise ValueError(f"config.recipe_args.critique={self.critique!r}; expected one of {CRITIQUES}")
    if not (isinstance(self.k, int) and self.k >= 1):
      raise ValueError(f"config.recipe_args.k={self.k!r} must be an integer >= 1")


def select_refinements(correct_bg: np.ndarray, k: int) -> np.ndarray:
  """(B, G) refinement correctness -> (B, k) indices of the kept refinements: correct ones first in
  sample order, then the others in order (Critique-GRPO code: the first correct, else the first)."""
  order = np.argsort(~np.asarray(correct_bg, bool), axis=1, kind="stable")
  return order[:, :k]


def group_rows(prompt_ids: Sequence[Sequence[int]], gen_ids: Sequence[np.ndarray], gen_logp: Sequence[np.ndarray],
               adv_n: np.ndarray, shaped_n: np.ndarray, width: int, pad_id: int) -> tuple[dict, np.ndarray]:
  """Rows [prompt][generated] -> the (N, L) arrays of a policy batch plus `shaped` (1 on the generated
  tokens of rows whose shaped_n is True: refinements re-attached to their original prompt), and (N,)
  flags of rows cut to `width` tokens (kept, with their loss on the tokens that fit)."""
  n = len(prompt_ids)
  full = [len(p) + len(g) for p, g in zip(prompt_ids, gen_ids)]
  length = episodes.bucket(min(max(full), width), width)
  batch = {"tokens": np.full((n, length), pad_id, np.int32), "mask": np.zeros((n, length), np.float32),
           "adv": np.zeros((n, length), np.float32), "old_logp": np.zeros((n, length), np.float32),
           "shaped": np.zeros((n, length), np.float32)}
  for i, (p, g, lp) in enumerate(zip(prompt_ids, gen_ids, gen_logp)):
    m = len(p)
    if m >= width:
      raise ValueError(f"row {i}: a prompt of {m} tokens leaves no room in a row of {width}")
    e = min(full[i], width)
    batch["tokens"][i, :e] = np.concatenate([np.asarray(p, np.int32), np.asarray(g, np.int32)])[:e]
    batch["old_logp"][i, m:e] = np.asarray(lp, np.float32)[:e - m]
    batch["mask"][i, m:e] = 1.0
    batch["adv"][i, m:e] = adv_n[i]
    batch["shaped"][i, m:e] = float(shaped_n[i])
  return batch, np.array(full) > width


@RECIPES.register("critique_grpo")
class CritiqueGRPO(Recipe):
  loss_kind = "critique_grpo"

  def __init__(self, cfg, task, tokenizer, template):
    # The critic is a role only where it writes (cot); the base class checks roles before check_args.
    self.args = parse_args(CritiqueGRPOArgs, dict(cfg.recipe_args))
    self.roles = {"policy": "trained", **({"critic": "any"} if self.args.critique == "cot" else {})}
    super().__init__(cfg, task, tokenizer, template)

  def check_args(self, args: dict):
    cfg = self.cfg
    if not hasattr(self.template, "indicative_critique"):
      raise ValueError(f"recipe critique_grpo needs a Critique-GRPO template (critique_grpo_arith | "
                       f"critique_grpo_math); config.recipe_args.template={args.get('template')!r}")
    if not 1 <= self.args.k < cfg.rollout.group_size:
      raise ValueError(f"config.recipe_args.k={self.args.k} must be in [1, rollout.group_size="
                       f"{cfg.rollout.group_size}): the mixed group keeps at least one initial sample")
    if cfg.rl.loss.kl_coef > 0:
      raise ValueError(f"config.rl.loss.kl_coef={cfg.rl.loss.kl_coef}: Critique-GRPO has no KL term; set it to 0")
    if cfg.rl.dynamic_sampling:
      raise ValueError("config.rl.dynamic_sampling is not supported by recipe critique_grpo")
    if self.args.critique == "cot" and self.role_cfgs["critic"].share not in (None, "policy"):
      raise ValueError(f"config.roles.critic.share={self.role_cfgs['critic'].share!r}: the critic is its own "
                       "model or the policy (share='policy')")

  def references(self) -> list[str]:
    return []

  # --- protocol ----------------------------------------------------------------------------------
  def new_tokens(self, role: str) -> int:
    return self.role_cfgs[role].max_new_tokens or self.cfg.rollout.max_new_tokens

  def critique_ids(self) -> list[int]:
    return self.context_ids(self.template.critique_prompt())

  def refine_ids(self) -> list[int]:
    return self.context_ids(self.template.refine_prompt())

  def indicative_ids(self, correct: bool, answer: Optional[str]) -> list[int]:
    """The context before an indicative-critique refinement: the critique, then the refine instruction."""
    return self.context_ids(self.template.indicative_critique(correct, answer) + self.template.refine_prompt())

  def critique_budget(self) -> int:
    """Context + critique tokens between an initial sample and its refinement (sizes the cache)."""
    if self.args.critique == "none":
      return 0
    if self.args.critique == "cot":
      return len(self.critique_ids()) + self.new_tokens("critic") + len(self.refine_ids())
    longest = max(len(self.indicative_ids(c, "" if self.args.critique == "simple_gt" else None)) for c in (True, False))
    return longest + (GT_ANSWER_TOKENS + 8 if self.args.critique == "simple_gt" else 0)

  def capacity(self) -> int:
    r = self.cfg.rollout
    turns = 1 if self.args.critique == "none" else 2
    return r.max_prompt_len + self.critique_budget() + turns * self.new_tokens("policy")

  def _ground_truth(self, answer: str) -> tuple[str, bool]:
    """The answer as the simple_gt critique quotes it, cut to GT_ANSWER_TOKENS (and whether it was)."""
    ids = self.tokenizer.encode(answer)
    if len(ids) <= GT_ANSWER_TOKENS:
      return answer, False
    return self.tokenizer.decode(ids[:GT_ANSWER_TOKENS]), True

  def rollout(self, params, problems, rng) -> dict:
    """Initial samples, critiques and refinements of B problems; the episode and host-side scores."""
    g = self.cfg.rollout.group_size
    keys = jax.random.split(rng, 3)
    ep = protocols.run(self.engine, (Turn("policy"),), problems, self.prompt_texts(problems), params, keys[0],
                       num_samples=g)
    out = {"ep": ep, "initial": self.task.score(ep.problems, ep.texts(INITIAL)) > 0}
    critique = self.args.critique
    if critique == "none":
      return out
    if critique == "cot":
      protocols.take_turn(ep, Turn("critic", self.critique_ids()), params, keys[1])
      out["critique_truncated"] = ep.truncated[-1]
      protocols.take_turn(ep, Turn("policy", self.refine_ids()), params, keys[2])
    else:
      truths = [self._ground_truth(p.answer) if critique == "simple_gt" else (None, False) for p in ep.problems]
      memo: dict = {}            # the G rows of a prompt share at most two contexts: tokenise each once
      for key in {(bool(c), a) for c, (a, _) in zip(out["initial"], truths)}:
        memo[key] = self.indicative_ids(*key)
      ctx = [memo[bool(c), a] for c, (a, _) in zip(out["initial"], truths)]
      out["critique_truncated"] = np.array([cut for _, cut in truths])
      protocols.take_turn(ep, Turn("policy", lambda _: ctx), params, keys[2])
    out["refine_turn"] = len(ep.turn_roles) - 1
    out["refined"] = self.task.score(ep.problems, ep.texts(out["refine_turn"])) > 0
    return out

  # --- RL ----------------------------------------------------------------------------------------
  def collect(self, params, problems, rng, refill=None) -> Collected:
    cfg, b, g = self.cfg, len(problems), self.cfg.rollout.group_size
    out = self.rollout(params, problems, rng)
    ep, initial = out["ep"], out["initial"]
    ro = ep.rollout
    tokens, segment, logp = (np.asarray(x) for x in (ro.tokens, ro.segment, ro.logp))
    turn = lambda i, t: (tokens[i][segment[i] == t], logp[i][segment[i] == t])
    prompts = [self.encode_prompt(t) for t in self.prompt_texts(problems)]
    rows = np.arange(b * g)                         # the ep row each batch row comes from
    turns = np.full(b * g, INITIAL)
    rewards = initial.astype(np.float32).reshape(b, g)
    refining = self.args.critique != "none"
    if refining:
      k = self.args.k
      picked = select_refinements(out["refined"].reshape(b, g), k)            # (B, k)
      slots = (np.arange(b)[:, None] * g + np.arange(k)).reshape(-1)
      rows[slots] = (np.arange(b)[:, None] * g + picked).reshape(-1)
      turns[slots] = out["refine_turn"]
      rewards[:, :k] = np.take_along_axis(out["refined"].reshape(b, g), picked, axis=1)
    adv = np.asarray(ADVANTAGES.get(cfg.rl.advantage)(jnp.asarray(rewards))).reshape(-1)
    gens = [turn(i, t) for i, t in zip(rows, turns)]
    width = cfg.rollout.max_prompt_len + self.new_tokens("policy")
    batch, cut = group_rows([prompts[i // g] for i in rows], [x for x, _ in gens], [x for _, x in gens], adv,
                            turns != INITIAL, width, self.pad_id)
    lengths = ep.lengths()
    failed = ~initial.reshape(b, g).any(axis=1)                                  # persistently failed
    metrics = {"reward_mean": float(rewards.mean()), "accuracy": float(initial.mean()),
               "response_length": float(lengths[:, INITIAL].mean()),
               "truncated_frac": float(ep.truncated[INITIAL].mean()),
               "persistently_failed": float(failed.mean()), "persistently_failed_n": int(failed.sum()),
               "generated_tokens": int(lengths.sum())}
    if refining:
      refined = out["refined"].reshape(b, g)
      solved = failed & refined.any(axis=1)       # a correct refinement is kept whenever there is one
      truncated = ep.truncated[out["refine_turn"]].copy()
      truncated[rows[turns != INITIAL]] |= cut[turns != INITIAL]
      wrong = ~initial
      metrics.update(
          refine_accuracy=float(refined.mean()), selected_correct=float(rewards[:, :k].mean()),
          refine_wrong_to_right=float(out["refined"][wrong].mean()) if wrong.any() else float("nan"),
          persistently_failed_solved=float(solved.sum() / failed.sum()) if failed.any() else float("nan"),
          persistently_failed_solved_n=int(solved.sum()),
          refinement_truncated=float(truncated.mean()), refinement_truncated_n=int(truncated.sum()),
          selected_truncated_n=int(truncated[rows[turns != INITIAL]].sum()),
          critique_truncated_n=int(np.sum(out["critique_truncated"])),
          refine_length=float(lengths[:, out["refine_turn"]].mean()))
      if self.args.critique == "cot":
        metrics["critique_length"] = float(lengths[:, 1].mean())
    return Collected(batches={"policy": batch}, metrics=metrics, group_rows=g)

  def evaluate(self, params, problems) -> dict:
    """Greedy first attempts on held-out problems (the paper's pass@1, greedy here)."""
    texts = self.episode((Turn("policy"),), params, problems, self.eval_rng, greedy=True).texts(INITIAL)
    return {"accuracy": float(self.task.score(problems, texts).mean()), "n": len(problems)}

  # --- supervised warm-up ------------------------------------------------------------------------
  def warmup_batches(self, problems) -> dict:
    """Policy: refinement episodes [q][attempt][critique][refine instruction][solution] (loss on the
    solution, and on a right attempt), the critique of each type in turn (one warm-up serves every
    arm); the oracle critique stands for the CoT one. Critic (a trained role of its own, whatever
    recipe_args.critique): [q][attempt][critique instruction] -> the oracle critique. Self-critique
    (share='policy'): the policy learns both, as Critique-RL's warm-up. Attempts: a right solution
    or, with probability WARMUP_FLAWED, a task-made slip."""
    rng = np.random.default_rng([self.cfg.seed, zlib.crc32(problems[0].id.encode())])
    crit_ids, ref_ids = self.critique_ids(), self.refine_ids()
    # Room for a cot episode whichever critique this run uses (the oracle critique's own length
    # when the run has no critic to bound it: about two solutions).
    critique_new = self.new_tokens("critic") if "critic" in self.role_cfgs else 2 * self.new_tokens("policy")
    cap = max(self.capacity(), self.cfg.rollout.max_prompt_len + 2 * self.new_tokens("policy") + len(crit_ids)
              + critique_new + len(ref_ids))
    kinds = ("simple", "simple_gt", "cot")
    policy_rows, critic_rows = [], []
    for i, p in enumerate(problems):
      text = self.template.first_prompt(p.problem)
      prompt = self.encode_prompt(text)
      attempt = p.solution
      if rng.random() < WARMUP_FLAWED:
        attempt = self.task.flawed_solution(p, rng) or p.solution
      right = bool(self.task.score([p], [attempt])[0] > 0)
      oracle = self.task.oracle_critique(p, attempt)
      if oracle is None:
        raise ValueError(f"critique_grpo warm-up needs Task.oracle_critique; task {self.cfg.task.name!r} has none")
      att = episodes.completion_ids(self.tokenizer, text, prompt, attempt)
      crit = self.tokenizer.encode(oracle) + [self.tokenizer.eos_id]
      kind = kinds[i % len(kinds)]
      if kind == "cot":
        ctx = crit_ids + crit + ref_ids
      else:
        ctx = self.indicative_ids(right, p.answer if kind == "simple_gt" else None)
      sol = episodes.completion_ids(self.tokenizer, text, prompt, p.solution)
      head = list(prompt) + att
      refine_at = len(head) + len(ctx)
      spans = [(refine_at, refine_at + len(sol))] + ([(len(prompt), len(head))] if right else [])
      policy_rows.append((head + ctx + sol, spans))
      critic_rows.append((head + crit_ids + crit, [(len(head) + len(crit_ids), len(head) + len(crit_ids) + len(crit))]))
    critic = self.role_cfgs.get("critic")
    if critic is not None and critic.share == "policy":
      return {"policy": _rows_batch(policy_rows + critic_rows, cap, self.pad_id, n=len(problems))}
    out = {"policy": _rows_batch(policy_rows, cap, self.pad_id)}
    if critic is not None and critic.trained:
      out["critic"] = _rows_batch(critic_rows, cap, self.pad_id)
    return out
