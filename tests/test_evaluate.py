"""The evaluation entry point end to end on a tiny trained run: a critjax workdir as the model,
ProcessBench on a few items, results written, an interrupted evaluation continued from its cache,
and bad input named in one line before the model loads."""
import json
import subprocess
import sys

import pytest

from critjax.eval.benches import BENCHES
from critjax.eval.benches.processbench import parse, prompt
from critjax.eval.generation import Generator, Sampling
from critjax.eval.models import load_model


@pytest.fixture(scope="module")
def run_dir(tiny_run):
  return tiny_run


def test_processbench_parse_follows_the_official_extraction():
  assert parse("so \\boxed{3} ... no, \\boxed{ -1 }") == -1
  assert parse("\\boxed{2.5}") is None and parse("no box") is None
  assert parse("\\boxed{\\text{1}}") is None          # [^}]* stops at the first brace: not an int
  p = prompt("What is 1+1?", ["1+1=3", "So 3."])
  assert "<paragraph_0>\n1+1=3\n</paragraph_0>" in p and "<paragraph_1>" in p and "What is 1+1?" in p


def test_generations_are_cached_by_stage_prompt_and_sampling(run_dir, tmp_path):
  model = load_model(str(run_dir))
  gen = Generator(model, tmp_path, batch_size=2, progress=False)
  reqs = [(f"q{i}", [{"role": "user", "content": f"{i} + {i} ="}]) for i in range(3)]
  s = Sampling(max_new_tokens=6)
  first = gen.generate("t", reqs, s)
  assert gen.generated_tokens > 0 and set(first) == {"q0", "q1", "q2"}
  again = Generator(model, tmp_path, batch_size=2, progress=False)     # a new process, the same workdir
  assert again.generate("t", reqs, s) == first and again.generated_tokens == 0
  again.generate("t", reqs, Sampling(max_new_tokens=7))                 # other settings: generated anew
  assert again.generated_tokens > 0


def _evaluate(*args, cwd=None):
  return subprocess.run([sys.executable, "-m", "experiments.evaluate", *args], capture_output=True, text=True,
                        timeout=600)


def test_processbench_runs_from_the_command_line(run_dir, tmp_path):
  args = ["--bench=processbench", f"--model={run_dir}", f"--workdir={tmp_path}", "--limit=2", "--subset=gsm8k",
          "--max_new_tokens=8", "--batch_size=2"]
  out = _evaluate(*args)
  assert out.returncode == 0, out.stderr[-3000:]
  rec = json.loads((tmp_path / "results" / "processbench.json").read_text())
  assert len(rec["items"]) == 2 and "gsm8k/f1" in rec["metrics"] and "gsm8k/f1" in rec["chance"]
  assert rec["metrics"]["gsm8k/parse_failure_rate"] == pytest.approx(
      100 * sum(r["pred"] is None for r in rec["items"]) / 2)
  assert (tmp_path / "results" / "processbench.md").exists()
  # the rerun of an interrupted evaluation reads these generations (test_generations_are_cached...)
  assert len((tmp_path / "generations").glob("*.jsonl").__next__().read_text().splitlines()) == 2


@pytest.mark.parametrize("args,named", [
    (["--bench=nope"], "--bench='nope': unknown benchmark"),
    (["--bench=processbench", "--limit=0"], "--limit=0 must be >= 1"),
    (["--bench=processbench", "--subset=gsm9k"], "unknown ProcessBench subset"),
    (["--bench=processbench", "--model=/nonexistent/m.gguf"], "no such GGUF file"),
])
def test_bad_input_is_one_line(tmp_path, args, named):
  base = {"--model": f"--model={tmp_path}/missing", "--workdir": f"--workdir={tmp_path}/w"}
  full = args + [v for k, v in base.items() if not any(a.startswith(k) for a in args)]
  out = _evaluate(*full)
  lines = out.stderr.strip().splitlines()
  assert out.returncode == 2 and len(lines) == 1 and named in lines[0], out.stderr[-2000:]


def test_every_benchmark_is_registered():
  assert "processbench" in BENCHES.names()


@pytest.mark.parametrize("bench,subset", [("criticbench", None), ("judgebench", None), ("calibration", None),
                                          ("scaling", "2"), ("realcritic", "gsm8k,gpqa")])
def test_every_benchmark_runs_on_a_tiny_model(run_dir, tmp_path, bench, subset):
  """Each benchmark end to end on 2 items (the tiny model's answers are noise: this checks the
  plumbing, prompts, parsing and metrics, not a figure)."""
  model = load_model(str(run_dir))
  gen = Generator(model, tmp_path, batch_size=2, max_prompt_len=256, progress=False)
  b = BENCHES.get(bench)()
  items = b.load(2, subset)
  assert len(items) == 2
  result = b.run(gen, items, {"max_new_tokens": 8})
  assert len(result.items) == 2 and result.metrics
  assert all(isinstance(v, float) for v in result.metrics.values())


def test_judgment_and_pair_parsers():
  from critjax.eval.benches.calibration import parse_yes_no
  from critjax.eval.benches.judges import parse_judgment, parse_pair
  from critjax.eval.benches.scaling import final_answer
  assert parse_judgment("... Judgment: incorrect.\nJudgment: correct") is True
  assert parse_judgment("judgment: **Incorrect**") is False and parse_judgment("looks fine") is None
  assert parse_pair("I pick [[B]]") == "B>A" and parse_pair("[[C]]") == "A=B" and parse_pair("B") is None
  assert parse_yes_no("Answer: Yes\nConfidence: 80%") is True and parse_yes_no("No.") is False
  assert parse_yes_no("I think so") is None
  assert final_answer("so 3 + 4 = 7. The answer is 1,234.") == "1234" and final_answer("x = 5 then 6") == "6"


def test_pick_subsets_reads_the_flag_in_order_and_names_unknown_ones():
  from critjax.eval.benches.base import pick_subsets
  known = ("gsm8k", "math", "olympiadbench")
  assert pick_subsets(None, known, "subset") == known and pick_subsets("all", known, "subset") == known
  assert pick_subsets("math, gsm8k,math", known, "subset") == ("math", "gsm8k")
  for bad in ("gsm9k", ",", "math,gsm9k"):
    with pytest.raises(ValueError, match=r"--subset=.*unknown subset"):
      pick_subsets(bad, known, "subset")
