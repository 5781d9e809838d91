"""Self-correction metrics in the shape of SCoRe's tables (Kumar et al., arXiv 2409.12917, §3 and Tables 2-4).

Dimension key: N problems, K attempts (turns) per problem, S seeds.

Definitions (turn indices are 1-based in names, 0-based in code):
  Acc@tk           = mean_n correct[n, k]
  Δ(ti, tj)        = Acc@tj - Acc@ti
  Δ^{i→c}(ti, tj)  = fraction of problems wrong at ti and right at tj
  Δ^{c→i}(ti, tj)  = fraction right at ti and wrong at tj     (so Δ = Δ^{i→c} - Δ^{c→i})
  identical        = fraction of problems whose attempt k+1 equals attempt k exactly (collapse check)
  edit ratio       = mean over problems of Levenshtein(a, b) / max(len(a), len(b)) (0 when both are
                     empty). On str inputs this is per character; pass token-id lists for per token.
                     Our choice of normalisation: the paper plots an "edit distance ratio" without a
                     formula we could check; this one lies in [0, 1] and is 0 iff the attempts are equal.
For K > 2 the headline Δ keys compare t1 with t2 (the paper's pair) and the `_t1_tK` keys compare
the first with the last attempt.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import numpy as np

# Paper-shaped table: (metric key, column header).
TABLE_COLUMNS = (
    ("acc_t1", "Acc@t1"),
    ("acc_t2", "Acc@t2"),
    ("delta", "Δ(t1,t2)"),
    ("delta_i2c", "Δ^{i→c}"),
    ("delta_c2i", "Δ^{c→i}"),
)


def levenshtein(a: Sequence, b: Sequence) -> int:
  """Edit distance (unit-cost insert / delete / substitute) between two sequences (str or token lists).

  O(len(a) * len(b)) work in O(len(b)) memory; each DP row is vectorised: with
  tmp[j] = min(prev[j] + 1, prev[j-1] + cost[j]), the row is row[j] = min_{i<=j}(tmp[i] + j - i),
  a running minimum of tmp[i] - i.
  """
  if len(a) < len(b):
    a, b = b, a
  if len(b) == 0:
    return len(a)
  # Dense ids by equality (not hash(): hash(-1) == hash(-2)), so tokens compare in NumPy.
  ids: dict = {}
  b_arr = np.asarray([ids.setdefault(x, len(ids)) for x in b], dtype=np.int64)
  a_ids = [ids.get(x, -1) for x in a]
  m = len(b_arr)
  cols = np.arange(m + 1, dtype=np.int64)
  prev = cols.copy()
  for i, x in enumerate(a_ids, start=1):
    cost = (b_arr != x).astype(np.int64)
    tmp = np.empty(m + 1, dtype=np.int64)
    tmp[0] = i
    tmp[1:] = np.minimum(prev[1:] + 1, prev[:-1] + cost)
    prev = np.minimum.accumulate(tmp - cols) + cols
  return int(prev[-1])


def edit_distance_ratio(a: Sequence, b: Sequence) -> float:
  """Levenshtein(a, b) / max(len(a), len(b)) in [0, 1]; 0.0 when both are empty."""
  longest = max(len(a), len(b))
  return 0.0 if longest == 0 else levenshtein(a, b) / longest


def _as_correct_nk(correct_nk) -> np.ndarray:
  c_nk = np.asarray(correct_nk)
  if c_nk.ndim != 2 or c_nk.shape[0] < 1 or c_nk.shape[1] < 1:
    raise ValueError(f"correct_nk must have shape (N >= 1, K >= 1), got {c_nk.shape}")
  if not np.isin(c_nk, (0, 1)).all():
    raise ValueError("correct_nk must hold booleans (or 0/1)")
  return c_nk.astype(bool)


def accuracy_at_turns(correct_nk) -> np.ndarray:
  """Acc@t for every turn: (N, K) bool -> (K,) float64."""
  return _as_correct_nk(correct_nk).mean(axis=0, dtype=np.float64)


def transitions(correct_nk, t_from: int = 0, t_to: int = 1) -> dict[str, float]:
  """Δ, Δ^{i→c}, Δ^{c→i} between two turns (0-based indices) of an (N, K) bool matrix."""
  c_nk = _as_correct_nk(correct_nk)
  a, b = c_nk[:, t_from], c_nk[:, t_to]
  return {
      "delta": float(b.mean() - a.mean()),
      "delta_i2c": float((~a & b).mean()),
      "delta_c2i": float((a & ~b).mean()),
  }


def self_correction_metrics(correct_nk, attempts_nk: Optional[Sequence[Sequence]] = None) -> dict[str, float]:
  """All SCoRe metrics for one evaluation, as a flat JSON-ready dict.

  correct_nk: (N, K) bool verdicts. attempts_nk: optional (N, K) nested sequence of the attempts'
  texts (or token lists) for the collapse diagnostics. Keys: n, k, acc_t{k} for every turn; delta,
  delta_i2c, delta_c2i (t1 -> t2, K >= 2); for K > 2 also delta_t1_tK, delta_i2c_t1_tK,
  delta_c2i_t1_tK; with attempts, identical_t{k}_t{k+1} and edit_ratio_t{k}_t{k+1} per consecutive pair.
  """
  c_nk = _as_correct_nk(correct_nk)
  n, k = c_nk.shape
  out: dict[str, float] = {"n": n, "k": k}
  for t, acc in enumerate(accuracy_at_turns(c_nk), start=1):
    out[f"acc_t{t}"] = float(acc)
  if k >= 2:
    out.update(transitions(c_nk, 0, 1))
  if k > 2:
    out.update({f"{name}_t1_t{k}": v for name, v in transitions(c_nk, 0, k - 1).items()})
  if attempts_nk is not None:
    if len(attempts_nk) != n or any(len(row) != k for row in attempts_nk):
      raise ValueError(f"attempts_nk must have shape (N={n}, K={k}) to match correct_nk")
    for t in range(1, k):
      pairs = [(row[t - 1], row[t]) for row in attempts_nk]
      out[f"identical_t{t}_t{t + 1}"] = float(np.mean([x == y for x, y in pairs]))
      out[f"edit_ratio_t{t}_t{t + 1}"] = float(np.mean([edit_distance_ratio(x, y) for x, y in pairs]))
  return out


def mean_stderr(values: Sequence[float]) -> tuple[float, float]:
  """(mean, standard error of the mean) over seeds; stderr = sample std (ddof=1) / sqrt(S), NaN if S < 2."""
  v = np.asarray(values, dtype=np.float64)
  if v.ndim != 1 or v.size == 0:
    raise ValueError(f"values must be a non-empty 1-D sequence, got shape {v.shape}")
  se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
  return float(v.mean()), se


def aggregate_seeds(per_seed: Sequence[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
  """{key: (mean, stderr)} over seeds, for the keys every seed's metrics dict has."""
  if not per_seed:
    raise ValueError("per_seed must hold at least one metrics dict")
  keys = [key for key in per_seed[0] if all(key in m for m in per_seed)]
  return {key: mean_stderr([m[key] for m in per_seed]) for key in keys}


def _cell(mean: float, se: float, scale: float, digits: int) -> str:
  if math.isnan(se):
    return f"{mean * scale:.{digits}f}"
  return f"{mean * scale:.{digits}f} ± {se * scale:.{digits}f}"


def format_table(rows: Mapping[str, Sequence[Mapping[str, float]]], *, columns=TABLE_COLUMNS,
                 percent: bool = True, digits: int = 1) -> str:
  """Markdown table in the paper's shape: one row per method, "mean ± se" over seeds.

  rows: {method name: [metrics dict of seed 0, seed 1, ...]} (dicts from `self_correction_metrics`).
  percent=True prints fractions as percentages, as the paper does. A single seed prints the mean only.
  """
  scale = 100.0 if percent else 1.0
  header = "| Method | Seeds | " + " | ".join(title for _, title in columns) + " |"
  lines = [header, "|" + "---|" * (len(columns) + 2)]
  for method, per_seed in rows.items():
    agg = aggregate_seeds(per_seed)
    missing = [key for key, _ in columns if key not in agg]
    if missing:
      raise KeyError(f"method {method!r} lacks metrics {missing}")
    cells = [_cell(*agg[key], scale, digits) for key, _ in columns]
    lines.append(f"| {method} | {len(per_seed)} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def format_paired(rows: Mapping[str, Sequence[Mapping[str, float]]], reference: str, *,
                  keys=(("delta", "Δ(t1,t2)"), ("acc_t2", "Acc@t2")), percent: bool = True,
                  digits: int = 1) -> str:
  """Markdown table of `reference` minus every other method, paired by seed: "mean ± se" of the
  per-seed differences, and on how many shared seeds the reference is ahead.

  Seeds share a base model, so the paired difference removes the seed-to-seed spread of the bases
  that dominates the unpaired standard errors of `format_table`."""
  scale = 100.0 if percent else 1.0
  ref = {m["seed"]: m for m in rows[reference]}
  header = f"| {reference} minus | Seeds | " + " | ".join(
      f"{title} | ahead" for _, title in keys) + " |"
  lines = [header, "|" + "---|" * (2 * len(keys) + 2)]
  for method, per_seed in rows.items():
    pairs = [(ref[m["seed"]], m) for m in per_seed if m["seed"] in ref]
    if method == reference or not pairs:
      continue
    cells = []
    for key, _ in keys:
      diffs = [a[key] - b[key] for a, b in pairs]
      cells.append(_cell(*mean_stderr(diffs), scale, digits) + f" | {sum(d > 0 for d in diffs)}/{len(diffs)}")
    lines.append(f"| {method} | {len(pairs)} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_bar_chart(rows: Mapping[str, Sequence[Mapping[str, float]]], path: str, *,
                    columns=TABLE_COLUMNS, percent: bool = True, title: str = "Self-correction") -> None:
  """Grouped bar chart (one group per metric, one bar per method, stderr error bars) written as PNG.

  Uses the Agg canvas directly, so it neither needs a display nor changes pyplot's global backend.
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  scale = 100.0 if percent else 1.0
  methods = list(rows)
  fig = Figure(figsize=(1.6 * len(columns) + 2.0, 4.0))
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  width = 0.8 / max(len(methods), 1)
  x = np.arange(len(columns))
  for i, method in enumerate(methods):
    agg = aggregate_seeds(rows[method])
    means = np.array([agg[key][0] for key, _ in columns]) * scale
    ses = np.nan_to_num(np.array([agg[key][1] for key, _ in columns]) * scale)
    ax.bar(x + (i - (len(methods) - 1) / 2) * width, means, width, yerr=ses, capsize=2, label=method)
  ax.axhline(0.0, color="black", linewidth=0.6)
  ax.set_xticks(x)
  ax.set_xticklabels([title_ for _, title_ in columns])
  ax.set_ylabel("%" if percent else "fraction")
  ax.set_title(title)
  ax.legend(fontsize="small", ncol=2)
  fig.tight_layout()
  fig.savefig(path, format="png", dpi=120)
