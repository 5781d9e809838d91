"""Multi-turn episodes rendered with a model's chat template: the token stream the sampler builds
(prompt ids, generated turn ending at the end-of-turn marker, appended instruction chunk) equals
transformers' `apply_chat_template` of the same conversation."""
import json

import pytest
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from configs import score as score_config
from critjax.config import from_configdict
from critjax.train import loop
from test_chat import CORPUS, FAMILIES


@pytest.mark.parametrize("family", ["chatml", "llama3", "gemma"])
def test_episode_tokens_equal_apply_chat_template(tmp_path, family):
  template, special, tcfg, end = FAMILIES[family]
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=special,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  tok.save(str(tmp_path / "tokenizer.json"))
  (tmp_path / "tokenizer_config.json").write_text(json.dumps(
      dict(tcfg, tokenizer_class="PreTrainedTokenizerFast", chat_template=template)))

  c = score_config.get_config("tiny")
  c.model.update(vocab_size=320, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.tokenizer.update(kind="hf", path=str(tmp_path), chat_template=True)
  c.rollout.update(max_prompt_len=64)
  recipe = loop.build(from_configdict(c), tmp_path / "w")["recipe"]

  hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
  problem, attempt = "Solve 12 + 7.", "The answer is 19."
  instr = recipe.template.correction_prompt()
  end_id = hf.convert_tokens_to_ids(end)
  # what the sampler holds after turn 1 stopped at the end-of-turn marker and the instruction was appended
  stream = (recipe.encode_prompt(recipe.template.first_prompt(problem))
            + hf.encode(attempt, add_special_tokens=False) + [end_id] + recipe.instruction_ids())
  msgs = [{"role": "user", "content": recipe.template.first_prompt(problem)},
          {"role": "assistant", "content": attempt}, {"role": "user", "content": instr}]
  expect = hf.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True, return_dict=False)
  assert stream == list(expect)
  assert end_id in recipe.sampler.scfg.extra_stop_ids or end_id == recipe.sampler.scfg.eos_id
