"""Chat rendering against transformers' `apply_chat_template` (token ids) and against the message
contents themselves (which tokens belong to which assistant turn).

Templates are written here in the three families' formats (ChatML as Qwen uses, Llama 3 headers,
Gemma turns) over BPE tokenizers trained offline; they are not copies of the released templates.
"""
import json

import numpy as np
import pytest
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from critjax.data import chat
from critjax.data import tokenizers as ct
from critjax.data.spm_training import EOS_ID, train_sentencepiece

CHATML = (
    "{%- for message in messages %}\n"
    "{%- if loop.first and message.role != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}\n"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}\n")
LLAMA3 = (
    "{{- bos_token }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"
    "{%- endif %}\n")
GEMMA = (
    "{{ bos_token }}\n"
    "{% if messages[0].role == 'system' %}{% set prefix = messages[0].content + '\\n\\n' %}"
    "{% set turns = messages[1:] %}{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}\n"
    "{% for m in turns %}\n"
    "{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}\n"
    "{% set role = 'model' if m.role == 'assistant' else m.role %}\n"
    "{{ '<start_of_turn>' + role + '\\n' + (prefix if loop.first else '') + m.content | trim + '<end_of_turn>\\n' }}\n"
    "{% endfor %}\n"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}\n")

FAMILIES = {
    "chatml": (CHATML, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
               dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"), "<|im_end|>"),
    "llama3": (LLAMA3, ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                        "<|eot_id|>"],
               dict(bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"), "<|eot_id|>"),
    "gemma": (GEMMA, ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"],
              dict(bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"), "<end_of_turn>"),
}
CORPUS = ["Solve 12 + 7. The answer is 19.", "There might be an error in the solution above. Fix it.",
          "You are a careful math tutor.", "Natalia sold 48 clips in April and half as many in May."] * 40

PROBLEM = "Natalia sold 48 clips in April and half as many in May. How many in total?"
EPISODE = chat.self_correction_messages(
    PROBLEM, ["48 + 24 = 62. The answer is 62.", "  48 + 24 = 72. The answer is 72.\n"],
    "There might be an error in the solution above. Fix it.", system="You are a careful math tutor.")
CONVERSATIONS = {
    "one_turn_prompt": ([{"role": "user", "content": PROBLEM}], True),
    "episode": (EPISODE, False),
    "episode_no_system": (EPISODE[1:], False),
    "episode_next_turn_prompt": (EPISODE[1:3] + [EPISODE[3]], True),
}


def write_family_tokenizer(name, d):
  """A BPE tokenizer.json + tokenizer_config.json (with the family's chat template) in folder d."""
  template, special, cfg, end = FAMILIES[name]
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=special,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  tok.save(str(d / "tokenizer.json"))
  (d / "tokenizer_config.json").write_text(json.dumps(
      dict(cfg, tokenizer_class="PreTrainedTokenizerFast", chat_template=template)))
  return end


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
  d = tmp_path_factory.mktemp(request.param)
  return request.param, d, write_family_tokenizer(request.param, d)


@pytest.mark.parametrize("conv", sorted(CONVERSATIONS))
def test_ids_equal_apply_chat_template(family, conv):
  name, d, _ = family
  messages, gen = CONVERSATIONS[conv]
  ref = transformers.AutoTokenizer.from_pretrained(d)
  want = ref.apply_chat_template(messages, tokenize=True, add_generation_prompt=gen, return_dict=False)
  want_text = ref.apply_chat_template(messages, tokenize=False, add_generation_prompt=gen)
  out = chat.tokenize_chat(ct.load_tokenizer(d), chat.ChatTemplate.from_tokenizer_config(d), messages,
                           add_generation_prompt=gen)
  assert out.text == want_text
  assert out.ids.tolist() == list(want), (name, conv)
  assert out.ids.shape == out.message.shape == out.role.shape == out.assistant_turn.shape


def test_assistant_turns_are_the_generated_tokens(family):
  """Tokens labelled turn k decode to attempt k's content (as the template writes it) plus the stop
  marker: exactly what a sampler would have produced after the turn's generation prompt."""
  name, d, end = family
  tok = ct.load_tokenizer(d)
  out = chat.tokenize_chat(tok, chat.ChatTemplate.from_tokenizer_config(d), EPISODE)
  attempts = [m["content"] for m in EPISODE if m["role"] == "assistant"]
  for k, content in enumerate(attempts):
    content = content if name == "chatml" else content.strip()   # llama3/gemma templates trim
    assert tok.decode(out.ids[out.assistant_turn == k]) == content + end
  assert set(np.unique(out.assistant_turn)) == {-1, 0, 1}
  # Turn tokens are contiguous and sit inside their message with the assistant role.
  for k in (0, 1):
    idx = np.nonzero(out.assistant_turn == k)[0]
    assert np.all(np.diff(idx) == 1)
    assert np.all(out.role[idx] == chat.ROLE_IDS["assistant"])
    assert len(set(out.message[idx])) == 1
  # Every user token is labelled user; the episode's second user turn is the instruction.
  assert [m["role"] for m in EPISODE] == ["system", "user", "assistant", "user", "assistant"]
  instr = out.ids[out.message == 3]
  assert "There might be an error" in tok.decode(instr)
  assert np.all(out.role[out.message == 3] == chat.ROLE_IDS["user"])
  # Loss mask over all turns covers only generated tokens.
  assert (out.assistant_turn >= 0).sum() == sum((out.assistant_turn == k).sum() for k in (0, 1))


def test_generation_prompt_is_unlabelled(family):
  name, d, _ = family
  out = chat.tokenize_chat(ct.load_tokenizer(d), chat.ChatTemplate.from_tokenizer_config(d),
                           EPISODE[:4], add_generation_prompt=True)
  assert out.message[-1] == chat.NO_TURN and out.assistant_turn[-1] == chat.NO_TURN
  assert out.assistant_turn.max() == 0


def test_template_errors_surface(family):
  name, d, _ = family
  tmpl = chat.ChatTemplate.from_tokenizer_config(d)
  tok = ct.load_tokenizer(d)
  with pytest.raises(ValueError, match="message 1 has role 'robot'"):
    chat.tokenize_chat(tok, tmpl, [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])
  if name == "gemma":
    import jinja2
    with pytest.raises(jinja2.exceptions.TemplateError, match="roles must alternate"):
      chat.tokenize_chat(tok, tmpl, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])


def test_prefix_unstable_template_is_refused(family):
  _, d, _ = family
  # Drops every assistant turn but the last (as some reasoning templates do with their thoughts).
  src = ("{% for m in messages %}{% if m.role != 'assistant' or loop.last %}"
         "{{ '<' + m.role + '>' + m.content }}{% endif %}{% endfor %}")
  with pytest.raises(ValueError, match="not prefix-stable at message 1"):
    chat.tokenize_chat(ct.load_tokenizer(d), chat.ChatTemplate(src), EPISODE[1:])


def test_template_syntax_error_at_construction():
  import jinja2
  with pytest.raises(jinja2.exceptions.TemplateSyntaxError):
    chat.ChatTemplate("{% for m in messages %}")
  with pytest.raises(ValueError, match="non-empty"):
    chat.ChatTemplate("")


def test_sentencepiece_turns(tmp_path):
  """The toy task's plain-text template over the sentencepiece backend: offsets are UTF-8-safe."""
  path = train_sentencepiece(CORPUS + ["Q: A: café naïve"] * 5, 90, tmp_path / "toy.model")
  tok = ct.load_tokenizer(path)
  src = ("{% for m in messages %}{% if m.role == 'user' %}{{ 'Q: ' + m.content + '\\n' }}"
         "{% else %}{{ 'A: ' + m.content + eos_token }}{% endif %}{% endfor %}"
         "{% if add_generation_prompt %}{{ 'A:' }}{% endif %}")
  tmpl = chat.ChatTemplate(src, {"eos_token": "</s>"})
  msgs = chat.self_correction_messages("café 12 + 7?", ["naïve 18", "19"], "Fix it.")
  out = chat.tokenize_chat(tok, tmpl, msgs, stop=[EOS_ID])
  # sentencepiece reads '</s>' in text as characters, not the control id: turns end with the text.
  assert tok.decode(out.ids[out.assistant_turn == 0]).strip().startswith("naïve 18")
  assert tok.decode(out.ids[out.assistant_turn == 1]).strip().startswith("19")
  assert out.ids.tolist() == tok.encode(tmpl.render(msgs))
