"""The PCBench-style premise bench: the rule judge on hand-written critiques of one real item per
error type, the JSON-verdict parser, the metric arithmetic, the --limit order, and the bench end to
end on a tiny random-init model."""
import pytest

from critjax.eval import bench_data
from critjax.eval.benches import BENCHES
from critjax.eval.benches.premise import (cell_order, cost_ratio, critique_rates, flaw_values, has_doubt,
                                          interleave, parse_verdict, rule_judge)


@pytest.fixture(scope="module")
def item():
  """One real item per error type (per_cell=1: each type's first is its 'normal' level)."""
  built = bench_data.build_pcbench_style(per_cell=1)
  return {t: next(it for it in built if it.error_type == t) for t in bench_data.ERROR_TYPES}


# Responses written for the items build_pcbench_style(per_cell=1) makes (seed 0). The asserts on
# flaw_values pin those items, so a change in the builder shows here rather than as odd verdicts.
RESPONSES = {
    "contra_premise_insert": ({173.0}, {200.0}, None, [
        "Wait, the problem contradicts itself: it first says the account held $200 at the start of the "
        "week and then that it held $173.",
        "There is an inconsistency here.\nOne sentence gives the starting balance as $200, another as $173.",
        "The starting balance is $200, not $173, so 80 dollars were withheld.",
    ], [
        "She gained 420 - 173 = 247 dollars. So 300 - 247 = 53 dollars were withheld. The answer is 53.",
        "Something seems wrong with this problem. The answer is 80.",            # doubt, flaw not named
        "I checked the premises and there is no contradiction. 420 - 173 = 247, so 53 were withheld.",
        "Her account went from $200 to $420, a gain of $220. 300 - 220 = 80. The answer is 80.",
    ]),
    "contra_infer_insert": ({92.0}, {180.0}, None, [
        "Binkie scored 90, so twice his score is 180; the statement that it is 92 is incorrect.",
        "Twice 90 is 180, not 92. Frankie scored 180 + 15 = 195.",
        "This doesn't make sense: twice Binkie's score cannot be 92 if he bowled 90.",
    ], [
        "Twice Binkie's score is 92, so Frankie scored 92 + 15 = 107. The answer is 107.",
        "Twice 90 is 180, and 180 + 15 = 195. The answer is 195.",
        "There are no errors in the premises. Frankie scored 92 + 15 = 107.",
    ]),
    "flawed_solution_completion": ({86.0}, {70.0}, 1, [
        "Step 1 is wrong: (200+10)/3 is 70, not 86.",
        "There is a mistake in step 1. (200+10)/3 = 70, so the smallest group has 70 - 10 = 60.",
        "The first step has a calculation error; 210/3 = 70. The answer is 60.",
    ], [
        "Step 2: The smallest group has 86 - 10 = 76 students. The answer is 76.",
        "Step 2: Each of the two equal groups has 86 students, with no error so far. The answer is 76.",
        "Step 1 is correct. Step 2: 86 - 10 = 76.",
    ]),
    "irr_query_distraction": ({35.0}, {40.0}, 1, [
        "Before answering: step 1 has an error, since 5*8 is 40. The solution uses multiplication and "
        "subtraction.",
        "The solution uses multiplication and subtraction. Note that 5*8=35 is incorrect; it should be 40.",
        "It uses multiplication and subtraction, although 5 times 8 is 40 rather than 35.",
    ], [
        "The solution uses multiplication (5*8=35) and subtraction (40-14=26).",
        "The solution uses multiplication and subtraction. There is no error in it.",
        "Step 1 uses multiplication and Step 2 uses subtraction. Nothing wrong with step 1.",
    ]),
}


@pytest.mark.parametrize("etype", bench_data.ERROR_TYPES)
def test_rule_judge_on_hand_written_responses(item, etype):
  wrong, true, step, positives, negatives = RESPONSES[etype]
  it = item[etype]
  assert flaw_values(it) == (wrong, true, step)
  for r in positives:
    assert rule_judge(r, it), r
  for r in negatives:
    assert not rule_judge(r, it), r


def test_doubt_cues_and_their_negation():
  assert has_doubt("That is inconsistent") and has_doubt("this does not make sense")
  assert has_doubt("the numbers don't add up") and has_doubt("No, this premise is wrong")
  assert not has_doubt("there is no contradiction") and not has_doubt("I don't see any mistake")
  assert not has_doubt("the solution is error-free") and not has_doubt("nothing wrong here")
  assert not has_doubt("The answer is 26.")


def test_verdict_parser():
  assert parse_verdict('{"if_find_contradiction": "True", "basis": "it names 173"}') is True
  assert parse_verdict('```json\n{"if_find_contradiction": "False", "basis": "no"}\n```') is False
  assert parse_verdict("if_find_contradiction: false") is False
  assert parse_verdict('{"if_find_contradiction": true}') is True            # a JSON boolean
  assert parse_verdict('"if_find_contradiction": "False" ... on reflection "if_find_contradiction": "True"') is True
  assert parse_verdict('Reply with {"if_find_contradiction": "True" or "False"}') is None    # the template echoed
  assert parse_verdict("True") is None and parse_verdict("") is None


def test_metric_arithmetic_by_hand():
  types = ["contra_premise_insert", "contra_premise_insert", "flawed_solution_completion",
           "irr_query_distraction", "contra_infer_insert"]
  levels = ["normal", "medium", "normal", "difficult", "normal"]
  m = critique_rates("PPCR", [True, False, True, False, True], types, levels)
  assert m == pytest.approx({
      "PPCR": 60.0, "PPCR_no_fsc": 50.0,                     # 3/5; items 0,1,3,4: 2/4
      "PPCR/contra_premise_insert": 50.0, "PPCR/contra_infer_insert": 100.0,
      "PPCR/flawed_solution_completion": 100.0, "PPCR/irr_query_distraction": 0.0,
      "PPCR/normal": 100.0, "PPCR/medium": 0.0, "PPCR/difficult": 0.0})
  only_fsc = critique_rates("APCR", [False, True], [types[2]] * 2, ["normal", "normal"])
  assert only_fsc == {"APCR": 50.0, "APCR/flawed_solution_completion": 50.0, "APCR/normal": 50.0}
  assert cost_ratio([10, 20, 30], [10, 10, 10]) == pytest.approx(2.0)
  assert cost_ratio([5, 5], [20, 0]) == pytest.approx(0.5)
  with pytest.raises(ValueError):
    cost_ratio([1], [1, 2])


def test_limit_order_covers_types_then_levels():
  for types in (bench_data.ERROR_TYPES, bench_data.ERROR_TYPES[:3], bench_data.ERROR_TYPES[:2],
                bench_data.ERROR_TYPES[:1]):
    order = cell_order(types)
    assert len(set(order)) == 3 * len(types)
    for start in range(0, len(order), len(types)):
      assert {t for t, _ in order[start:start + len(types)]} == set(types)
    assert {l for _, l in order[:3]} == set(bench_data.DIFFICULTIES)
  fake = [bench_data.PremiseItem(f"{t}/{l}/{r}", t, l, "", "", "", "", "", "", "")
          for t in bench_data.ERROR_TYPES for l in bench_data.DIFFICULTIES for r in range(2)]
  got = interleave(fake, bench_data.ERROR_TYPES)
  assert [it.id for it in got[:4]] == ["contra_premise_insert/normal/0", "contra_infer_insert/medium/0",
                                       "flawed_solution_completion/difficult/0", "irr_query_distraction/normal/0"]
  assert len(got) == 24 and all(it.id.endswith("/1") for it in got[12:])


def test_load_limit_and_subset():
  b = BENCHES.get("premise")()
  items = b.load(5, "irr_query_distraction,contra_infer_insert")
  assert len(items) == 5 and {it.error_type for it in items} == {"irr_query_distraction", "contra_infer_insert"}
  assert {it.difficulty for it in items} == set(bench_data.DIFFICULTIES)
  with pytest.raises(ValueError, match="unknown error type"):
    b.load(2, "contra_premise")


@pytest.fixture(scope="module")
def tiny_model(item):
  """A random-init one-layer decoder with a small byte-level BPE tokenizer, built in memory: the
  bench's plumbing through the real Generator and sampler, without the ~30 s CPU of training a tiny
  run (load_model on a trained run is tested in test_evaluate.py)."""
  import jax
  from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
  from critjax import sharding as sh
  from critjax.data.tokenizers import HFTokenizer
  from critjax.eval.models import EvalModel, _place
  from critjax.models import decoder
  from critjax.models.config import ModelConfig
  tok = Tokenizer(models.BPE())
  tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
  corpus = [t for it in item.values() for t in (it.flawed_question, it.flaw)] * 4
  tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<eos>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
  hf = HFTokenizer.from_tokenizer(tok, {"eos_token": "<eos>", "pad_token": "<eos>"})
  cfg = ModelConfig(vocab_size=hf.vocab_size, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  _, shardings = _place(cfg, sh.make_mesh(sh.MeshConfig()))
  params = jax.device_put(decoder.init_params(cfg, jax.random.PRNGKey(0))[0], shardings)
  return EvalModel(cfg, params, hf, None, "premise-test-tiny", "tiny")


def test_premise_bench_end_to_end_on_a_tiny_model(tiny_model, tmp_path):
  from critjax.eval.generation import Generator
  gen = Generator(tiny_model, tmp_path, batch_size=2, max_prompt_len=256, progress=False)
  b = BENCHES.get("premise")()
  items = b.load(2, None)
  assert [it.error_type for it in items] == ["contra_premise_insert", "contra_infer_insert"]
  res = b.run(gen, items, {"max_new_tokens": 8})
  assert len(res.items) == 2 and all(isinstance(v, float) for v in res.metrics.values())
  for k in ("rule/PPCR", "rule/APCR", "llm/PPCR", "llm/APCR", "rule/PPCR_no_fsc", "rule/normal_false_positive_rate",
            "llm/judge_parse_failure_rate/flawed", "normal_acc", "rule/PPCR/contra_infer_insert", "rule/APCR/medium"):
    assert k in res.metrics, k
  assert res.chance["rule/PPCR"] == 0.0 and res.chance["llm/APCR"] == 0.0
  row = res.items[0]
  assert set(row) >= {"normal", "flawed", "instructed", "flaw", "normal_correct"}
  # the tiny model's noise is not a JSON verdict: counted as unparsed, and scored False
  fails = [r[v]["llm"] is None for r in res.items for v in ("flawed",)]
  assert res.metrics["llm/judge_parse_failure_rate/flawed"] == pytest.approx(100 * sum(fails) / 2)
  tok = gen.model.tokenizer
  assert row["flawed"]["tokens"] == len(tok.encode(row["flawed"]["output"]))
