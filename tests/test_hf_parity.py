"""Parity with transformers (the independent reference) for every supported family.

Tiny random models are built offline with `XxxForCausalLM(XxxConfig(...))`, their weights redrawn
at unit scale (HF's 0.02 init makes every logit ~0 and hides mistakes), saved, imported, and
required to match: logits to 1e-4 on right-padded batches, 32 greedy tokens, and an
export -> `from_pretrained` round trip.
"""
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import torch  # test extra: CI installs torch (CPU build) and transformers; a missing one fails loudly
import transformers

from critjax.models import decoder, families, hf_io

BASE = dict(vocab_size=101, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, rms_norm_eps=1e-6)
LLAMA3_ROPE = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=8)   # short context so every band is exercised

CASES = {
    # GQA, untied head, Llama 3.1 RoPE scaling.
    "llama_gqa_rope3": ("LlamaConfig", "LlamaForCausalLM",
                        dict(BASE, tie_word_embeddings=False, rope_theta=500.0, rope_scaling=LLAMA3_ROPE)),
    # Multi-head (K = H), tied embeddings.
    "llama_tied_mha": ("LlamaConfig", "LlamaForCausalLM", dict(BASE, num_key_value_heads=4, tie_word_embeddings=True)),
    "qwen2_bias_tied": ("Qwen2Config", "Qwen2ForCausalLM", dict(BASE, tie_word_embeddings=True, rope_theta=1e6)),
    # head_dim != hidden / heads, QK-norm.
    "qwen3_qknorm": ("Qwen3Config", "Qwen3ForCausalLM", dict(BASE, head_dim=16, tie_word_embeddings=False)),
    # MQA, embedding scale, (1 + w) norms, tanh GELU.
    "gemma_mqa": ("GemmaConfig", "GemmaForCausalLM", dict(BASE, num_key_value_heads=1, head_dim=16)),
    # Sandwich norms, both soft-caps, query_pre_attn_scalar, window 4 on layer 0 (sequences are longer).
    "gemma2_softcap_window": ("Gemma2Config", "Gemma2ForCausalLM",
                              dict(BASE, sliding_window=4, query_pre_attn_scalar=24, attn_logit_softcapping=1.0,
                                   final_logit_softcapping=2.0)),
    # QK-norm with offset, local RoPE base, global linear scaling, every 3rd layer global.
    "gemma3_pattern": ("Gemma3TextConfig", "Gemma3ForCausalLM",
                       dict(BASE, num_hidden_layers=4, sliding_window=4, query_pre_attn_scalar=16,
                            layer_types=["sliding_attention", "sliding_attention", "full_attention",
                                         "sliding_attention"],
                            rope_parameters={"full_attention": dict(rope_type="linear", factor=2.0, rope_theta=1e6),
                                             "sliding_attention": dict(rope_type="default", rope_theta=10_000.0)})),
}

B, T = 3, 12
LENGTHS = np.array([12, 8, 3])
STEPS = 32


def _randomize(model, offset_norms: bool, seed: int = 0):
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():
      if p.ndim == 2:
        p.copy_(torch.randn(p.shape, generator=g) * p.shape[1] ** -0.5)
      elif "norm" in name:
        p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (0.0 if offset_norms else 1.0))
      else:  # biases
        p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def _tokens(seed=1):
  tok = np.random.RandomState(seed).randint(1, BASE["vocab_size"], (B, T))
  mask = np.arange(T)[None, :] < LENGTHS[:, None]
  return np.where(mask, tok, 0), mask


def _hf_logits(model, tok, mask):
  with torch.no_grad():
    return model(torch.tensor(tok), attention_mask=torch.tensor(mask.astype(np.int64))).logits.numpy()


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request, tmp_path_factory):
  cfg_cls, model_cls, kw = CASES[request.param]
  hc = getattr(transformers, cfg_cls)(**kw)
  model = getattr(transformers, model_cls)(hc).eval()
  model.config._attn_implementation = "eager"
  _randomize(model, offset_norms=cfg_cls.startswith("Gemma"))
  path = tmp_path_factory.mktemp(request.param)
  model.save_pretrained(path)
  params, cfg = hf_io.import_hf(path)
  return request.param, model, path, params, cfg


def test_logits_match_on_padded_batch(case):
  name, model, _, params, cfg = case
  tok, mask = _tokens()
  ref = _hf_logits(model, tok, mask)
  out, _ = decoder.forward(params, jnp.asarray(tok), cfg)
  err = np.abs(np.asarray(out) - ref)[mask].max()
  assert err < 1e-4, f"{name}: max |logit diff| {err}"
  assert np.abs(ref[mask]).max() > 0.5, "logits too small for the comparison to mean anything"


def _greedy(params, cfg, prompt, steps):
  b, p = prompt.shape
  cache = decoder.init_cache(cfg, b, p + steps)
  fwd = jax.jit(lambda prm, t, c, s: decoder.forward(prm, t, cfg, cache=c, start_b=s))
  logits, cache = fwd(params, jnp.asarray(prompt), cache, jnp.zeros((b,), jnp.int32))
  out = []
  nxt = jnp.argmax(logits[:, -1], -1)
  for i in range(steps):
    out.append(np.asarray(nxt))
    logits, cache = fwd(params, nxt[:, None], cache, jnp.full((b,), p + i, jnp.int32))
    nxt = jnp.argmax(logits[:, -1], -1)
  return np.stack(out, 1)


def test_greedy_generation_identical(case):
  name, model, _, params, cfg = case
  prompt = np.random.RandomState(2).randint(1, BASE["vocab_size"], (2, 5))
  with torch.no_grad():
    ref = model.generate(torch.tensor(prompt), attention_mask=torch.ones(prompt.shape, dtype=torch.long),
                         max_new_tokens=STEPS, min_new_tokens=STEPS, do_sample=False, eos_token_id=None,
                         pad_token_id=0).numpy()[:, prompt.shape[1]:]
  ours = _greedy(params, cfg, prompt, STEPS)
  np.testing.assert_array_equal(ours, ref, err_msg=name)


def test_export_reloads_in_transformers(case, tmp_path):
  name, model, path, params, cfg = case
  base = json.loads((path / "config.json").read_text())
  # Small shards force the index + multi-file layout.
  hf_io.export_hf(params, cfg, tmp_path, family=base["model_type"], base_config=base, max_shard_bytes=40_000)
  assert (tmp_path / hf_io.INDEX_FILE).exists()
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path).eval()
  reloaded.config._attn_implementation = "eager"
  tok, mask = _tokens()
  np.testing.assert_allclose(_hf_logits(reloaded, tok, mask)[mask], _hf_logits(model, tok, mask)[mask],
                             atol=1e-6, err_msg=name)
  # The legacy config spelling written on export reads back to the same config and params.
  params2, cfg2 = hf_io.import_hf(tmp_path)
  assert cfg2 == cfg
  jax.tree.map(np.testing.assert_array_equal, params2, params)


def test_mapping_covers_param_tree():
  for mt in families.FAMILIES.names():
    fam = families.FAMILIES.get(mt)
    for tie in (False, True):
      hf = dict(BASE, model_type=mt, tie_word_embeddings=tie, sliding_window=4)
      cfg, _ = families.config_from_hf(hf)
      shapes = jax.eval_shape(lambda: decoder.init_params(cfg, jax.random.key(0))[0])
      specs = families.tensor_specs(cfg, fam)
      paths = {s.path: s.shape for s in specs}
      leaves = {tuple(k.key for k in kp): tuple(x.shape)
                for kp, x in jax.tree_util.tree_flatten_with_path(shapes)[0]}
      assert paths == leaves, mt


# ------------------------------------------------------------------------------- bad input

@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
  hc = transformers.Qwen2Config(**BASE)
  model = transformers.Qwen2ForCausalLM(hc)
  path = tmp_path_factory.mktemp("qwen2_small")
  model.save_pretrained(path)
  return path


def _copy(src, dst):
  import shutil
  shutil.copytree(src, dst)
  return dst


def _edit(path, fn):
  from safetensors.numpy import load_file, save_file
  f = path / hf_io.SINGLE_FILE
  tensors = fn(load_file(str(f)))
  save_file(tensors, str(f), metadata={"format": "pt"})


def test_error_unknown_architecture(small_ckpt, tmp_path):
  d = _copy(small_ckpt, tmp_path / "c")
  hf = json.loads((d / "config.json").read_text())
  hf["model_type"] = "mamba"
  (d / "config.json").write_text(json.dumps(hf))
  with pytest.raises(ValueError, match="model_type='mamba'"):
    hf_io.import_hf(d)


def test_error_missing_tensor(small_ckpt, tmp_path):
  d = _copy(small_ckpt, tmp_path / "c")
  _edit(d, lambda t: {k: v for k, v in t.items() if k != "model.layers.1.mlp.up_proj.weight"})
  with pytest.raises(hf_io.CheckpointError, match=r"missing tensor.*model\.layers\.1\.mlp\.up_proj\.weight"):
    hf_io.import_hf(d)


def test_error_unexpected_tensor(small_ckpt, tmp_path):
  d = _copy(small_ckpt, tmp_path / "c")
  _edit(d, lambda t: {**t, "model.layers.0.self_attn.o_proj.bias": np.zeros(32, np.float32)})
  with pytest.raises(hf_io.CheckpointError, match=r"unexpected tensor.*o_proj\.bias"):
    hf_io.import_hf(d)


def test_error_wrong_shape(small_ckpt, tmp_path):
  d = _copy(small_ckpt, tmp_path / "c")
  _edit(d, lambda t: {**t, "model.layers.0.self_attn.k_proj.weight": np.zeros((8, 32), np.float32)})
  with pytest.raises(hf_io.CheckpointError, match=r"'model\.layers\.0\.self_attn\.k_proj\.weight'.*shape \(8, 32\)"):
    hf_io.import_hf(d)


def test_error_wrong_dtype(small_ckpt, tmp_path):
  d = _copy(small_ckpt, tmp_path / "c")
  _edit(d, lambda t: {**t, "model.norm.weight": np.zeros(32, np.int8)})
  with pytest.raises(hf_io.CheckpointError, match=r"'model\.norm\.weight'.*dtype I8"):
    hf_io.import_hf(d)


def test_error_missing_shard(small_ckpt, tmp_path):
  params, cfg = hf_io.import_hf(small_ckpt)
  hf_io.export_hf(params, cfg, tmp_path, family="qwen2", max_shard_bytes=20_000)
  shards = sorted(tmp_path.glob("model-*.safetensors"))
  assert len(shards) >= 2
  shards[1].unlink()
  with pytest.raises(hf_io.CheckpointError, match=shards[1].name):
    hf_io.import_hf(tmp_path)


def test_bf16_import_and_export(small_ckpt, tmp_path):
  params, cfg = hf_io.import_hf(small_ckpt, param_dtype="bfloat16")
  assert params["embed"].dtype == jnp.bfloat16
  hf_io.export_hf(params, cfg, tmp_path, family="qwen2")
  model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16)
  w = model.model.layers[0].self_attn.q_proj.weight.detach().float().numpy()
  np.testing.assert_array_equal(w.T.reshape(32, 4, 8), np.asarray(params["layer_0"]["attn"]["q_proj"], np.float32))


def test_sharded_import_on_fake_mesh(small_ckpt):
  """Each tensor lands on its NamedSharding over 4 fake CPU devices (own process: XLA flags)."""
  code = textwrap.dedent(f"""
    import jax, numpy as np
    from critjax import sharding as sh
    from critjax.models import decoder, families, hf_io
    cfg, _ = families.config_from_hf(hf_io.read_hf_config({str(small_ckpt)!r}))
    mesh = sh.make_mesh(sh.MeshConfig(fsdp=2, tensor=2))
    shapes = jax.eval_shape(lambda: decoder.init_params(cfg, jax.random.key(0))[0])
    shardings = sh.tree_shardings(decoder.logical_axes(cfg), shapes, mesh)
    params, _ = hf_io.import_hf({str(small_ckpt)!r}, shardings=shardings)
    plain, _ = hf_io.import_hf({str(small_ckpt)!r})
    jax.tree.map(lambda a, s: None if a.sharding == s else 1 / 0, params, shardings)
    jax.tree.map(np.testing.assert_array_equal, params, plain)
    assert len(params['layer_0']['attn']['q_proj'].sharding.device_set) == 4
    print('ok', params['layer_0']['attn']['q_proj'].sharding.spec)
  """)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
  r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


# ------------------------------------------------------------------------------- released configs

# Released config.json fields (legacy spelling, as on the hub) of the models the configs target.
REAL = {
    "Qwen2.5-1.5B-Instruct": (1.54e9, dict(
        model_type="qwen2", hidden_size=1536, intermediate_size=8960, num_attention_heads=12, num_hidden_layers=28,
        num_key_value_heads=2, vocab_size=151936, rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        hidden_act="silu", sliding_window=32768, max_window_layers=21, use_sliding_window=False, rope_scaling=None)),
    "Qwen3-0.6B": (0.60e9, dict(
        model_type="qwen3", hidden_size=1024, intermediate_size=3072, num_attention_heads=16, num_hidden_layers=28,
        num_key_value_heads=8, head_dim=128, vocab_size=151936, rope_theta=1000000.0, rms_norm_eps=1e-6,
        tie_word_embeddings=True, hidden_act="silu", attention_bias=False, use_sliding_window=False)),
    "Llama-3.2-1B": (1.24e9, dict(
        model_type="llama", hidden_size=2048, intermediate_size=8192, num_attention_heads=32, num_hidden_layers=16,
        num_key_value_heads=8, head_dim=64, vocab_size=128256, rope_theta=500000.0, rms_norm_eps=1e-5,
        tie_word_embeddings=True, hidden_act="silu",
        rope_scaling=dict(factor=32.0, high_freq_factor=4.0, low_freq_factor=1.0,
                          original_max_position_embeddings=8192, rope_type="llama3"))),
    "gemma-2-2b-it": (2.61e9, dict(
        model_type="gemma2", hidden_size=2304, intermediate_size=9216, num_attention_heads=8, num_hidden_layers=26,
        num_key_value_heads=4, head_dim=256, vocab_size=256000, rope_theta=10000.0, rms_norm_eps=1e-6,
        hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=256,
        sliding_window=4096, attn_logit_softcapping=50.0, final_logit_softcapping=30.0)),
    "gemma-3-1b-it": (1.00e9, dict(
        model_type="gemma3_text", hidden_size=1152, intermediate_size=6912, num_attention_heads=4,
        num_hidden_layers=26, num_key_value_heads=1, head_dim=256, vocab_size=262144, rope_theta=1000000.0,
        rope_local_base_freq=10000.0, rope_scaling=None, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
        query_pre_attn_scalar=256, sliding_window=512, sliding_window_pattern=6, attn_logit_softcapping=None,
        final_logit_softcapping=None)),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_released_configs(name):
  """Each released config maps to a ModelConfig whose parameter count equals transformers' own model
  (built on the meta device: no memory) and the published size."""
  published, hf = REAL[name]
  cfg, _ = families.config_from_hf(hf)
  shapes = jax.eval_shape(lambda: decoder.init_params(cfg, jax.random.key(0))[0])
  ours = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))
  with torch.device("meta"):
    ref_model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**hf))
  assert ours == sum(p.numel() for p in ref_model.parameters())
  assert abs(ours - published) / published < 0.02, (name, ours)
  if hf["model_type"].startswith("gemma"):
    assert cfg.norm_offset and cfg.embed_scale and cfg.activation == "gelu_tanh" and cfg.tie_embeddings
  if name == "gemma-2-2b-it":
    assert (cfg.attn_logit_softcap, cfg.final_logit_softcap, cfg.sliding_window_pattern) == (50.0, 30.0, 2)
    assert [cfg.layer_is_local(i) for i in range(3)] == [True, False, True]
  if name == "gemma-3-1b-it":
    assert (cfg.rope_theta, cfg.rope_local_theta, cfg.sliding_window, cfg.qk_norm) == (1e6, 1e4, 512, True)
    assert [i for i in range(cfg.n_layers) if not cfg.layer_is_local(i)] == [5, 11, 17, 23]
  if name == "Llama-3.2-1B":
    assert dict(cfg.rope_scaling)["factor"] == 32.0 and cfg.norm_eps == 1e-5
  if name.startswith("Qwen2.5"):
    assert cfg.qkv_bias and not cfg.qk_norm
  if name.startswith("Qwen3"):
    assert cfg.qk_norm and not cfg.qkv_bias and cfg.head_dim == 128


def test_unsupported_config_fields_are_named():
  with pytest.raises(ValueError, match="rope_scaling type 'yarn'"):
    families.config_from_hf(dict(BASE, model_type="qwen2", rope_scaling=dict(type="yarn", factor=4.0)))
  with pytest.raises(ValueError, match="use_sliding_window=true"):
    families.config_from_hf(dict(BASE, model_type="qwen2", use_sliding_window=True))
  with pytest.raises(ValueError, match="lacks 'intermediate_size'"):
    families.config_from_hf({k: v for k, v in dict(BASE, model_type="llama").items() if k != "intermediate_size"})
  with pytest.raises(ValueError, match="not 'every n-th layer global'"):
    families.config_from_hf(dict(BASE, model_type="gemma2", layer_types=["full_attention", "sliding_attention"]))
