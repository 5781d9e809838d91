"""Prompt templates: registry, rendering, and validation errors that name the template and placeholder."""
import pytest

from critjax.data import templates as tp


def test_registry_has_all_templates():
  assert {"toy", "math", "code", "self_refine_math", "self_refine_code", "self_refine_toy"} <= set(tp.TEMPLATES.names())
  assert tp.get_template("math") is tp.MATH
  with pytest.raises(KeyError, match="unknown self-correction template 'nope'"):
    tp.get_template("nope")
  with pytest.raises(ValueError, match="already registered"):
    tp.TEMPLATES.register("toy")(tp.TOY)


def test_render_episode_keeps_problem_braces():
  t = tp.SelfCorrectionTemplate(name="t", first_turn="Q: {problem}\nA:", correction_instruction="\nFix:")
  assert t.render(r"\frac{1}{2}+{x}?", ["1", "2", "3"]) == "Q: \\frac{1}{2}+{x}?\nA:1\nFix:2\nFix:3"
  assert t.first_prompt("2+2") == "Q: 2+2\nA:"


def test_paper_outline_pieces_present():
  assert "{problem}" in tp.MATH.first_turn and "Final Answer: The final answer is" in tp.MATH.first_turn
  assert "mistake" in tp.MATH.correction_instruction and "Final Answer" in tp.MATH.correction_instruction
  assert "python" in tp.CODE.correction_instruction.lower()
  assert "{" not in tp.MATH.correction_prompt()


def test_missing_placeholder_names_template_and_field():
  with pytest.raises(ValueError, match=r"template 'bad': first_turn is missing the '\{problem\}' placeholder"):
    tp.SelfCorrectionTemplate(name="bad", first_turn="Q: solve it", correction_instruction="fix")
  with pytest.raises(ValueError, match=r"template 'sr': first_turn is missing the '\{problem\}'"):
    tp.SelfRefineTemplate(name="sr", first_turn="no slot", critique_instruction="c", refine_instruction="r")


def test_unknown_or_malformed_placeholders():
  with pytest.raises(ValueError, match=r"template 'b2': first_turn has unknown placeholders \['question'\]"):
    tp.SelfCorrectionTemplate(name="b2", first_turn="{problem} {question}", correction_instruction="fix")
  with pytest.raises(ValueError, match="template 'b3': correction_instruction has unknown placeholders"):
    tp.SelfCorrectionTemplate(name="b3", first_turn="{problem}", correction_instruction="fix {problem}")
  with pytest.raises(ValueError, match="template 'b4': first_turn has malformed braces"):
    tp.SelfCorrectionTemplate(name="b4", first_turn="{problem} {", correction_instruction="fix")
  with pytest.raises(ValueError, match="template 'b5': refine_instruction is empty"):
    tp.SelfRefineTemplate(name="b5", first_turn="{problem}", critique_instruction="c", refine_instruction=" ")
  # Escaped literal braces are fine.
  t = tp.SelfCorrectionTemplate(name="ok", first_turn="{{x}} {problem}", correction_instruction="use {{}}")
  assert t.first_prompt("p") == "{x} p" and t.correction_prompt() == "use {}"


def test_frozen():
  with pytest.raises(Exception):
    tp.TOY.first_turn = "x"  # type: ignore[misc]


def test_toy_template_matches_arithmetic_prompt():
  # critjax.data.arithmetic writes prompts as "Q: 358+267 =".
  assert tp.TOY.first_prompt("358+267") == "Q: 358+267 ="
  assert tp.TOY.render("1+2", [" 1+2=3 c0 ; A: 3", " 1+2=3 c0 ; A: 3"]) == (
      "Q: 1+2 = 1+2=3 c0 ; A: 3\nRecheck each column and fix any error: 1+2=3 c0 ; A: 3")
