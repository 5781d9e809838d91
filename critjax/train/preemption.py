"""SIGTERM / SIGINT during training: finish the current step, checkpoint it, exit cleanly.

A pod scheduler preempts with SIGTERM and a grace period; Ctrl-C sends SIGINT. The first signal
only sets a flag; the loop checks it after every step, saves a checkpoint of that step and raises
`Preempted`, and the command prints one line and exits with 128 + the signal's number (the shell's
convention for "stopped by a signal", so `train && evaluate` does not go on). A second signal
abandons the step at once with the default action; the checkpoints already written stay intact.
"""
from __future__ import annotations

import signal
import threading
from typing import Optional

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
  """Training stopped by a signal after checkpointing `step`; rerunning the command resumes it."""

  def __init__(self, signum: int, step: int, workdir):
    self.signum, self.step, self.workdir = signum, step, workdir
    super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}; checkpoint saved in "
                     f"{workdir}; run the same command to resume")

  @property
  def exit_code(self) -> int:
    return 128 + self.signum


class StopRequests:
  """Context manager: while inside, SIGTERM/SIGINT set `signum` instead of killing the process.
  Outside the main thread (where Python cannot install handlers) it does nothing."""

  def __init__(self):
    self.signum: Optional[int] = None
    self._previous: dict = {}

  def _handle(self, signum, frame):
    if self.signum is not None:     # the second one: stop now
      signal.signal(signum, signal.SIG_DFL)
      signal.raise_signal(signum)
      return
    self.signum = signum

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
    return self

  def __exit__(self, *exc):
    for s, h in self._previous.items():
      signal.signal(s, h)
    self._previous = {}
    return False
