"""Multi-turn episodes rendered with a model's chat template: the token stream the sampler builds
(prompt ids, generated turn ending at the end-of-turn marker, appended instruction chunk) equals
transformers' `apply_chat_template` of the same conversation."""
import pytest
import transformers

from configs import score as score_config
from critjax.config import from_configdict
from critjax.train import loop
from test_chat import write_family_tokenizer


@pytest.mark.parametrize("family", ["chatml", "llama3", "gemma"])
def test_episode_tokens_equal_apply_chat_template(tmp_path, family):
  end = write_family_tokenizer(family, tmp_path)

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
