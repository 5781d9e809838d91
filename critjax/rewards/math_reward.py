"""Maths answer reward through math-verify, in worker processes with a per-item timeout.

Dimension key: N items (gold, completion pairs).

The reward is 1 when math-verify finds the completion's final answer equivalent to the gold and 0
otherwise (the binary outcome reward of GRPO, Shao et al. 2024, Sec. 4.1, and of SCoRe, Kumar et
al. 2024, Sec. 5). math-verify interrupts slow parses and comparisons with `signal.alarm`, which
only works in a process's main thread; so items are scored in worker processes, never threads, and
the worker processes are started with 'spawn' (or 'forkserver'): forking a parent that has
imported JAX can deadlock, as JAX's own threads do not survive a fork.

Two timeouts, both score 0 and count in `stats['timeouts']`:
  * soft (`timeout_s`): a SIGALRM timer around the whole item (parse gold, parse completion,
    verify), raising an exception math-verify does not catch. math-verify's own per-call timers
    are switched off so that a timeout is counted rather than silently turned into False.
  * hard (`kill_after_s`): a signal cannot interrupt a long C call (huge integer powers in sympy),
    so the parent kills a worker that has held one item this long and starts a fresh one.

Preprocessing, chosen so GSM8K and MATH golds and the usual answer formats all verify:
  * gold: the text after the last '####' (a GSM8K worked solution) if present; a pure number's
    thousands separators dropped ('1,000' -> '1000'); then wrapped in \\boxed{...}, which
    math-verify's LaTeX extraction parses first, so a MATH gold like '\\frac{\\pi}{2}' or
    '\\text{(C)}' is read as a whole rather than searched for a number.
  * completion: if it holds '####', only the first line after the last '####' is read (the GSM8K
    convention is binding); otherwise the whole text goes to math-verify, which takes \\boxed{X},
    'The final answer is $X$', 'answer: X' in that priority and falls back to the last number.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import re
import signal
import time
from multiprocessing import connection
from typing import Optional, Sequence

import numpy as np

ANSWER_MARK = "####"
_THOUSANDS_RE = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")
START_METHODS = ("spawn", "forkserver")


def gold_to_latex(gold: str) -> str:
  """The gold answer as the LaTeX math-verify parses: '\\boxed{<final answer>}'."""
  if ANSWER_MARK in gold:
    gold = gold.rsplit(ANSWER_MARK, 1)[1]
  gold = gold.strip()
  if "\\boxed" in gold:
    return gold
  if gold.startswith("$") and gold.endswith("$") and len(gold) > 1:
    gold = gold.strip("$").strip()
  if _THOUSANDS_RE.match(gold):
    gold = gold.replace(",", "")
  return "\\boxed{" + gold + "}"


def completion_answer_text(completion: str) -> str:
  """The part of a completion math-verify should read (see the module docstring)."""
  if ANSWER_MARK in completion:
    tail = completion.rsplit(ANSWER_MARK, 1)[1].strip()
    return tail.splitlines()[0] if tail else ""
  return completion


# ---------------------------------------------------------------------------------------------
# Worker side (runs in a spawned process)


class _ItemTimeout(BaseException):
  """Raised by the SIGALRM handler; a BaseException so math-verify's `except Exception` lets it
  through to `_score_item`, which counts it."""


def _on_alarm(signum, frame):
  raise _ItemTimeout()


def _score_item(gold: str, completion: str, timeout_s: float) -> tuple[float, str]:
  """(score, status) for one item; status is 'ok', 'timeout' or 'error'."""
  from math_verify import parse, verify
  try:
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
      g = parse(gold_to_latex(gold), parsing_timeout=None)
      p = parse(completion_answer_text(completion), parsing_timeout=None)
      ok = bool(g) and bool(p) and verify(g, p, timeout_seconds=None)
    finally:
      signal.setitimer(signal.ITIMER_REAL, 0)
    return (1.0 if ok else 0.0), "ok"
  except _ItemTimeout:  # also catches an alarm that fires inside the `finally` above
    return 0.0, "timeout"
  except Exception:  # a parser bug on odd input must cost the item, not the batch
    return 0.0, "error"


def _worker_main(conn) -> None:
  # math-verify logs every failed parse and warns that its own timers are off (ours are on).
  logging.disable(logging.WARNING)
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
  signal.signal(signal.SIGALRM, _on_alarm)
  import math_verify  # noqa: F401  (import once, before the first timed item)
  conn.send(("ready",))
  while True:
    msg = conn.recv()
    if msg is None:
      return
    idx, gold, completion, timeout_s = msg
    conn.send((idx, *_score_item(gold, completion, timeout_s)))


# ---------------------------------------------------------------------------------------------
# Parent side


class _Worker:
  def __init__(self, ctx):
    self.conn, child = ctx.Pipe()
    self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
    self.proc.start()
    child.close()
    self.item: Optional[int] = None   # index being scored, None when idle
    self.deadline = 0.0
    self.ready = False

  def kill(self):
    self.proc.kill()
    self.proc.join()
    self.conn.close()

  def close(self):
    try:
      self.conn.send(None)
    except (BrokenPipeError, OSError):
      pass
    self.proc.join(timeout=2.0)
    if self.proc.is_alive():
      self.proc.kill()
      self.proc.join()
    self.conn.close()


class MathVerifier:
  """Scores completions against golds with math-verify in `num_workers` processes.

  Use as a context manager (or call `close()`): the worker processes live until then, so their
  ~1 s start (importing sympy) is paid once, not per batch.
  """

  def __init__(self, num_workers: int = 2, timeout_s: float = 5.0,
               kill_after_s: Optional[float] = None, start_method: str = "spawn"):
    if num_workers < 1:
      raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    if not timeout_s > 0:
      raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    if kill_after_s is None:
      kill_after_s = 2.0 * timeout_s + 1.0  # room for the soft timer to fire and unwind first
    if not kill_after_s > 0:
      raise ValueError(f"kill_after_s must be > 0, got {kill_after_s}")
    if start_method not in START_METHODS:
      raise ValueError(f"start_method {start_method!r} unknown; fork is unsafe with JAX threads; "
                       f"choose from {START_METHODS}")
    self.num_workers = num_workers
    self.timeout_s = float(timeout_s)
    self.kill_after_s = float(kill_after_s)
    self._ctx = mp.get_context(start_method)
    self._workers: list[_Worker] = []
    self._closed = False

  def __enter__(self) -> "MathVerifier":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    for w in self._workers:
      w.close()
    self._workers = []
    self._closed = True

  def _start_workers(self) -> None:
    while len(self._workers) < self.num_workers:
      self._workers.append(_Worker(self._ctx))

  def score(self, golds: Sequence[str], completions: Sequence[str]) -> tuple[np.ndarray, dict]:
    """Scores (N,) float32 in {0, 1} and stats: n, timeouts (soft + hard), killed (hard only),
    errors (math-verify raised), crashed (a worker died), seconds."""
    if self._closed:
      raise RuntimeError("MathVerifier is closed")
    if len(golds) != len(completions):
      raise ValueError(f"{len(golds)} golds but {len(completions)} completions")
    n = len(golds)
    scores = np.zeros((n,), np.float32)
    stats = {"n": n, "timeouts": 0, "killed": 0, "errors": 0, "crashed": 0}
    t0 = time.perf_counter()
    self._start_workers()
    todo = list(range(n - 1, -1, -1))  # a stack, popped from the end: items in order
    done = 0
    while done < n:
      now = time.perf_counter()
      for w in self._workers:
        if w.ready and w.item is None and todo:
          w.item = todo.pop()
          w.deadline = now + self.kill_after_s
          w.conn.send((w.item, str(golds[w.item]), str(completions[w.item]), self.timeout_s))
      busy = [w for w in self._workers if w.item is not None]
      wait_s = min((w.deadline for w in busy), default=now + 60.0) - now
      ready = connection.wait([w.conn for w in self._workers], timeout=max(wait_s, 0.0))
      for i, w in enumerate(list(self._workers)):
        if w.conn in ready:
          try:
            msg = w.conn.recv()
          except (EOFError, OSError):  # the worker died (e.g. killed by the OOM killer)
            if not w.ready:
              self.close()
              raise RuntimeError("a math-verify worker died while starting (is math-verify "
                                 "installed for this interpreter?)") from None
            if w.item is not None:
              stats["crashed"] += 1
              done += 1
            w.kill()
            self._workers[i] = _Worker(self._ctx)
            continue
          if msg == ("ready",):
            w.ready = True
            continue
          idx, score, status = msg
          scores[idx] = score
          stats["timeouts"] += status == "timeout"
          stats["errors"] += status == "error"
          w.item = None
          done += 1
        elif w.item is not None and time.perf_counter() >= w.deadline:
          stats["timeouts"] += 1
          stats["killed"] += 1
          done += 1
          w.kill()
          self._workers[i] = _Worker(self._ctx)
    stats["seconds"] = time.perf_counter() - t0
    return scores, stats
