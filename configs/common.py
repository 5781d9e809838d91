"""Shared config blocks: the tiny CPU model and the real-model shapes. Each experiment file starts
from `base_config(variant)` and sets what makes it that method."""
import ml_collections
from ml_collections.config_dict import placeholder

VARIANTS = ("tiny", "qwen2.5-1.5b", "gemma2-2b")


def tiny_model():
  return dict(vocab_size=64, d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, head_dim=32, d_ff=384,
              activation="silu", rope_theta=10_000.0, tie_embeddings=True)


def qwen25_15b_model():
  # Qwen2.5-1.5B-Instruct config.json
  return dict(vocab_size=151_936, d_model=1536, n_layers=28, n_heads=12, n_kv_heads=2, head_dim=128,
              d_ff=8960, activation="silu", norm_eps=1e-6, rope_theta=1_000_000.0, tie_embeddings=True,
              qkv_bias=True, dtype="bfloat16", param_dtype="float32", remat=True)


def qwen25_7b_model():
  # Qwen2.5-7B-Instruct config.json
  return dict(vocab_size=152_064, d_model=3584, n_layers=28, n_heads=28, n_kv_heads=4, head_dim=128,
              d_ff=18_944, activation="silu", norm_eps=1e-6, rope_theta=1_000_000.0, tie_embeddings=False,
              qkv_bias=True, dtype="bfloat16", param_dtype="float32", remat=True)


def qwen3_model(size: str):
  """Qwen3-4B / Qwen3-8B config.json (QK-norm, no attention bias; the 4B ties its embeddings)."""
  d = dict(vocab_size=151_936, n_layers=36, n_heads=32, n_kv_heads=8, head_dim=128, activation="silu",
           norm_eps=1e-6, rope_theta=1_000_000.0, qk_norm=True, dtype="bfloat16", param_dtype="float32", remat=True)
  if size == "4b":
    return dict(d, d_model=2560, d_ff=9728, tie_embeddings=True)
  if size == "8b":
    return dict(d, d_model=4096, d_ff=12_288, tie_embeddings=False)
  raise ValueError(f"unknown Qwen3 size {size!r}; expected '4b' or '8b'")


def gemma2_2b_model():
  # Gemma-2-2B-it config.json
  return dict(vocab_size=256_000, d_model=2304, n_layers=26, n_heads=8, n_kv_heads=4, head_dim=256,
              d_ff=9216, activation="gelu_tanh", norm_eps=1e-6, rope_theta=10_000.0, tie_embeddings=True,
              norm_offset=True, embed_scale=True, post_norms=True, attn_logit_softcap=50.0,
              final_logit_softcap=30.0, query_pre_attn_scalar=256.0, sliding_window=4096,
              sliding_window_pattern=2, dtype="bfloat16", param_dtype="float32", remat=True)


def base_config(arg: str) -> ml_collections.ConfigDict:
  """Every field's default, stated once for the tiny CPU variant; a real-model variant then changes
  only what differs (model, mesh, task, tokenizer, the warm-up's start, sizes and cadences)."""
  if arg not in VARIANTS:
    raise ValueError(f"unknown config variant {arg!r}; expected one of {VARIANTS}")
  cd = ml_collections.ConfigDict
  c = cd()
  c.name = ""
  c.recipe = ""
  c.seed = 0
  c.recipe_args = cd()
  c.roles = cd()            # none: one 'policy' role from model / optim / rollout (README)
  c.model = cd(tiny_model())
  c.mesh = cd(dict(data=-1, fsdp=1, tensor=1, distributed=False))
  # Path fields default to None as typed placeholders, so `--config.task.path=...` can set them
  # (ml_collections refuses to override a plain None).
  c.task = cd(dict(name="arithmetic", min_digits=2, max_digits=3, answer_first=False, check_total=True, filler_max=0,
                   path=placeholder(str), split="train", pool_size=0))
  c.tokenizer = cd(dict(kind="train_spm", path=placeholder(str), vocab_size=64, corpus_size=20_000,
                        chat_template=False))
  c.warmup = cd(dict(steps=150, batch_size=32, learning_rate=3e-3, checkpoint=placeholder(str), data="repeat",
                     data_args=cd()))
  c.rollout = cd(dict(prompts_per_step=16, group_size=8, max_prompt_len=16, max_new_tokens=48, temperature=1.0,
                      top_k=0, top_p=1.0))
  c.rl = cd(dict(
      advantage="grpo", ppo_epochs=1, num_minibatches=1, micro_batch_size=0,
      dynamic_sampling=False, max_gen_batches=1, overlong_filter=False, soft_overlong_cache=0, logprob_chunk=-1,
      loss=dict(ratio="token", clip_low=0.2, clip_high=0.2, dual_clip_c=placeholder(float), kl_estimator="k3",
                kl_coef=0.0, aggregation="seq_mean_token_mean", norm_len=placeholder(int), entropy_coef=0.0,
                kl_placement="loss", dpo_beta=0.1, rpo_alpha=0.0)))
  c.optim = cd(dict(learning_rate=3e-4, warmup_steps=0, b1=0.9, b2=0.99, weight_decay=0.0, grad_clip=1.0))
  c.train = cd(dict(steps=100, log_every=1, eval_every=25, eval_prompts=256, checkpoint_every=25, keep_checkpoints=2,
                    max_skipped_steps=10))
  if arg == "tiny":
    return c
  c.model = cd(qwen25_15b_model() if arg == "qwen2.5-1.5b" else gemma2_2b_model())
  c.mesh.update(data=1, fsdp=8)
  c.task.name = "gsm8k"
  c.tokenizer.update(kind="hf", path=f"checkpoints/{arg}", vocab_size=0, corpus_size=0, chat_template=True)
  c.warmup.update(steps=0, learning_rate=1e-5, checkpoint=f"checkpoints/{arg}")
  c.rollout.update(prompts_per_step=64, group_size=16, max_prompt_len=512, max_new_tokens=1024)
  c.optim.update(learning_rate=1e-6, warmup_steps=10)
  c.rl.update(num_minibatches=4, micro_batch_size=16)
  c.train.update(steps=500, eval_every=50, eval_prompts=1319, checkpoint_every=50, keep_checkpoints=3)
  return c
