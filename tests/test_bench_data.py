"""Benchmark loaders on the shared files (counts = the data README's), bad records named by
file:line and field, `take`, and the PCBench-style premise builder."""
import collections
import json
import logging
import re

import pytest

from critjax.data import paths
from critjax.eval import bench_data as bd


# ---------------------------------------------------------------------------------------------
# Real files


def _readme_counts() -> dict[str, int]:
  """`file -> records` from the table in ../shared/data/README.md."""
  out = {}
  for line in (paths.data_dir() / "README.md").read_text().splitlines():
    m = re.match(r"\|\s*`([^`]+)`\s*\|.*\|\s*(\d+)\s*\|\s*`[0-9a-f]+`\s*\|\s*$", line)
    if m:
      out[m.group(1)] = int(m.group(2))
  return out


README = _readme_counts()
LOADERS = {
    "processbench": bd.load_processbench, "realcritic": bd.load_realcritic,
    "gsm8k_solutions": bd.load_gsm8k_solutions, "judgebench": bd.load_judgebench,
    "rmbench": bd.load_rmbench, "strategyqa": bd.load_strategyqa,
    "math_perturb": bd.load_math_perturb, "gsm8k_problems": bd.load_gsm8k_problems,
}


@pytest.fixture(scope="module")
def loaded():
  return {name: fn() for name, fn in LOADERS.items()}


def test_bench_files_exist_and_are_in_the_readme():
  assert set(bd.BENCH_FILES) == set(LOADERS)
  for files in bd.BENCH_FILES.values():
    for f in files:
      assert (paths.data_dir() / f).is_file(), f
      assert f in README, f


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_counts_per_file_equal_the_readme(loaded, name):
  per_file = collections.Counter(r.source.rsplit(":", 1)[0] for r in loaded[name])
  per_problem = len(bd.GSM8K_GENERATORS) if name == "gsm8k_solutions" else 1
  assert per_file == {f: README[f] * per_problem for f in bd.BENCH_FILES[name]}
  assert len({r.id for r in loaded[name]}) == len(loaded[name])  # ids are unique


def test_totals(loaded):
  assert {k: len(v) for k, v in loaded.items()} == {
      "processbench": 3400, "realcritic": 2093, "gsm8k_solutions": 5276, "judgebench": 620,
      "rmbench": 798, "strategyqa": 229, "math_perturb": 558, "gsm8k_problems": 1319}


def test_processbench_first_record_and_error_counts(loaded):
  r = loaded["processbench"][0]
  assert (r.id, r.subset, r.generator, r.label, r.final_answer_correct, len(r.steps)) == \
      ("gsm8k-0", "gsm8k", "Qwen2-7B-Instruct", 1, False, 4)
  assert r.problem.startswith("Sue lives in a fun neighborhood.")
  assert r.source == "processbench/gsm8k.json:2" and isinstance(r.steps, tuple)
  # EVALUATION.md §4: erroneous / fully-correct per subset
  counts = collections.Counter((x.subset, x.label == -1) for x in loaded["processbench"])
  assert counts == {("gsm8k", False): 207, ("gsm8k", True): 193, ("math", False): 594,
                    ("math", True): 406, ("olympiadbench", False): 661,
                    ("olympiadbench", True): 339, ("omnimath", False): 759, ("omnimath", True): 241}
  with pytest.raises(Exception):
    r.label = 0  # frozen


def test_realcritic_first_records(loaded):
  by_task = {}
  for r in loaded["realcritic"]:
    by_task.setdefault(r.task, r)
  assert set(by_task) == set(bd.REALCRITIC_TASKS)
  arc = by_task["arc-challenge"]
  assert arc.id == "realcritic/arc-challenge/0" and arc.idx == 0
  assert arc.question.startswith("What is the complementary base to cytosine in DNA?")
  assert arc.choices == ("(A) uracil", "(B) thymine", "(C) guanine", "(D) adenine")
  assert (arc.gold, arc.solution_answer, arc.solution_correct) == ("C", "D", False)
  g = by_task["gsm8k"]
  assert (g.gold, g.solution_correct, g.model, g.choices) == ("540", True, "Qwen1.5-0.5B-Chat", ())
  assert g.solution.startswith("To calculate the total meters James runs a week")
  gpqa = by_task["gpqa"]  # no `choices` field: parsed from the question's 'Answer Choices:'
  assert len(gpqa.choices) == 4 and gpqa.choices[0].startswith("(A) 1H NMR:")
  assert gpqa.choices[3] == "(D) 1H NMR: chemical reference (ppm): 7.8 (2H, d), 7.6 (2H, d), 2.3 (3H, s)"
  assert by_task["mmlu_stem"].choices[:2] == ("(A) I only", "(B) II only")
  # every multiple-choice item has its options; each task is about half right (EVALUATION.md §2)
  for r in loaded["realcritic"]:
    assert bool(r.choices) == (r.task in bd.REALCRITIC_MULTIPLE_CHOICE)
  right = collections.Counter(r.task for r in loaded["realcritic"] if r.solution_correct)
  assert right == {"arc-challenge": 131, "college_math": 139, "gpqa": 95, "gsm8k": 136,
                   "math": 134, "minerva_math": 130, "mmlu_stem": 146, "olympiadbench": 133}


def test_gsm8k_solutions_first_problem(loaded):
  first = loaded["gsm8k_solutions"][:4]
  assert [r.generator for r in first] == list(bd.GSM8K_GENERATORS)
  assert [r.correct for r in first] == [False, False, False, True]
  assert {r.gold for r in first} == {"18"} and {r.problem_index for r in first} == {0}
  assert first[0].question.startswith("Janet’s ducks lay 16 eggs per day.")
  assert first[3].solution.endswith("A: 18") and first[0].solution.endswith("A: 26")
  assert first[0].id == "gsm8k_solutions/0/6b_finetuning"
  # the gold equals gsm8k/test.jsonl's '####' gold for every problem
  golds = {r.problem_index: r.gold for r in loaded["gsm8k_solutions"]}
  assert [golds[i] for i in range(1319)] == [p.answer for p in loaded["gsm8k_problems"]]
  assert sum(r.correct for r in loaded["gsm8k_solutions"]) == 286 + 515 + 458 + 742


def test_judgebench_first_records(loaded):
  jb = loaded["judgebench"]
  r = jb[0]
  assert (r.pair_id, r.source_dataset, r.label, r.response_model) == (
      "e302b0a0-28d5-5a3c-b1af-fedcf5543e72", "mmlu-pro-law", "A>B", "gpt-4o-2024-05-13")
  assert r.question.startswith("A college student initiated a criminal case")
  c = jb[350]
  assert (c.pair_id, c.source_dataset, c.response_model) == (
      "b5ce1305-50fe-5a5e-b785-325ab15c6d2b", "mmlu-pro-health", "claude-3-5-sonnet-20240620")
  assert collections.Counter(x.label for x in jb) == {"A>B": 193 + 143, "B>A": 157 + 127}


def test_rmbench_first_records(loaded):
  rm = loaded["rmbench"]
  r = rm[0]
  assert (r.id, r.domain, r.subset) == ("chat/8", "chat", "alpacaeval")
  assert r.prompt == "What are different drawers I should have for clothes?"
  assert len(r.chosen) == len(r.rejected) == 3
  assert r.chosen[0].startswith("Organize your wardrobe") and "shoes" in r.rejected[0]
  assert "###" in r.chosen[2] and "###" not in r.chosen[1]  # concise, plain, markdown
  code = next(x for x in rm if x.domain == "code")
  assert code.id == "code/8" and code.subset == "bigcode/humanevalpack"


def test_strategyqa_and_math_perturb_first_records(loaded):
  s = loaded["strategyqa"][0]
  assert (s.qid, s.answer) == ("e0044a7b4d146d611e73", False)
  assert s.facts == ("Albany, GA has around 75,000 people", "Albany, NY has almost 100,000 people")
  assert len(s.decomposition) == 5 and s.source == "strategyqa/dev.json:2"
  assert collections.Counter(x.answer for x in loaded["strategyqa"]) == {False: 122, True: 107}
  mp = loaded["math_perturb"]
  simple, hard = mp[0], mp[279]
  assert (simple.id, simple.answer, simple.level, simple.type) == ("simple/1", "10", "Level 5", "Algebra")
  assert (hard.id, hard.problem_id, hard.answer) == ("hard/1", 1, "36")
  assert all(isinstance(x.answer, str) for x in mp) and "16.5" in {x.answer for x in mp}


def test_gsm8k_problems_first_record(loaded):
  p = loaded["gsm8k_problems"][0]
  assert (p.id, p.index, p.answer, p.source) == ("gsm8k/test/0", 0, "18", "gsm8k/test.jsonl:1")
  assert p.solution.startswith("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9") and "####" not in p.solution


def test_subset_selection_and_root_override(tmp_path):
  assert {r.subset for r in bd.load_processbench("math")} == {"math"}
  assert len(bd.load_realcritic(["gsm8k", "gpqa"])) == 273 + 190
  assert len(bd.load_gsm8k_solutions("175b_verification")) == 1319
  with pytest.raises(ValueError, match="unknown RealCritic task"):
    bd.load_realcritic("nope")
  (tmp_path / "strategyqa").mkdir()
  (tmp_path / "strategyqa" / "dev.json").write_text(json.dumps(
      [{"qid": "q", "question": "Is it?", "answer": True, "facts": [], "decomposition": []}]))
  got = bd.load_strategyqa(root=tmp_path)
  assert got == [bd.StrategyQAItem("q", "q", "Is it?", True, (), (), "strategyqa/dev.json:1")]


# ---------------------------------------------------------------------------------------------
# Bad records: the message names file, line (and record index for JSON arrays), and field

PB = {"id": "x-0", "generator": "g", "problem": "p", "steps": ["a", "b"],
      "final_answer_correct": True, "label": -1}
RC = {"idx": 0, "question": "q", "gt": "1", "pred": "1", "model": "m", "reasoning": "r",
      "previous_score": [True]}
SOL = {"question": "q", "ground_truth": "x\nA: 5",
       **{g: {"is_correct": True, "solution": "s\nA: 5"} for g in bd.GSM8K_GENERATORS}}
JB = {"pair_id": "p", "original_id": None, "source": "livebench-math", "question": "q",
      "response_model": "m", "response_A": "a", "response_B": "b", "label": "A>B"}
RM = {"id": 1, "subset": "s", "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["d", "e", "f"]}
SQA = {"qid": "q", "question": "q?", "answer": True, "facts": ["f"], "decomposition": ["d"]}
MP = {"problem_id": 1, "problem": "p", "answer": 3, "level": "Level 5", "type": "Algebra"}
GS = {"question": "q", "answer": "work\n#### 7"}


def _drop(rec, key):
  return {k: v for k, v in rec.items() if k != key}


def _with(rec, **kw):
  return {**rec, **kw}


def _json_array_text(records):
  """One record per line after '[' so record i starts on line i + 2."""
  return "[\n" + ",\n".join(json.dumps(r) for r in records) + "\n]\n"


def _jsonl_text(records):
  return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


# (loader, kwargs, file name, good record, bad record, field in the message)
JSONL_CASES = [
    ("realcritic", {"tasks": "gsm8k"}, "test.jsonl", RC, _drop(RC, "reasoning"), "reasoning"),
    ("realcritic", {"tasks": "gsm8k"}, "test.jsonl", RC, _with(RC, previous_score=["yes"]),
     "previous_score"),
    ("realcritic", {"tasks": "arc-challenge"}, "test.jsonl", _with(RC, choices={"text": ["x"], "label": ["A"]}),
     RC, "choices"),
    ("realcritic", {"tasks": "arc-challenge"}, "test.jsonl", _with(RC, choices={"text": ["x"], "label": ["A"]}),
     _with(RC, choices={"text": [1], "label": ["A"]}), "choices.text"),
    ("gsm8k_solutions", {}, "sols.jsonl", SOL, _with(SOL, **{"175b_verification": {"solution": "s"}}),
     "175b_verification.is_correct"),
    ("gsm8k_solutions", {}, "sols.jsonl", SOL, _with(SOL, ground_truth="no answer"), "ground_truth"),
    ("judgebench", {}, "m.jsonl", JB, _with(JB, label="A=B"), "label"),
    ("judgebench", {}, "m.jsonl", JB, _drop(JB, "response_B"), "response_B"),
    ("math_perturb", {}, "math_perturb_hard.jsonl", MP, _drop(MP, "answer"), "answer"),
    ("math_perturb", {}, "math_perturb_hard.jsonl", MP, _with(MP, problem_id="1"), "problem_id"),
    ("gsm8k_problems", {}, "test.jsonl", GS, _with(GS, answer="no marker"), "answer"),
    ("gsm8k_problems", {}, "test.jsonl", GS, _with(GS, question=None), "question"),
]


@pytest.mark.parametrize("name,kwargs,fname,good,bad,field", JSONL_CASES)
def test_bad_jsonl_record_names_file_line_and_field(tmp_path, name, kwargs, fname, good, bad, field):
  p = tmp_path / fname
  p.write_text(_jsonl_text([good, "", good, bad]))  # the bad record is on line 4 (3 is blank)
  with pytest.raises(ValueError) as e:
    LOADERS[name](path=p, **kwargs)
  msg = str(e.value)
  assert msg.startswith(f"{p}:4:") and f"'{field}'" in msg, msg


@pytest.mark.parametrize("name", ["realcritic", "gsm8k_solutions", "judgebench", "math_perturb",
                                  "gsm8k_problems"])
def test_broken_jsonl_line_names_file_and_line(tmp_path, name):
  good = {"realcritic": RC, "gsm8k_solutions": SOL, "judgebench": JB, "math_perturb": MP,
          "gsm8k_problems": GS}[name]
  p = tmp_path / "x.jsonl"
  p.write_text(_jsonl_text([good, json.dumps(good)[:-5]]))  # line 2 torn
  with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}:2: not valid JSON"):
    LOADERS[name](path=p)


JSON_CASES = [
    ("processbench", {}, PB, _drop(PB, "steps"), "steps"),
    ("processbench", {}, PB, _with(PB, label="1"), "label"),
    ("processbench", {}, PB, _with(PB, label=2), "label"),  # only 2 steps
    ("processbench", {}, PB, _with(PB, steps=["a", 3]), "steps"),
    ("rmbench", {"domains": "chat"}, RM, _with(RM, chosen=["a", "b"]), "chosen"),
    ("rmbench", {"domains": "chat"}, RM, _drop(RM, "prompt"), "prompt"),
    ("strategyqa", {}, SQA, _with(SQA, answer="yes"), "answer"),
    ("strategyqa", {}, SQA, _drop(SQA, "facts"), "facts"),
]


@pytest.mark.parametrize("name,kwargs,good,bad,field", JSON_CASES)
def test_bad_json_array_record_names_file_line_index_and_field(tmp_path, name, kwargs, good, bad, field):
  p = tmp_path / "x.json"
  p.write_text(_json_array_text([good, good, bad]))  # record 2 starts on line 4
  with pytest.raises(ValueError) as e:
    LOADERS[name](path=p, **kwargs)
  msg = str(e.value)
  assert msg.startswith(f"{p}:4: record 2:") and f"'{field}'" in msg, msg


@pytest.mark.parametrize("name", ["processbench", "rmbench", "strategyqa"])
def test_broken_json_array_names_file_and_line(tmp_path, name):
  good = {"processbench": PB, "rmbench": RM, "strategyqa": SQA}[name]
  p = tmp_path / "x.json"
  p.write_text(_json_array_text([good, good])[:-12])  # truncated inside record 1 (line 3)
  with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}:3: not valid JSON"):
    LOADERS[name](path=p)
  p.write_text('{"not": "an array"}')
  with pytest.raises(ValueError, match=rf"^{re.escape(str(p))}:1: expected a JSON array"):
    LOADERS[name](path=p)


def test_good_temp_files_load(tmp_path):
  p = tmp_path / "math.json"
  p.write_text(_json_array_text([PB]))
  [r] = bd.load_processbench(path=p)
  assert (r.subset, r.steps, r.source) == ("math", ("a", "b"), f"{p}:2")
  q = tmp_path / "math_perturb_simple.jsonl"
  q.write_text(_jsonl_text([MP, _with(MP, answer=0.5)]))
  assert [(x.variant, x.answer) for x in bd.load_math_perturb(path=q)] == [("simple", "3"), ("simple", "0.5")]
  d = tmp_path / "gpqa"
  d.mkdir()
  (d / "test.jsonl").write_text(_jsonl_text([_with(RC, question="Q?\nAnswer Choices: (A) x y (B) z")]))
  [g] = bd.load_realcritic(path=d / "test.jsonl")
  assert (g.task, g.choices) == ("gpqa", ("(A) x y", "(B) z"))


# ---------------------------------------------------------------------------------------------
# take


def test_take(caplog):
  recs = list(range(5))
  assert bd.take(recs, None) == recs and not bd.take(recs, None).short
  t = bd.take(recs, 2)
  assert t == [0, 1] and (t.requested, t.available, t.short) == (2, 5, False)
  for bad in (0, -1, True, 1.5, "3"):
    with pytest.raises(ValueError, match="limit must be a positive integer"):
      bd.take(recs, bad)
  with caplog.at_level(logging.WARNING, logger="critjax.eval.bench_data"):
    t = bd.take(recs, 9, name="JudgeBench pairs")
  assert t == recs and t.short and (t.requested, t.available) == (9, 5)
  assert "limit 9 is more than the 5 JudgeBench pairs available" in caplog.text


# ---------------------------------------------------------------------------------------------
# PCBench-style premise items


@pytest.fixture(scope="module")
def problems():
  return bd.load_gsm8k_problems()


@pytest.fixture(scope="module")
def items(problems):
  return bd.build_pcbench_style(problems)


def _norm(s):
  return " ".join(s.split())


def test_premise_builder_is_deterministic(problems, items):
  assert bd.build_pcbench_style(problems) == items
  other = bd.build_pcbench_style(problems, seed=1)
  assert other != items and len(other) == len(items)
  small = bd.build_pcbench_style(problems, per_cell=3, error_types=["contra_premise_insert"])
  assert len(small) == 9 and {i.error_type for i in small} == {"contra_premise_insert"}
  with pytest.raises(ValueError, match="per_cell"):
    bd.build_pcbench_style(problems, per_cell=0)


def test_premise_builder_fills_every_cell_with_distinct_problems(problems, items):
  cells = collections.Counter((i.error_type, i.difficulty) for i in items)
  assert cells == {(t, d): 100 for t in bd.ERROR_TYPES for d in bd.DIFFICULTIES}
  assert len({i.base_id for i in items}) == 1200 and len({i.id for i in items}) == 1200
  levels = bd.difficulty_levels(problems)
  assert collections.Counter(levels.values()) == {"normal": 440, "medium": 440, "difficult": 439}
  by_id = {p.id: p for p in problems}
  steps = {d: [] for d in bd.DIFFICULTIES}
  for i in items:
    p = by_id[i.base_id]
    assert i.difficulty == levels[p.id] and i.source == p.source
    assert (i.original_question, i.original_answer) == (p.question, p.answer)
    assert i.flaw_text in i.flawed_question and i.flawed_question != i.original_question
    assert i.instructed_question == i.flawed_question + "\n\n" + bd.CHECK_INSTRUCTION
    assert "<<" not in i.flawed_question and "PCBench-style" not in i.flaw  # plain text
    steps[i.difficulty].append(p.solution.count("\n") + 1)
  mean = {d: sum(v) / len(v) for d, v in steps.items()}
  assert mean["normal"] < mean["medium"] < mean["difficult"]  # longer reasoning = harder


_NUM = re.compile(r"\d[\d,]*")


def _differ_in_one_number(a: str, b: str):
  """(number in a, number in b) when a and b differ exactly in one number token, else None."""
  sa, sb = _NUM.split(a), _NUM.split(b)
  na, nb = _NUM.findall(a), _NUM.findall(b)
  if sa != sb or len(na) != len(nb):
    return None
  diff = [(x, y) for x, y in zip(na, nb) if x != y]
  return diff[0] if len(diff) == 1 else None


def test_contra_premise_insert_contradicts_a_stated_number(items):
  for i in (x for x in items if x.error_type == "contra_premise_insert"):
    assert i.flaw_text not in i.original_question
    # the flawed question is the original with one sentence added
    assert _norm(i.flawed_question.replace(i.flaw_text, "", 1)) == _norm(i.original_question)
    premises, _ = bd._split_question(i.original_question)
    pairs = [_differ_in_one_number(s, i.flaw_text) for s in premises]
    assert any(pairs), i.id
    orig, new = next(p for p in pairs if p)
    assert int(orig.replace(",", "")) != int(new.replace(",", "")) and orig in i.flaw and new in i.flaw


def test_contra_infer_insert_states_a_wrong_derived_fact(items, problems):
  by_id = {p.id: p for p in problems}
  for i in (x for x in items if x.error_type == "contra_infer_insert"):
    assert i.flaw_text not in i.original_question
    assert _norm(i.flawed_question.replace(i.flaw_text, "", 1)) == _norm(i.original_question)
    m = re.fullmatch(r"The inserted statement .* gives (\d+), but the premises give (.+) = (\d+)\.", i.flaw)
    assert m, i.flaw
    wrong, expr, right = int(m.group(1)), m.group(2), int(m.group(3))
    assert wrong != right and bd.display_value(expr) == right
    assert expr in by_id[i.base_id].solution  # a calculation of the gold solution
    assert str(wrong) in i.flaw_text and "=" not in i.flaw_text


def _calcs(text):
  """(value of the displayed expression, number shown after its '=') for each '= N' in text."""
  out = []
  for m in re.finditer(r"=\s*\$?(\d[\d,]*(?:\.\d+)?)", text):
    expr = re.search(r"[\d\s.,$%()+\-*/x×÷]*$", text[:m.start()]).group()
    out.append((bd.display_value(expr), float(m.group(1).replace(",", ""))))
  return out


def _shown_steps(block: str) -> list[str]:
  return [re.sub(r"^Step \d+: ", "", l) for l in block.strip().split("\n")]


@pytest.mark.parametrize("kind", ["flawed_solution_completion", "irr_query_distraction"])
def test_solution_flaws_are_wrong_arithmetic_in_one_step(items, problems, kind):
  by_id = {p.id: p for p in problems}
  for i in (x for x in items if x.error_type == kind):
    gold = [bd._ANNOT.sub("", l).strip() for l in by_id[i.base_id].solution.split("\n")]
    head, rest = i.flawed_question.split("\n\nPartial solution:\n" if kind.startswith("flawed")
                                         else "\n\nSolution:\n")
    assert head == i.original_question
    block, tail = rest.rsplit("\n\n", 1)
    shown = _shown_steps(block)
    if kind == "flawed_solution_completion":
      assert tail == bd.CONTINUE_INSTRUCTION
      assert len(shown) < len(gold) and shown[-1] == i.flaw_text  # continue after the flaw
    else:
      assert tail in bd.IRRELEVANT_QUERIES and len(shown) == len(gold)
    bad = [k for k, (s, g) in enumerate(zip(shown, gold)) if s != g]
    assert len(bad) == 1 and shown[bad[0]] == i.flaw_text
    assert _differ_in_one_number(gold[bad[0]], i.flaw_text)
    # the flawed step's displayed calculation is false
    assert any(val is not None and abs(val - shown_v) > 1e-6
               for val, shown_v in _calcs(i.flaw_text)), i.flaw_text
    assert i.flaw.startswith(f"Step {bad[0] + 1} computes ")


def test_one_handmade_problem_each_way():
  p = bd.GSM8KProblem(
      id="t/0", index=0, answer="18", source="t:1",
      question="Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and "
               "bakes muffins for her friends every day with four. She sells the remainder at the "
               "farmers' market daily for $2 per fresh duck egg. How much in dollars does she make "
               "every day at the farmers' market?",
      solution="Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
               "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer’s market.")
  got = {t: bd.build_pcbench_style([p], per_cell=1, error_types=[t])[0] for t in bd.ERROR_TYPES}
  assert all(i.difficulty == "normal" for i in got.values())  # a lone problem is the first third
  a = got["contra_premise_insert"]
  assert re.fullmatch(r"(Janet’s ducks lay \d+ eggs per day\.|She sells the remainder at the "
                      r"farmers' market daily for \$\d+ per fresh duck egg\.)", a.flaw_text)
  b = got["contra_infer_insert"]
  assert re.fullmatch(r"Janet sells (\d+) duck eggs a day\.", b.flaw_text)
  assert b.flaw_text != "Janet sells 9 duck eggs a day." and "16 - 3 - 4 = 9" in b.flaw
  c = got["flawed_solution_completion"]
  assert re.fullmatch(r"Janet sells 16 - 3 - 4 = (\d+) duck eggs a day\.", c.flaw_text)
  assert c.flaw_text != "Janet sells 16 - 3 - 4 = 9 duck eggs a day."
  assert c.flawed_question.endswith("Step 1: " + c.flaw_text + "\n\n" + bd.CONTINUE_INSTRUCTION)
  d = got["irr_query_distraction"]
  assert d.flaw_text in d.flawed_question and d.flawed_question.count("Step ") == 2
