"""Run a program against its tests in a sandboxed subprocess (the HumanEval pass/fail reward).

A test passes when `program + test + check(entry_point)` runs to the end within the limits; the
reward is 1 then and 0 otherwise (the unit-test reward of Chen et al. 2021, Sec. 2.1). A crash,
hang, limit hit or sandbox failure is a 0 and an `info['status']`, never an exception in the caller.

What is guaranteed, and when (`sandbox_isolation()` reports which level this machine gets):

  always      new session and process group, killed whole (SIGKILL) at the wall-time limit;
              RLIMIT_CPU, RLIMIT_AS (memory), RLIMIT_FSIZE (caps stdout/stderr and every file
              written), RLIMIT_NPROC, RLIMIT_NOFILE, no core files; stdout/stderr read back
              capped; empty environment; `python -I -S`; Python-level sockets and signals to
              other processes (os.kill, os.killpg) replaced by stubs that raise; a nonce printed
              only after `check` returns (an early `exit(0)` fails).
  as root     runs as `nobody` (no write access to anything root owns; cannot signal the
              trainer; RLIMIT_NPROC is enforced, which root ignores) with no_new_privs.
  + unshare   (root and util-linux `unshare` usable): new network namespace (only a downed
              loopback: no connection leaves, even through ctypes); new PID namespace with its own
              /proc (the host's processes are invisible, and killing the namespace's first process
              kills every descendant, including ones that called setsid); new mount namespace
              with fresh root-owned tmpfs over /tmp, /var/tmp, /dev/shm and /run/lock, so the
              only place the program can write is its scratch folder /tmp/scratch (a size-capped
              tmpfs that vanishes with the sandbox).

Not guaranteed: without root the program runs as the trainer's user (it could signal or write
what that user can; sockets and signals are blocked only at the Python level, which ctypes
bypasses); as root without unshare, `nobody` can still write world-writable folders (/tmp); and
without a PID namespace, processes that leave the process group may outlive the wall-time kill. Even with everything on,
this protects the host, not the grade: a determined program can still fool `check` (e.g. objects
whose `__eq__` is always True), so reward hacking must be watched for separately.

Dimension key: N programs.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
# Modules imported before the uid drop (the interpreter's folder may be unreadable to `nobody`):
# everything HumanEval's prompts, solutions and tests import, and common helpers.
PRELOAD = ("typing", "math", "random", "copy", "string", "collections", "re", "hashlib",
           "itertools", "functools", "heapq", "bisect", "fractions", "decimal", "statistics",
           "operator", "json", "datetime", "socket", "_socket", "array", "dataclasses", "enum",
           "signal", "time", "struct", "ctypes", "io", "textwrap", "contextlib", "numbers")


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
  timeout_s: float = 10.0        # wall time, interpreter start included
  cpu_s: Optional[int] = None    # RLIMIT_CPU; None: ceil(timeout_s)
  memory_mb: int = 1024          # RLIMIT_AS (address space, so a little above resident memory)
  max_procs: int = 32            # RLIMIT_NPROC (per uid: counts every `nobody` process)
  output_bytes: int = 64 * 1024  # RLIMIT_FSIZE, and how much of stdout/stderr is read back
  max_files: int = 64            # RLIMIT_NOFILE
  tmpfs_mb: int = 64             # size of each tmpfs (namespaces only)
  user: str = "nobody"           # who runs the program when the trainer is root
  namespaces: Optional[bool] = None  # None: use them when root and `unshare` works
  python: str = sys.executable

  def __post_init__(self):
    if not self.timeout_s > 0:
      raise ValueError(f"SandboxConfig.timeout_s must be > 0, got {self.timeout_s}")
    if self.cpu_s is not None and self.cpu_s < 1:
      raise ValueError(f"SandboxConfig.cpu_s must be >= 1, got {self.cpu_s}")
    for name in ("memory_mb", "max_procs", "output_bytes", "max_files", "tmpfs_mb"):
      if getattr(self, name) < 1:
        raise ValueError(f"SandboxConfig.{name} must be >= 1, got {getattr(self, name)}")


def _probe_namespaces() -> bool:
  if os.geteuid() != 0 or shutil.which("unshare") is None:
    return False
  try:
    r = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--",
                        "true"], capture_output=True, timeout=10)
  except (OSError, subprocess.SubprocessError):
    return False
  return r.returncode == 0


def sandbox_isolation(cfg: SandboxConfig = SandboxConfig()) -> dict:
  """Which of the guarantees in the module docstring this machine provides for `cfg`."""
  root = os.geteuid() == 0
  ns = _probe_namespaces() if cfg.namespaces is None else cfg.namespaces
  return {"drop_uid": root, "network_namespace": ns, "pid_namespace": ns, "tmpfs": ns}


def _read_capped(path: Path, cap: int) -> str:
  with open(path, "rb") as f:
    return f.read(cap).decode("utf-8", errors="replace")


def _run(program: str, test: str, entry_point: str, cfg: SandboxConfig,
         namespaces: bool) -> tuple[bool, dict]:
  t0 = time.perf_counter()
  nonce = secrets.token_hex(16)
  root = os.geteuid() == 0
  uid = gid = None
  if root:
    pw = pwd.getpwnam(cfg.user)
    uid, gid = pw.pw_uid, pw.pw_gid
  work = Path(tempfile.mkdtemp(prefix="critjax-sandbox-"))
  try:
    os.chmod(work, 0o711)  # `nobody` may enter (to reach scratch/) but not list or read
    scratch = work / "scratch"
    scratch.mkdir(mode=0o700)
    job = {"program": program, "test": test, "entry_point": entry_point, "nonce": nonce,
           "namespaces": namespaces, "scratch": str(scratch), "uid": uid, "gid": gid,
           "cpu_s": cfg.cpu_s or max(1, int(-(-cfg.timeout_s // 1))),
           "memory_mb": cfg.memory_mb, "file_bytes": cfg.output_bytes,
           "max_procs": cfg.max_procs, "max_files": cfg.max_files, "tmpfs_mb": cfg.tmpfs_mb,
           "preload": list(PRELOAD)}
    cmd = [cfg.python, "-I", "-S", str(CHILD_SCRIPT)]
    if namespaces:
      cmd = ["unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--"] + cmd
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    with open(work / "stdout", "wb") as out, open(work / "stderr", "wb") as err:
      proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=work,
                              env=env, start_new_session=True, close_fds=True)
      try:
        proc.stdin.write(json.dumps(job).encode())
        proc.stdin.close()
      except (BrokenPipeError, OSError):
        pass  # the child died before reading its job: its exit status says why
      timed_out = False
      try:
        proc.wait(timeout=cfg.timeout_s)
      except subprocess.TimeoutExpired:
        timed_out = True
      # Kill the whole group even after a normal exit: a child may have left processes behind.
      try:
        os.killpg(proc.pid, signal.SIGKILL)
      except (ProcessLookupError, PermissionError):
        pass
      proc.wait()
    stdout = _read_capped(work / "stdout", cfg.output_bytes + len(nonce) + 2)
    stderr = _read_capped(work / "stderr", cfg.output_bytes)
  except Exception as e:  # a sandbox failure is a zero reward, not a trainer crash
    return False, {"status": "sandbox_error", "error": repr(e), "returncode": None,
                   "stdout": "", "stderr": "", "wall_s": time.perf_counter() - t0}
  finally:
    shutil.rmtree(work, ignore_errors=True)
  passed = (not timed_out and proc.returncode == 0
            and stdout.rstrip("\n").endswith("\n" + nonce))
  if passed:
    stdout = stdout.rstrip("\n")[:-len(nonce)]
  status = "passed" if passed else "timeout" if timed_out else "failed"
  return passed, {"status": status, "returncode": proc.returncode, "stdout": stdout,
                  "stderr": stderr, "wall_s": time.perf_counter() - t0}


def run_code_tests(program: str, test: str, entry_point: str, *, timeout_s: float = 10.0,
                   memory_mb: int = 1024, **cfg_kwargs) -> tuple[bool, dict]:
  """Runs `program`, then `test`, then `check(<entry_point>)` in a sandbox (module docstring).

  Returns (passed, info) with info = {status: passed | failed | timeout | sandbox_error,
  returncode, stdout, stderr (both capped), wall_s}. Other limits: `SandboxConfig` fields.
  """
  cfg = SandboxConfig(timeout_s=timeout_s, memory_mb=memory_mb, **cfg_kwargs)
  ns = _probe_namespaces() if cfg.namespaces is None else cfg.namespaces
  return _run(program, test, entry_point, cfg, ns)


class CodeSandbox:
  """Runs many programs, at most `max_concurrency` at a time (threads only wait on children)."""

  def __init__(self, cfg: SandboxConfig = SandboxConfig(), max_concurrency: int = 2):
    if max_concurrency < 1:
      raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    self.cfg = cfg
    self.max_concurrency = max_concurrency
    self.namespaces = _probe_namespaces() if cfg.namespaces is None else cfg.namespaces

  def run(self, program: str, test: str, entry_point: str) -> tuple[bool, dict]:
    return _run(program, test, entry_point, self.cfg, self.namespaces)

  def run_batch(self, programs: Sequence[str], tests: Sequence[str],
                entry_points: Sequence[str]) -> list[tuple[bool, dict]]:
    """(N,) results in input order."""
    if not len(programs) == len(tests) == len(entry_points):
      raise ValueError(f"{len(programs)} programs, {len(tests)} tests, "
                       f"{len(entry_points)} entry points")
    with ThreadPoolExecutor(self.max_concurrency) as pool:
      return list(pool.map(self.run, programs, tests, entry_points))
