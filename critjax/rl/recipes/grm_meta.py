"""DeepSeek-GRM's meta RM and the inference-time scaling evaluation (SPCT, arXiv 2504.02495, §3.3 and
Fig. 1 / Table 2; ALGORITHMS.md §6).

A run of this recipe starts from a trained GRM run (configs/grm.py:tiny_meta; both roles'
`init_from` is that run's workdir):

  roles   policy   the GRM, frozen (the GRM run's policy); sampled at rollout.temperature (T = 0.5)
          meta_rm  trained: the GRM's decoder with a scalar head (model.scalar_head; the body starts
                   from the GRM, the head fresh, zero), critjax.rl.losses 'meta_rm_bce'
  phase   meta_rm  supervised (kind 'sft'): at its start (BuildData 'grm_meta') meta_samples GRM
                   trajectories per item of the RFT pool, response order shuffled per sample, each
                   labelled 1 iff correct by SPCT's rule (critjax.rl.grm_scores.trajectory_correct);
                   binary cross-entropy of the head's logit at the trajectory's last token (EOS),
                   meta_batch_size rows per step, in file order, cycling
  eval    the accuracy-versus-k curve on held-out items: greedy, voting@k and meta-RM voting@k for
          k in SCALING_KS up to eval_samples (grm_scores.scaling_curve: the first k of eval_samples
          draws, k_meta = k // 2, a top tie wrong)

Meta-RM data (paper: "non-hinted RFT samples + samples from the trained GRM"): here only samples
of the trained GRM. The RFT set a GRM run stores holds its accepted trajectories only (all label 1),
so adding them would tilt the labels without adding a negative; stated as our deviation.

Shuffling and the shared prefix: the paper shuffles the response order per sample. Here sample j of
an item shows order perms[j % P], P = min(k, n!) distinct orders drawn per item (seeded by the
item), and each order's prompt is sampled ceil(k / P) times from one prefill (the sampler's
num_samples rows share the prompt's KV cache). For n = 2 that is k / 2 samples of each order, so
every nested budget k >= 2 sees both orders equally often.
"""
from __future__ import annotations

import dataclasses
import logging

import jax
import numpy as np

from critjax.eval.bench_metrics import auroc
from critjax.rl.grm_scores import SCALING_KS, scaling_curve
from critjax.rl.losses import check_binary_labels
from critjax.rl.phases import BuildData, Phase
from critjax.rl.recipes.base import RECIPES
from critjax.rl.recipes.grm import GRM, RFT_SEED, GRMArgs
from critjax.rl.recipes.grpo import SINGLE_TURN
from critjax.rl.scalar_rm import scalar_batch, score_texts

META = "grm_meta"


@dataclasses.dataclass(frozen=True)
class GRMMetaArgs(GRMArgs):
  meta_samples: int = 4            # GRM samples per training item (labelled by correctness)
  meta_pool: int = 256             # training items (the RFT pool's stream)
  meta_steps: int = 100            # BCE steps
  meta_batch_size: int = 16
  eval_samples: int = 32           # K_max of the scaling curve

  def __post_init__(self):
    super().__post_init__()
    if min(self.meta_samples, self.meta_pool, self.meta_steps, self.meta_batch_size, self.eval_samples) < 1:
      raise ValueError("config.recipe_args.meta_samples, meta_pool, meta_steps, meta_batch_size and eval_samples "
                       f"must be >= 1, got {self.meta_samples} / {self.meta_pool} / {self.meta_steps} / "
                       f"{self.meta_batch_size} / {self.eval_samples}")
    if self.n_responses < 2:
      raise ValueError(f"config.recipe_args.n_responses={self.n_responses}: the scaling curve ranks n >= 2 responses")


@RECIPES.register("grm_meta")
class GRMMeta(GRM):
  roles = {"policy": "any", "meta_rm": "trained"}
  args_cls = GRMMetaArgs

  def check_args(self, args: dict):
    super().check_args(args)
    meta, grm = self.role_cfgs["meta_rm"], self.role_cfgs["policy"]
    if not meta.model.scalar_head:
      raise ValueError("config.roles.meta_rm.model.scalar_head must be True: the meta RM is a scalar head")
    if dataclasses.replace(meta.model, scalar_head=False) != grm.model:
      raise ValueError("config.roles.meta_rm.model must be the GRM's (config.roles.policy.model) plus scalar_head")
    if grm.trained:
      raise ValueError("config.roles.policy.trained must be False: the GRM is frozen while its meta RM trains")
    if self.cfg.train.steps:
      raise ValueError(f"config.train.steps={self.cfg.train.steps}: recipe 'grm_meta' has no RL phase; its "
                       "training is recipe_args.meta_steps")

  def phases(self) -> list[Phase]:
    return [Phase("meta_rm", self.args.meta_steps, kind="sft", on_start=(BuildData("policy", META),))]

  def references(self) -> list[str]:
    return []

  def supervised_loss_kinds(self, phase: Phase) -> dict[str, str]:
    return {"meta_rm": "meta_rm_bce"} if phase.name == "meta_rm" else {}

  def rows_per_step(self) -> dict[str, int]:
    return {}

  # --- meta-RM data --------------------------------------------------------------------------------
  def build_data(self, name, params, rng) -> list[dict]:
    if name != META:
      return super().build_data(name, params, rng)
    a = self.args
    items = [self.item(p) for p in self.task.problems(self.cfg.seed + RFT_SEED, 0, a.meta_pool)]
    got = self.sample_judgments(params, items, a.meta_samples, rng)
    out = [{"id": it.id, "prompt": j["prompt"], "target": j["text"], "label": int(j["correct"])}
           for it, js in zip(items, got) for j in js]
    pos = sum(r["label"] for r in out)
    logging.info("grm meta-RM data: %d trajectories, %d correct", len(out), pos)
    if pos in (0, len(out)):
      raise ValueError(f"grm_meta: all {len(out)} sampled GRM trajectories are {'right' if pos else 'wrong'}; "
                       "a binary meta RM needs both labels (another GRM checkpoint, or more meta_samples)")
    return out

  def phase_batches(self, phase, k):
    if phase.name != "meta_rm":
      return super().phase_batches(phase, k)
    rows, n = self.data[META], self.args.meta_batch_size
    part = [rows[(k * n + j) % len(rows)] for j in range(n)]
    return {"meta_rm": self.meta_batch([r["prompt"] for r in part], [r["target"] for r in part],
                                       np.array([r["label"] for r in part], np.float32))}

  def meta_batch(self, prompts, texts, labels=None) -> dict:
    """tokens (B, T) of prompt + trajectory + EOS, score_pos (B,) the EOS's index (where the head is
    read), label (B,) float32 in {0, 1} when given."""
    if labels is not None:
      check_binary_labels(labels)
    return scalar_batch(self.tokenizer, prompts, texts, self.capacity(), self.pad_id, labels)

  def meta_scores(self, params, prompts, texts, chunk: int = 256) -> np.ndarray:
    """The meta RM's logit (B,) for each (prompt, trajectory): decoder.scalar_scores at the EOS."""
    return score_texts(params["meta_rm"], self.role_cfgs["meta_rm"].model, self.tokenizer, prompts, texts,
                       self.capacity(), self.pad_id, chunk)

  # --- the scaling curve ---------------------------------------------------------------------------
  def evaluate(self, params, problems) -> dict:
    items = [self.item(p) for p in problems]
    k = self.args.eval_samples
    greedy_texts = self.episode(SINGLE_TURN, params, items, self.eval_rng, greedy=True).texts(0)
    _, g_invalid, g_parsed = self.judge(items, greedy_texts)
    n = self.args.n_responses
    greedy = np.array([p.scores if p.valid else (0,) * n for p in g_parsed])
    got = self.sample_judgments(params, items, k, jax.random.fold_in(self.eval_rng, 1))
    flat = [j for js in got for j in js]
    meta = self.meta_scores(params, [j["prompt"] for j in flat], [j["text"] for j in flat]).reshape(len(items), k)
    scores = np.array([[j["scores"] if j["valid"] else (0,) * n for j in js] for js in got])
    valid = np.array([[j["valid"] for j in js] for js in got])
    best = np.array([it.best for it in items])
    curve = scaling_curve(scores, valid, best, meta_nk=meta, greedy_nn=greedy, greedy_valid_n=~g_invalid,
                          ks=[x for x in SCALING_KS if x <= k])
    out = {"accuracy": curve["greedy"], "greedy_invalid": float(g_invalid.mean()),
           "sample_invalid": curve["invalid_rate"],
           "meta_auc": auroc(meta[valid], np.array([[j["correct"] for j in js] for js in got])[valid])}
    for i, kk in enumerate(curve["k"]):
      out[f"voting_k{kk}"] = curve["voting"][i]
      out[f"meta_voting_k{kk}"] = curve["meta_voting"][i]
    return out

