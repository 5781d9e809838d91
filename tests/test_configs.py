"""Every config variant builds, converts to the typed config and validates, including the real-model
ones that cannot run here; their shapes match the published models' parameter counts."""
import math

import jax
import pytest

from critjax.config import from_configdict
from critjax.models import decoder
from experiments.config_loading import load_config

FILES = ["grpo", "dapo", "dr_grpo", "gspo", "score"]
VARIANTS = ["tiny", "qwen2.5-1.5b", "gemma2-2b"]
# Published sizes: Qwen2.5-1.5B 1.54B parameters, Gemma-2-2B 2.61B.
PARAMS = {"qwen2.5-1.5b": 1.54e9, "gemma2-2b": 2.61e9}


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_config_builds_and_validates(name, variant):
  cfg = from_configdict(load_config(f"configs/{name}.py:{variant}"))
  assert cfg.recipe in ("grpo", "score")
  if variant != "tiny":
    assert cfg.mesh.fsdp * max(cfg.mesh.data, 1) * cfg.mesh.tensor == 8
    assert cfg.warmup.checkpoint and cfg.tokenizer.kind == "hf"
    rows = cfg.rollout.prompts_per_step * cfg.rollout.group_size
    assert rows % cfg.rl.num_minibatches == 0
    assert (rows // cfg.rl.num_minibatches) % cfg.rl.micro_batch_size == 0


@pytest.mark.parametrize("variant", sorted(PARAMS))
def test_real_model_shapes_match_published_sizes(variant):
  cfg = from_configdict(load_config(f"configs/grpo.py:{variant}")).model
  shapes = jax.eval_shape(lambda: decoder.init_params(cfg, jax.random.key(0))[0])
  n = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))
  assert abs(n - PARAMS[variant]) / PARAMS[variant] < 0.02


def test_grpo_7b_variant_is_the_memory_goals_step():
  cfg = from_configdict(load_config("configs/grpo.py:qwen2.5-7b"))
  r, m = cfg.rollout, cfg.model
  assert (m.d_model, m.n_layers, m.vocab_size, m.dtype, m.remat) == (3584, 28, 152_064, "bfloat16", True)
  assert (cfg.mesh.fsdp, r.max_prompt_len + r.max_new_tokens) == (8, 2048)
  assert cfg.rl.micro_batch_size // cfg.mesh.fsdp == 4                       # 4 rows x 2k tokens per device
  assert (r.prompts_per_step * r.group_size // cfg.rl.num_minibatches) % cfg.rl.micro_batch_size == 0
  assert cfg.rl.loss.kl_coef == 0.04 and cfg.warmup.checkpoint == "checkpoints/qwen2.5-7b"


@pytest.mark.parametrize("variant", ["tiny", "tiny_self", "qwen2.5-7b"])
def test_critique_rl_configs_build_and_validate(variant):
  cfg = from_configdict(load_config(f"configs/critique_rl.py:{variant}"))
  roles = cfg.role_configs()
  assert cfg.recipe == "critique_rl" and set(roles) == {"actor", "critic"}
  assert cfg.rl.advantage == "rloo" and cfg.rl.ppo_epochs == 2 and cfg.rollout.group_size == 4     # K = 4
  assert (cfg.rl.loss.kl_placement, cfg.rl.loss.kl_estimator, cfg.rl.loss.kl_coef) == ("reward", "k1", 0.01)
  assert roles["critic"].temperature == 0.7
  if variant == "tiny_self":
    assert roles["critic"].share == "actor" and roles["critic"].optim is None
  if variant == "qwen2.5-7b":       # ALGORITHMS.md §4: lr 5e-7, batch 64, micro-batch 4, Stage I 500 steps
    assert not roles["actor"].trained and roles["actor"].init == "hf"
    assert roles["critic"].optim.learning_rate == 5e-7 and roles["critic"].init == "hf"
    assert cfg.rollout.prompts_per_step * cfg.rollout.group_size == 64 and cfg.rl.micro_batch_size == 4
    assert round(cfg.train.steps * cfg.recipe_args["stage1_fraction"]) == 500
    assert cfg.rollout.max_prompt_len == 2048 and roles["critic"].max_new_tokens == 1536
    assert cfg.mesh.fsdp * max(cfg.mesh.data, 1) * cfg.mesh.tensor == 8
    shapes = jax.eval_shape(lambda: decoder.init_params(roles["critic"].model, jax.random.key(0))[0])
    n = sum(math.prod(x.shape) for x in jax.tree.leaves(shapes))
    assert abs(n - 7.62e9) / 7.62e9 < 0.02             # Qwen2.5-7B: 7.62B parameters


def test_answer_then_check_variant_is_the_tiny_toy_in_that_format():
  tiny, check = (load_config(f"configs/score.py:{v}") for v in ("tiny", "tiny_check"))
  assert check.task.answer_first and not check.task.check_total and check.warmup.data_args.hasty_fraction == 0.3
  assert check.model == tiny.model and check.rl == tiny.rl and check.rollout == tiny.rollout
  from_configdict(check)
  discover = load_config("configs/score.py:tiny_discover")
  assert discover.warmup.data_args.correction_fraction == 0.0 and tiny.warmup.data_args.correction_fraction == 0.2
  discover.warmup.data_args.correction_fraction = check.warmup.data_args.correction_fraction
  assert discover == check       # the one difference
  premise = load_config("configs/score.py:tiny_premise")
  assert premise.warmup.data_args.revise_fraction == 0.4 and premise.warmup.data_args.revise_error == "misconception"
  premise.warmup.data_args.update(revise_fraction=0.0, revise_error="slip")
  assert premise == load_config("configs/score.py:tiny_discover")     # the two differences


def test_variant_names_are_checked():
  with pytest.raises(ValueError, match="unknown config variant"):
    load_config("configs/grpo.py:qwen-7b")


@pytest.mark.parametrize("fields, named", [
    (dict(correction_fraction=1.5), "warmup.data_args.correction_fraction"),
    (dict(hasty_fraction=-0.1), "warmup.data_args.hasty_fraction"),
    (dict(revise_fraction=2.0), "warmup.data_args.revise_fraction"),
    (dict(correction_fraction=0.6, hasty_fraction=0.6), "correction_fraction \\+ hasty_fraction \\+ revise_fraction"),
    (dict(correction_fraction=0.5, revise_fraction=0.6), "0.5 \\+ 0.0 \\+ 0.6"),
    (dict(revise_error="carry"), "warmup.data_args.revise_error must be 'slip' or 'misconception', got 'carry'"),
    (dict(revise_frac=0.1), "unknown field\\(s\\) warmup.data_args.revise_frac"),
])
def test_warmup_fractions_are_checked(fields, named):
  from critjax.config import WarmupConfig
  with pytest.raises(ValueError, match=named):
    WarmupConfig(data="toy_mix", data_args=fields)
  with pytest.raises(ValueError, match="unknown warm-up data builder|takes no warmup.data_args"):
    WarmupConfig(data="repeat", data_args=fields)
