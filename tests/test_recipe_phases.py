"""A recipe's own supervised phases (Phase(kind='sft') before its RL phases, batches from
Recipe.phase_batches), as rejective fine-tuning uses them: a dataset sampled at the phase's start
(BuildData), SFT on it, then RL from the fine-tuned model; a resume reads the dataset back."""
import json

import pytest
from conftest import assert_resumed_like_uninterrupted, set_fields, strip_timing

from configs import grpo as grpo_config
from critjax.config import from_configdict
from critjax.rl import episodes
from critjax.rl.phases import BuildData, Phase, ResetOptimizer, ResetReference
from critjax.rl.recipes.base import RECIPES
from critjax.rl.recipes.grpo import GRPO, SINGLE_TURN
from critjax.train.loop import build, train
from critjax.train.metrics import read_metrics


class _RFT(GRPO):
  """GRPO after 3 steps of SFT on the policy's own right samples (a rejective fine-tuning stand-in)."""

  def phases(self):
    return [Phase("rft", 3, kind="sft", on_start=(BuildData("policy", "rft"),)), Phase("rl", self.cfg.train.steps)]

  def build_data(self, name, params, rng):
    problems = self.task.problems(self.cfg.seed + 99, 0, 8)
    texts = self.episode(SINGLE_TURN, params, problems, rng).texts(0)
    return [{"prompt": self.template.first_prompt(p.problem), "target": p.solution or t} for p, t in zip(problems, texts)]

  def phase_batches(self, phase, k):
    rows = self.data["rft"]
    part = [rows[(4 * k + j) % len(rows)] for j in range(4)]
    return {"policy": episodes.sft_batch(self.tokenizer, [r["prompt"] for r in part], [r["target"] for r in part],
                                         self.capacity(), pad_id=self.pad_id)}


class _Late(GRPO):
  def phases(self):
    return [Phase("rl", 2), Phase("rft", 2, kind="sft")]


if "test_rft" not in RECIPES:
  RECIPES.register("test_rft")(_RFT)
  RECIPES.register("test_late_sft")(_Late)


def tiny(recipe="test_rft", steps=4):
  c = grpo_config.get_config("tiny")
  c.recipe = recipe
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.warmup.update(steps=3, batch_size=8)
  c.rollout.update(prompts_per_step=4, group_size=4, max_new_tokens=32, max_prompt_len=24)
  c.task.update(min_digits=1, max_digits=2)
  c.tokenizer.corpus_size = 2000
  c.train.update(steps=steps, eval_every=2, eval_prompts=8, checkpoint_every=2)
  return from_configdict(set_fields(c, {}))


def test_phases_run_warmup_then_the_recipes_sft_then_rl_with_the_resets_at_rl(tmp_path):
  phases = build(tiny(), tmp_path)["phases"]
  assert [(p.name, p.kind, p.steps) for p in phases] == [("warmup", "sft", 3), ("rft", "sft", 3), ("rl", "rl", 4)]
  assert BuildData("policy", "rft") in phases[1].on_start
  assert not any(isinstance(h, (ResetOptimizer, ResetReference)) for h in phases[1].on_start)
  assert ResetOptimizer("policy") in phases[2].on_start     # RL starts with a fresh optimizer


def test_a_supervised_phase_after_rl_is_refused(tmp_path):
  with pytest.raises(ValueError, match="supervised phases must come before"):
    build(tiny("test_late_sft"), tmp_path)


def test_rft_phase_trains_on_its_dataset_and_a_resume_reads_it_back(tmp_path, compiled_once):
  cfg = tiny()
  train(cfg, tmp_path / "a")
  rows = [json.loads(x) for x in (tmp_path / "a" / "data" / "rft.jsonl").read_text().splitlines()]
  assert len(rows) == 8
  logged = strip_timing(read_metrics(tmp_path / "a"))
  rft = [r for r in logged if "rft/nll" in r]
  assert [r["step"] for r in rft] == [3, 5]          # global steps: the phase's first and last
  assert [r for r in logged if "warmup/nll" in r]
  train(cfg, tmp_path / "b", stop_after=2)
  train(cfg, tmp_path / "b")                   # resumes in RL: the RFT set is read back, not resampled
  assert_resumed_like_uninterrupted(tmp_path / "a", tmp_path / "b", after=2)
