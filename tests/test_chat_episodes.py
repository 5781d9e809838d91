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


@pytest.mark.parametrize("family", ["chatml", "llama3", "gemma"])
def test_warmup_episode_is_the_chat_conversation(tmp_path, family):
  """With a chat template the SCoRe warm-up trains on the conversation a rollout builds (checked
  against transformers' apply_chat_template): loss on each attempt's text and its end-of-turn marker,
  none on the prompt, the instruction or the template's glue."""
  end = write_family_tokenizer(family, tmp_path)
  c = score_config.get_config("tiny")
  c.model.update(vocab_size=320, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.tokenizer.update(kind="hf", path=str(tmp_path), chat_template=True)
  c.rollout.update(max_prompt_len=64, max_new_tokens=64)
  c.warmup.data_args.correction_fraction = 0.0
  recipe = loop.build(from_configdict(c), tmp_path / "w")["recipe"]
  hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
  p = recipe.task.problems(0, 0, 1)[0]
  batch = recipe.warmup_batch([p])
  tokens, mask = batch["tokens"][0].tolist(), batch["mask"][0].tolist()

  prompt, instr = recipe.template.first_prompt(p.problem), recipe.template.correction_prompt()
  answer = p.solution.strip()
  msgs = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer},
          {"role": "user", "content": instr}, {"role": "assistant", "content": answer}]
  want = list(hf.apply_chat_template(msgs, tokenize=True, return_dict=False))
  end_id = hf.convert_tokens_to_ids(end)
  k = len(want) - want[::-1].index(end_id)         # through the last end-of-turn marker; glue after it dropped
  assert tokens[:k] == want[:k] and not any(mask[k:])
  # the loss-carrying runs decode to the two attempts, each closed by its end-of-turn marker
  runs, cur = [], []
  for t, m in zip(tokens, mask):
    if m:
      cur.append(t)
    elif cur:
      runs.append(cur)
      cur = []
  runs += [cur] if cur else []
  assert len(runs) == 2
  for r in runs:
    assert r[-1] == end_id and hf.decode(r[:-1]).strip() == answer
