"""What a benchmark is: its items, how it prompts a model through the cached generator, how it
scores, and the chance level its figure is read against.

A benchmark's `run(gen, items, opts)` may call `gen.generate(stage, requests, sampling)` several
times (a critique, then the correction it leads to): each stage's generations are cached apart,
so an interrupted evaluation continues at the stage and batch it reached.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from critjax.registry import Registry


@dataclasses.dataclass
class Result:
  metrics: dict                 # name -> figure (the summary table's row)
  chance: dict                  # name -> the same figure for a chance-level predictor (stated how)
  items: list                   # one dict per item: id, prediction, parsed value, correct, ...
  curves: Optional[dict] = None  # name -> {"x": [...], "y": [...]} where a curve is the result


class Bench:
  name: str = ""
  description: str = ""

  def load(self, limit: Optional[int], subset: Optional[str]) -> list:
    raise NotImplementedError

  def run(self, gen, items: list, opts: dict) -> Result:
    raise NotImplementedError


BENCHES: Registry[type] = Registry("benchmark")


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
