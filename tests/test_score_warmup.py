"""The SCoRe warm-up batch: which tokens carry the loss in each kind of episode."""
import numpy as np

from configs import score as score_config
from critjax.config import from_configdict
from critjax.train import loop


def decode_spans(recipe, tokens, mask):
  """The text of each maximal run of loss-carrying tokens, and the whole episode's text."""
  tok, runs, cur = recipe.tokenizer, [], []
  for t, m in zip(tokens.tolist(), mask.tolist()):
    if m:
      cur.append(t)
    elif cur:
      runs.append(cur)
      cur = []
  if cur:
    runs.append(cur)
  return [tok.decode([t for t in r if t != tok.eos_id]) for r in runs], tok.decode(
      [t for t in tokens.tolist() if t not in (recipe.pad_id, tok.eos_id)])


def test_warmup_episodes_correct_flawed_hasty_and_revised(tmp_path):
  c = score_config.get_config("tiny")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.tokenizer.corpus_size = 2000
  c.task.update(answer_first=True, min_digits=1, max_digits=2)
  c.warmup.data_args.update(correction_fraction=0.25, hasty_fraction=0.3, revise_fraction=0.25)
  recipe = loop.build(from_configdict(c), tmp_path)["recipe"]
  problems = recipe.task.problems(0, 0, 64)
  batch = recipe.warmup_batch(problems)
  kinds = {"repeat": 0, "flawed": 0, "hasty": 0, "revised": 0}
  for p, toks, mask in zip(problems, batch["tokens"], batch["mask"]):
    spans, text = decode_spans(recipe, toks, mask)
    gold_check = p.solution.split(" ; check ", 1)[1]          # columns and total of the correct solution
    assert text.startswith(f"Q: {p.problem} =")
    if len(spans) == 1:           # hasty: one attempt, loss on its (correct) check only, wrong answer as context
      kinds["hasty"] += 1
      answer = text.split("A:", 1)[1].split(";", 1)[0].strip()
      assert answer != p.answer
      assert spans[0].strip() == f"; check {gold_check}"
      assert text.count("A:") == 1
    else:                         # two attempts, both trained, the instruction between them is not
      assert len(spans) == 2
      first, second = (s.strip() for s in spans)
      answers = [s.split("A:", 1)[1].split(";", 1)[0].strip() for s in (first, second)]
      if first == second == p.solution.strip():
        kinds["repeat"] += 1
      elif second == p.solution.strip():        # a wrong first attempt, then the correct solution
        assert answers[0] != p.answer
        kinds["flawed"] += 1
      else:                                     # a right first attempt "revised" into a wrong one
        assert first == p.solution.strip() and answers[1] != p.answer
        kinds["revised"] += 1
  # 64 episodes at 0.25 / 0.3 / 0.25: each kind present (binomial odds of a miss are < 1e-6)
  assert all(v > 0 for v in kinds.values()), kinds
  assert float(np.asarray(batch["mask"]).sum()) > 0


def test_misconception_revisions_are_the_carryless_rework(tmp_path):
  """revise_error="misconception": a right first attempt, then the same sum with every carry dropped;
  a sum without a carry repeats the right attempt (the expected strings are written out by hand)."""
  c = score_config.get_config("tiny_premise")
  c.model.update(d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, head_dim=16, d_ff=64)
  c.tokenizer.corpus_size = 2000
  c.warmup.data_args.update(hasty_fraction=0.0, revise_fraction=1.0)
  recipe = loop.build(from_configdict(c), tmp_path)["recipe"]
  problems = recipe.task.problems(0, 0, 40)
  batch = recipe.warmup_batch(problems)
  seen = {"carry": 0, "none": 0}
  for p, toks, mask in zip(problems, batch["tokens"], batch["mask"]):
    first, second = (s.strip() for s in decode_spans(recipe, toks, mask)[0])
    assert first == p.solution.strip()
    a, b = map(int, p.problem.split("+"))
    if (a % 10) + (b % 10) >= 10 or (a // 10 % 10) + (b // 10 % 10) >= 10:
      cols = [(a % 10, b % 10), (a // 10, b // 10)][:max(len(str(a)), len(str(b)))]
      digits = "".join(str((x + y) % 10) for x, y in reversed(cols)).lstrip("0") or "0"
      check = " ; ".join(f"{x}+{y}={x + y} c0" for x, y in cols)
      assert second == f"A: {digits} ; check {check}", (p.problem, second)
      seen["carry"] += 1
    else:
      assert second == first
      seen["none"] += 1
  assert all(seen.values()), seen
