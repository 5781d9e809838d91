"""Self-correction metrics, edit distance, seed aggregation, table and chart, against hand-computed values."""
import math

import numpy as np
import pytest

from critjax.eval import self_correction as sc

# 8 problems, 2 attempts. Transitions: i->c rows 0,1; c->i row 2; c->c rows 3,4,5; i->i rows 6,7.
CORRECT = np.array([[0, 1], [0, 1], [1, 0], [1, 1], [1, 1], [1, 1], [0, 0], [0, 0]], dtype=bool)
ATTEMPTS = [["12", "13"], ["x", "x"], ["kitten", "sitting"], ["a", "a"], ["", ""], ["ab", "ba"],
            ["flaw", "lawn"], ["5", "5"]]


def test_metrics_two_turns_by_hand():
  m = sc.self_correction_metrics(CORRECT, ATTEMPTS)
  assert m["n"] == 8 and m["k"] == 2
  assert m["acc_t1"] == pytest.approx(4 / 8)            # rows 2,3,4,5
  assert m["acc_t2"] == pytest.approx(5 / 8)            # rows 0,1,3,4,5
  assert m["delta"] == pytest.approx(1 / 8)
  assert m["delta_i2c"] == pytest.approx(2 / 8)
  assert m["delta_c2i"] == pytest.approx(1 / 8)
  # identical: rows 1, 3, 4, 7.
  assert m["identical_t1_t2"] == pytest.approx(4 / 8)
  # ratios: 12->13 1/2; x 0; kitten->sitting 3/7; a 0; empty 0; ab->ba 2/2; flaw->lawn 2/4; 5 0.
  expect = (0.5 + 3 / 7 + 1.0 + 0.5) / 8
  assert m["edit_ratio_t1_t2"] == pytest.approx(expect)


def test_metrics_three_turns_by_hand():
  c = np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 1, 0]])
  m = sc.self_correction_metrics(c)
  assert [m["acc_t1"], m["acc_t2"], m["acc_t3"]] == pytest.approx([0.5, 0.5, 0.5])
  assert m["delta"] == 0.0 and m["delta_i2c"] == pytest.approx(0.25) and m["delta_c2i"] == pytest.approx(0.25)
  # t1 -> t3: i->c rows 0, 2; c->i rows 1, 3.
  assert m["delta_t1_t3"] == 0.0
  assert m["delta_i2c_t1_t3"] == pytest.approx(0.5) and m["delta_c2i_t1_t3"] == pytest.approx(0.5)
  assert "identical_t1_t2" not in m
  a = [["a", "a", "b"]] * 4
  m = sc.self_correction_metrics(c, a)
  assert m["identical_t1_t2"] == 1.0 and m["identical_t2_t3"] == 0.0 and m["edit_ratio_t2_t3"] == 1.0


def test_single_turn_has_accuracy_only():
  m = sc.self_correction_metrics([[1], [0], [1]])
  assert m["acc_t1"] == pytest.approx(2 / 3) and "delta" not in m


def test_bad_shapes_raise():
  with pytest.raises(ValueError, match="shape"):
    sc.self_correction_metrics(np.zeros(4, bool))
  with pytest.raises(ValueError, match="booleans"):
    sc.self_correction_metrics([[0.5, 1.0]])
  with pytest.raises(ValueError, match="attempts_nk"):
    sc.self_correction_metrics(CORRECT, ATTEMPTS[:3])


@pytest.mark.parametrize("a, b, d", [
    ("kitten", "sitting", 3), ("sitting", "kitten", 3), ("flaw", "lawn", 2), ("", "abc", 3), ("abc", "", 3),
    ("", "", 0), ("same", "same", 0), ("intention", "execution", 5), ("ab", "ba", 2), ("saturday", "sunday", 3),
])
def test_levenshtein_known_pairs(a, b, d):
  assert sc.levenshtein(a, b) == d


def _reference_levenshtein(a, b):
  """Textbook full-table DP, written independently of the vectorised rows."""
  table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
  for i in range(len(a) + 1):
    table[i][0] = i
  for j in range(len(b) + 1):
    table[0][j] = j
  for i in range(1, len(a) + 1):
    for j in range(1, len(b) + 1):
      table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1,
                        table[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
  return table[-1][-1]


def test_levenshtein_random_against_full_table():
  rng = np.random.default_rng(0)
  for _ in range(200):
    a = rng.integers(-2, 3, size=rng.integers(0, 12)).tolist()   # -1 and -2 share a Python hash
    b = rng.integers(-2, 3, size=rng.integers(0, 12)).tolist()
    assert sc.levenshtein(a, b) == _reference_levenshtein(a, b)


def test_edit_ratio_on_tokens():
  assert sc.edit_distance_ratio([1, 2, 3], [1, 2, 4, 5]) == pytest.approx(2 / 4)
  assert sc.edit_distance_ratio([], []) == 0.0


def test_mean_stderr_by_hand():
  mean, se = sc.mean_stderr([0.1, 0.2, 0.6])
  # mean 0.3; deviations -0.2, -0.1, 0.3; sum sq 0.14; var (ddof 1) 0.07; se sqrt(0.07 / 3).
  assert mean == pytest.approx(0.3) and se == pytest.approx(math.sqrt(0.07 / 3))
  mean, se = sc.mean_stderr([0.4])
  assert mean == 0.4 and math.isnan(se)


def _seeds():
  return [{"acc_t1": 0.50, "acc_t2": 0.60, "delta": 0.10, "delta_i2c": 0.15, "delta_c2i": 0.05},
          {"acc_t1": 0.54, "acc_t2": 0.62, "delta": 0.08, "delta_i2c": 0.12, "delta_c2i": 0.04}]


def test_format_table_values():
  table = sc.format_table({"SCoRe": _seeds(), "Base": _seeds()[:1]})
  lines = table.strip().splitlines()
  assert lines[0] == "| Method | Seeds | Acc@t1 | Acc@t2 | Δ(t1,t2) | Δ^{i→c} | Δ^{c→i} |"
  # Two seeds: mean 52.0, se = |0.54-0.50| / 2 = 2.0 (for two values, std_ddof1 / sqrt2 = |a-b| / 2).
  assert lines[2] == "| SCoRe | 2 | 52.0 ± 2.0 | 61.0 ± 1.0 | 9.0 ± 1.0 | 13.5 ± 1.5 | 4.5 ± 0.5 |"
  assert lines[3] == "| Base | 1 | 50.0 | 60.0 | 10.0 | 15.0 | 5.0 |"
  with pytest.raises(KeyError, match="delta_c2i"):
    sc.format_table({"x": [{"acc_t1": 1.0, "acc_t2": 1.0, "delta": 0.0, "delta_i2c": 0.0}]})


def test_bar_chart_writes_png(tmp_path):
  path = tmp_path / "delta.png"
  sc.write_bar_chart({"SCoRe": _seeds(), "Base": _seeds()[:1]}, str(path))
  assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---- compute-matched voting (critjax.eval.voting) ----
from critjax.eval import voting  # noqa: E402


def _norm(s):
  s = s.strip()
  return s if s.isdigit() else None


def test_majority_vote_ties_and_abstentions():
  assert voting.majority_vote(["3", "4", "3", " 4 "], _norm) == "3"        # 2-2 tie -> earliest
  assert voting.majority_vote(["4", "3", "3", " 4 "], _norm) == "4"
  assert voting.majority_vote(["?", "5", "?", "?"], _norm) == "5"          # None casts no vote
  assert voting.majority_vote(["?", "?"], _norm) is None
  assert voting.majority_vote(["1", "2", "2"], _norm) == "2"


def test_compute_matched_constructed_example():
  gold = ["4", "7", "9"]
  parallel = [["3", "4", "3", " 4 "],      # tie 3/4 -> "3": wrong
              ["7", "7", "1", "x?"],       # 7: right
              ["?", "?", "?", "?"]]        # no vote: wrong
  pairs = [[("3", "4"), ("5", "4")],       # corrected 4, 4: right
           [("7", "7"), ("1", "2")],       # corrected 7, 2 tie -> 7: right
           [("?", "9"), ("?", "?")]]       # corrected 9: right
  out = voting.compute_matched_accuracy(parallel, pairs, gold, _norm, ks=[1, 2])
  assert out["k"] == [1, 2] and out["samples"] == [2, 4]
  # k=1: parallel votes over ["3","4"] -> 3 (wrong), ["7","7"] right, none wrong -> 1/3;
  #      self-correct votes over the first corrected answer: 4, 7, 9 -> 3/3.
  assert out["parallel_acc"] == pytest.approx([1 / 3, 1 / 3])
  assert out["self_correct_acc"] == pytest.approx([1.0, 1.0])
  assert voting.compute_matched_accuracy(parallel, pairs, gold, _norm)["k"] == [2]


def test_compute_matched_bad_shapes():
  with pytest.raises(ValueError, match="problem 0"):
    voting.compute_matched_accuracy([["1", "2", "3"]], [[("1", "1"), ("2", "2")]], ["1"], _norm)
  with pytest.raises(ValueError, match="ks"):
    voting.compute_matched_accuracy([["1", "2"]], [[("1", "1")]], ["1"], _norm, ks=[2])
  with pytest.raises(ValueError, match="one row per problem"):
    voting.compute_matched_accuracy([["1", "2"]], [[("1", "1")]], ["1", "2"], _norm)


def test_paired_differences_by_seed():
  rows = {"score": [{"seed": 0, "delta": 0.10, "acc_t2": 0.60}, {"seed": 1, "delta": 0.20, "acc_t2": 0.70},
                    {"seed": 2, "delta": 0.05, "acc_t2": 0.50}],
          "star": [{"seed": 2, "delta": 0.02, "acc_t2": 0.40}, {"seed": 0, "delta": 0.12, "acc_t2": 0.55},
                   {"seed": 1, "delta": 0.10, "acc_t2": 0.70}],
          "base": [{"seed": 0, "delta": 0.0, "acc_t2": 0.5}]}
  lines = sc.format_paired(rows, "score").strip().splitlines()
  assert lines[0] == "| score minus | Seeds | Δ(t1,t2) | ahead | Acc@t2 | ahead |"
  # Δ differences -0.02, +0.10, +0.03 (matched by seed, not by position): mean 0.11/3; deviations
  # -0.0567, 0.0633, -0.0067; sum sq 0.0072667; se sqrt(0.0072667 / 2 / 3) = 0.0348.
  # Acc@t2 differences 0.05, 0.00, 0.10: mean 0.05, se sqrt(0.005 / 2 / 3) = 0.0289; a tie is not ahead.
  assert lines[2] == "| star | 3 | 3.7 ± 3.5 | 2/3 | 5.0 ± 2.9 | 2/3 |"
  assert lines[3] == "| base | 1 | 10.0 | 1/1 | 10.0 | 1/1 |"
  assert len(lines) == 4                      # no row for the reference itself
