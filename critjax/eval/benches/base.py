"""What a benchmark is: its items, how it prompts a model through the cached generator, how it
scores, and the chance level its figure is read against.

A benchmark's `run(gen, items, opts)` may call `gen.generate(stage, requests, sampling)` several
times (a critique, then the correction it leads to): each stage's generations are cached apart,
so an interrupted evaluation continues at the stage and batch it reached.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from critjax.eval import bench_data
from critjax.registry import Registry


@dataclasses.dataclass
class Result:
  metrics: dict                 # name -> figure (the summary table's row)
  chance: dict                  # name -> the same figure for a chance-level predictor (stated how)
  items: list                   # one dict per item: id, prediction, parsed value, correct, ...
  curves: Optional[dict] = None  # name -> {"x": [...], "y": [...]} where a curve is the result


def pick_subsets(subset: Optional[str], known: Sequence[str], kind: str) -> tuple[str, ...]:
  """--subset -> the subsets it names, in order: None or 'all' gives every known one; an unknown
  name (or an empty list) is refused before any file is read, naming --subset and what there is."""
  if subset in (None, "all"):
    return tuple(known)
  names = tuple(dict.fromkeys(s.strip() for s in subset.split(",") if s.strip()))
  unknown = [s for s in names if s not in known]
  if unknown or not names:
    raise ValueError(f"--subset={subset!r}: unknown {kind}(s) {unknown}; have {list(known)}")
  return names


class Bench:
  name: str = ""
  description: str = ""
  limit_exceeded: bool = False     # set by `take`: --limit asked for more items than there are

  def take(self, records: list, limit: Optional[int], name: str) -> list:
    """The first `limit` records (all when None); --limit <= 0 is refused."""
    check_limit(limit)
    got = bench_data.take(records, limit, name=name)
    self.limit_exceeded = self.limit_exceeded or got.short
    return list(got)

  def take_per_subset(self, load, subsets, limit: Optional[int], name: str) -> list:
    """`limit` records in all, split as evenly as the subsets allow (the first limit % len(subsets)
    subsets take one more), each subset's (`load(subset)`) from a fixed shuffle (seed 0): benchmark
    files are often sorted by label, so a prefix in file order would hold one. A subset left with no
    share (limit < len(subsets)) is not read."""
    check_limit(limit)
    items = []
    for k, s in enumerate(subsets):
      per = None if limit is None else limit // len(subsets) + (k < limit % len(subsets))
      if per == 0:
        continue
      recs = load(s)
      items += self.take([recs[i] for i in np.random.default_rng(0).permutation(len(recs))], per, f"{name}/{s} items")
    return items

  def load(self, limit: Optional[int], subset: Optional[str]) -> list:
    raise NotImplementedError

  def run(self, gen, items: list, opts: dict) -> Result:
    raise NotImplementedError


BENCHES: Registry[type] = Registry("benchmark")


def check_limit(limit: Optional[int]):
  if limit is not None and limit <= 0:
    raise ValueError(f"--limit={limit} must be >= 1")


def last_boxed(text: str) -> Optional[str]:
  """The content of the last \\boxed{...} in `text` (braces matched), or None."""
  i = text.rfind("\\boxed{")
  if i < 0:
    return None
  depth, j = 0, i + len("\\boxed{")
  for k in range(j, len(text)):
    if text[k] == "{":
      depth += 1
    elif text[k] == "}":
      if depth == 0:
        return text[j:k]
      depth -= 1
  return None
