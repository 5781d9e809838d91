"""Run a program against its tests with a verdict the program cannot forge (the HumanEval reward).

The reward is 1 when the program runs to its end and then `check(<entry_point>)` from `test`
returns within the limits, with `<entry_point>` the program's function, and 0 otherwise (the
unit-test reward of Chen et al. 2021, Sec. 2.1). A crash, hang, limit hit or sandbox failure is a
0 and an `info['status']`, never an exception in the caller. The judge also counts check's test
cases (its top-level assert statements; a loop of asserts is one) and how many passed, reported
as they run, so a hang or crash fails only the cases not yet reported (`info['tests']`,
`info['tests_passed']`: the partial-credit reward, registry.HumanEvalReward).

How (three kinds of process, started by `_run`; sandbox_child.py holds the two script sides):

  program   untrusted, sandboxed (below): runs `program`, then serves calls to its entry point:
            it receives the arguments and sends back the result, both as plain data (exact
            None/bool/int/float/complex/str/bytes/list/tuple/dict/set/frozenset, nested; a
            subclass is sent as its builtin value). Anything else it returns is an error.
  prompt    only when the test uses a program name other than the entry point (HumanEval/32, 38,
            50: `poly`, `encode_cyclic`, `encode_shift`): the program's text before its first
            top-level `def <entry_point>(` (for `prompt + completion`, part of the prompt), run
            alone in a second sandbox that serves those helpers (constants are sent as values,
            standard-library modules imported by the judge itself), so the completion cannot
            redefine them. A caller whose programs are not built that way should know that this
            part of the program is what the test's helpers come from.
  judge     trusted, never runs program code: runs `test` and `check(<entry_point>)` itself, with
            each program name the test uses bound to a proxy that calls the sandbox over a pipe
            and decodes the answer into fresh builtin objects (or re-raises the sandbox's
            exception under its builtin type, never StopIteration, which would end a `map` early).
            Its verdict goes to the trainer over a pipe no sandbox holds.

Threat model. The program may do anything Python and the kernel let it: read any memory, file,
argument or environment variable it can reach, print anything, exit with any status, install
trace/profile/audit hooks, patch builtins, modules and its own harness, raise anything, start
threads and processes, return objects with any `__eq__`/`__bool__`/`__hash__`. None of that
reaches the verdict: nothing it prints, nor its exit status, is read for the verdict; there is
no secret to steal (no marker or nonce exists); `check`, `assert`, the builtins and the compared
values live in the judge, whose values are built by the judge's decoder from JSON, so a wrong
answer compares unequal. What it can do is answer each call with any plain value it likes, take
time, or fail; so a program that computes the right answers scores 1 however it computes them.
Guaranteed when the trainer is root: the sandboxes run as `nobody` and are not dumpable, so they
cannot trace or read the memory of the judge, the prompt sandbox or the trainer, nor signal the
judge or the trainer (without a PID namespace the program can kill the prompt sandbox, which only
fails the test). Without root it is not guaranteed: the sandboxes run as the trainer's user, so
the program could trace the trainer itself (the sandboxes and the judge are set non-dumpable,
the trainer is not) or rewrite this package for later runs. Not guaranteed either: that the
test's calls are the whole specification (a program that special-cases the test's inputs
passes), that values not listed above (callables, generators, custom classes) can be passed or
returned (a test that needs them fails), that mutations of an argument inside the program are
seen by the test (they are not), and, at the levels without the private root below, that the
program cannot read world-readable files (e.g. the dataset with its canonical solutions).

Host isolation, and when (`sandbox_isolation()` reports which level this machine gets):

  always      new session and process group for each process, all killed (SIGKILL) at the
              wall-time limit; in the sandboxes RLIMIT_CPU, RLIMIT_AS (memory), RLIMIT_FSIZE
              (caps stdout/stderr and every file written), RLIMIT_NPROC, RLIMIT_NOFILE, no core
              files; stdout/stderr read back capped; empty environment; `python -I -S`;
              Python-level sockets and signals to other processes (os.kill, os.killpg) replaced by
              stubs that raise; the judge has the CPU, memory and file-size limits too.
  as root     the sandboxes run as `nobody` (no write access to anything root owns; cannot signal
              the trainer or the judge; RLIMIT_NPROC is enforced, which root ignores) with
              no_new_privs; without unshare, the standard-library folders `nobody` cannot reach
              (e.g. an interpreter under /root) are reopened through directory fds held from
              before the uid drop (`/proc/self/fd/N/...`), so every stdlib module imports.
  + unshare   (root and util-linux `unshare` usable): new network namespace (only a downed
              loopback: no connection leaves, even through ctypes); new IPC namespace; new PID
              namespace with its own /proc (the host's processes are invisible, and killing the
              namespace's first process kills every descendant, including ones that called
              setsid); new mount namespace with a private root: read-only binds of /usr, /etc, the
              /bin-/lib folders and the Python installation (at its own path, so the whole
              standard library imports), /dev with null/zero/full/random/urandom only, and a
              size-capped root-owned tmpfs /tmp whose /tmp/scratch is the only place the program
              can write. The rest of the host (the checkout, the dataset, /root, /home, the host's
              /tmp) does not exist there.

Not guaranteed: without root the program runs as the trainer's user (it could signal or write
what that user can; sockets and signals are blocked only at the Python level, which ctypes
bypasses); as root without unshare, `nobody` can still write world-writable folders (/tmp) and
read world-readable files; and without a PID namespace, processes that leave the process group
may outlive the wall-time kill.

Dimension key: N programs.
"""
from __future__ import annotations

import builtins
import dataclasses
import json
import keyword
import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import symtable
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

CHILD_SCRIPT = Path(__file__).with_name("sandbox_child.py")
UNSHARE = ["unshare", "--net", "--mount", "--pid", "--ipc", "--fork", "--kill-child", "--"]
EXIT_GRACE_S = 0.25  # how long the program sandbox gets to exit by itself once the judge is done
VERDICT_BYTES = 1 << 16


@dataclasses.dataclass(frozen=True)
class SandboxConfig:
  timeout_s: float = 10.0        # wall time, interpreter starts included
  cpu_s: Optional[int] = None    # RLIMIT_CPU; None: ceil(timeout_s)
  memory_mb: int = 1024          # RLIMIT_AS (address space, so a little above resident memory)
  max_procs: int = 32            # RLIMIT_NPROC (per uid: counts every `nobody` process)
  output_bytes: int = 64 * 1024  # RLIMIT_FSIZE, and how much of stdout/stderr is read back
  max_files: int = 64            # RLIMIT_NOFILE
  tmpfs_mb: int = 64             # size of each tmpfs (namespaces only)
  message_bytes: int = 8 << 20   # the largest answer (or request) one call may send
  user: str = "nobody"           # who runs the program when the trainer is root
  namespaces: Optional[bool] = None  # None: use them when root and `unshare` works
  python: str = sys.executable

  def __post_init__(self):
    if not self.timeout_s > 0:
      raise ValueError(f"SandboxConfig.timeout_s must be > 0, got {self.timeout_s}")
    if self.cpu_s is not None and self.cpu_s < 1:
      raise ValueError(f"SandboxConfig.cpu_s must be >= 1, got {self.cpu_s}")
    for name in ("memory_mb", "max_procs", "output_bytes", "max_files", "tmpfs_mb",
                 "message_bytes"):
      if getattr(self, name) < 1:
        raise ValueError(f"SandboxConfig.{name} must be >= 1, got {getattr(self, name)}")


def _probe_namespaces() -> bool:
  if os.geteuid() != 0 or shutil.which("unshare") is None:
    return False
  try:
    r = subprocess.run(UNSHARE + ["true"], capture_output=True, timeout=10)
  except (OSError, subprocess.SubprocessError):
    return False
  return r.returncode == 0


def sandbox_isolation(cfg: SandboxConfig = SandboxConfig()) -> dict:
  """Which of the guarantees in the module docstring this machine provides for `cfg`."""
  root = os.geteuid() == 0
  ns = _probe_namespaces() if cfg.namespaces is None else cfg.namespaces
  return {"drop_uid": root, "network_namespace": ns, "pid_namespace": ns, "tmpfs": ns,
          "private_root": ns, "trusted_judge": True}


def _free_names(test: str) -> set[str]:
  """Global names `test` reads but never binds and builtins do not provide: those it expects
  from the program. (Over-approximates; a name nobody provides is a NameError in the test.)"""
  try:
    top = symtable.symtable(test, "test.py", "exec")
  except (SyntaxError, ValueError):
    return set()  # the judge reports the error
  bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
  used: set[str] = set()

  def walk(table):
    for s in table.get_symbols():
      if s.is_referenced() and (table is top or s.is_global()):
        used.add(s.get_name())
    for child in table.get_children():
      walk(child)

  walk(top)
  return used - bound - set(dir(builtins))


def _trusted_prefix(program: str, entry_point: str) -> str:
  """The program's text before its first top-level `def <entry_point>(`: for a HumanEval program
  (`prompt + completion`, see registry.humaneval_program) a part of the prompt, which no
  completion can change."""
  m = re.search(rf"^def[ \t]+{re.escape(entry_point)}[ \t]*\(", program, re.M)
  return program[:m.start()] if m else ""


def _read_capped(path: Path, cap: int) -> str:
  with open(path, "rb") as f:
    return f.read(cap).decode("utf-8", errors="replace")


def _spawn(cmd: list, job: dict, work: Path, tag: str, pass_fds: tuple) -> subprocess.Popen:
  env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
  flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
  out = os.open(work / f"{tag}.stdout", flags, 0o600)  # only root (or the trainer) reads these
  err = os.open(work / f"{tag}.stderr", flags, 0o600)
  try:
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=work,
                            env=env, start_new_session=True, close_fds=True, pass_fds=pass_fds)
  finally:
    os.close(out)
    os.close(err)
  try:
    proc.stdin.write(json.dumps(job).encode())
    proc.stdin.close()
  except (BrokenPipeError, OSError):
    pass  # it died before reading its job: the judge sees no "ready" and fails
  return proc


def _kill(proc: subprocess.Popen) -> None:
  # The whole group, even after a normal exit: a process may have left others behind.
  try:
    os.killpg(proc.pid, signal.SIGKILL)
  except (ProcessLookupError, PermissionError):
    pass
  proc.wait()


def _read_verdict(fd: int, judge: subprocess.Popen, deadline: float) -> tuple[bytes, bool]:
  """(what the judge wrote to `fd`, whether it was still running at `deadline`, then killed).
  Read while the judge runs, so its per-case reports never fill the pipe and block it."""
  chunks, size, timed_out = [], 0, False
  poller = select.poll()
  poller.register(fd, select.POLLIN)
  while True:
    left = deadline - time.monotonic()
    if left <= 0:
      timed_out = True
      break
    if not poller.poll(max(1, int(left * 1000))):
      continue
    data = os.read(fd, 1 << 16)
    if not data:  # the judge's end closed: it exited
      break
    if size < VERDICT_BYTES:
      chunks.append(data[:VERDICT_BYTES - size])
      size += len(chunks[-1])
  if not timed_out:
    try:
      judge.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      timed_out = True
  _kill(judge)
  os.set_blocking(fd, False)
  try:  # what a killed judge left in the pipe
    while size < VERDICT_BYTES and (data := os.read(fd, VERDICT_BYTES - size)):
      chunks.append(data)
      size += len(data)
  except BlockingIOError:
    pass
  return b"".join(chunks), timed_out


def _parse_verdict(raw: bytes) -> dict:
  """The judge's verdict stream (sandbox_child: `{"tests": n}`, a 1 or 0 per test case run, the
  verdict), read line by line; an unterminated last line is one the kill cut short. Without the
  final verdict: {tests, tests_passed} of the cases reported so far ({} if not even the count)."""
  out = {}
  for line in raw.split(b"\n")[:-1]:
    try:
      msg = json.loads(line)
    except ValueError:
      break
    if type(msg) is dict and "passed" in msg:
      return msg
    if type(msg) is dict and not out and set(msg) == {"tests"}:
      out = {"tests": msg["tests"], "tests_passed": 0}
    elif type(msg) is int and msg in (0, 1) and out:
      out["tests_passed"] += msg
    else:
      break
  return out


def _counts(verdict: dict, passed: bool) -> tuple[int, int]:
  """(tests, tests_passed) of a verdict, kept consistent with `passed`: tests_passed == tests
  exactly when it passed (a timeout after the last case still fails one). (1, passed) when the
  verdict has no valid counts."""
  n, k = verdict.get("tests"), verdict.get("tests_passed")
  if not (type(n) is int and type(k) is int and 0 <= k <= n and n >= 1):
    n, k = 1, 0
  return n, (n if passed else min(k, n - 1))


def _run(program: str, test: str, entry_point: str, cfg: SandboxConfig,
         namespaces: bool) -> tuple[bool, dict]:
  t0 = time.perf_counter()
  deadline = time.monotonic() + cfg.timeout_s
  if not entry_point.isidentifier() or keyword.iskeyword(entry_point):
    return False, {"status": "sandbox_error", "error": f"bad entry point {entry_point!r}",
                   "returncode": None, "stdout": "", "stderr": "", "judge": "", "tests": 1,
                   "tests_passed": 0, "wall_s": time.perf_counter() - t0}
  root = os.geteuid() == 0
  uid = gid = None
  if root:
    pw = pwd.getpwnam(cfg.user)
    uid, gid = pw.pw_uid, pw.pw_gid
  procs: dict[str, subprocess.Popen] = {}
  own_fds: list[int] = []

  def pipe():
    r, w = os.pipe()
    own_fds.extend((r, w))
    return r, w

  def close(*fds):
    for fd in fds:
      own_fds.remove(fd)
      os.close(fd)

  work = Path(tempfile.mkdtemp(prefix="critjax-sandbox-"))
  timed_out = False
  try:
    os.chmod(work, 0o711)  # `nobody` may enter (to reach its scratch folder) but not list
    helpers = sorted(_free_names(test) - {entry_point})
    sandboxes = {"program": (program, [entry_point])}
    prefix = _trusted_prefix(program, entry_point) if helpers else ""
    if prefix.strip():
      sandboxes["prompt"] = (prefix, helpers)
    routes = {entry_point: "program", **{h: "prompt" for h in helpers if "prompt" in sandboxes}}
    limits = {"cpu_s": cfg.cpu_s or max(1, int(-(-cfg.timeout_s // 1))),
              "memory_mb": cfg.memory_mb, "file_bytes": cfg.output_bytes}
    child_cmd = [cfg.python, "-I", "-S", str(CHILD_SCRIPT)]
    if namespaces:
      child_cmd = UNSHARE + child_cmd
    judge_peers, judge_fds = {}, []
    for label, (code, names) in sandboxes.items():
      scratch = work / f"scratch-{label}" if label != "program" else work / "scratch"
      scratch.mkdir(mode=0o700)
      req_r, req_w = pipe()
      resp_r, resp_w = pipe()
      job = {"program": code, "names": names, "req_fd": req_r, "resp_fd": resp_w,
             "namespaces": namespaces, "scratch": str(scratch), "uid": uid, "gid": gid,
             "max_procs": cfg.max_procs, "max_files": cfg.max_files, "tmpfs_mb": cfg.tmpfs_mb,
             **limits}
      procs[label] = _spawn(child_cmd, job, work, label, (req_r, resp_w))
      close(req_r, resp_w)
      judge_peers[label] = {"req_fd": req_w, "resp_fd": resp_r}
      judge_fds += [req_w, resp_r]
    verdict_r, verdict_w = pipe()
    job = {"test": test, "entry_point": entry_point, "peers": judge_peers, "routes": routes,
           "verdict_fd": verdict_w, "message_bytes": cfg.message_bytes, **limits}
    procs["judge"] = _spawn([cfg.python, "-I", "-S", str(CHILD_SCRIPT), "--judge"], job, work,
                            "judge", tuple(judge_fds) + (verdict_w,))
    close(verdict_w, *judge_fds)
    raw, timed_out = _read_verdict(verdict_r, procs["judge"], deadline)
    try:  # the program sandbox sees the judge's end of its pipe close, and exits
      procs["program"].wait(timeout=min(EXIT_GRACE_S, max(0.0, deadline - time.monotonic())))
    except subprocess.TimeoutExpired:
      pass
    for proc in procs.values():
      _kill(proc)
    stdout = _read_capped(work / "program.stdout", cfg.output_bytes)
    stderr = _read_capped(work / "program.stderr", cfg.output_bytes)
  except Exception as e:  # a sandbox failure is a zero reward, not a trainer crash
    return False, {"status": "sandbox_error", "error": repr(e), "returncode": None,
                   "stdout": "", "stderr": "", "judge": "", "tests": 1, "tests_passed": 0,
                   "wall_s": time.perf_counter() - t0}
  finally:
    for proc in procs.values():
      if proc.returncode is None:
        _kill(proc)
    for fd in own_fds:
      os.close(fd)
    shutil.rmtree(work, ignore_errors=True)
  verdict = _parse_verdict(raw)
  if "passed" not in verdict:
    verdict.update(passed=False, error=f"the judge gave no verdict (exit status "
                                       f"{procs['judge'].returncode})")
  passed = verdict.get("passed") is True and not timed_out
  status = "passed" if passed else "timeout" if timed_out else "failed"
  tests, tests_passed = _counts(verdict, passed)
  return passed, {"status": status, "returncode": procs["program"].returncode, "stdout": stdout,
                  "stderr": stderr, "judge": str(verdict.get("error", "")), "tests": tests,
                  "tests_passed": tests_passed, "wall_s": time.perf_counter() - t0}


def run_code_tests(program: str, test: str, entry_point: str, *, timeout_s: float = 10.0,
                   memory_mb: int = 1024, **cfg_kwargs) -> tuple[bool, dict]:
  """Runs `program` in a sandbox and `test` + `check(<entry_point>)` in the judge (module
  docstring).

  Returns (passed, info) with info = {status: passed | failed | timeout | sandbox_error,
  returncode, stdout, stderr (the program's, both capped), judge (why the test failed, '' when it
  passed), tests, tests_passed (check's test cases and how many passed, see sandbox_child; 1 and
  0 when the judge gave no count or the sandbox failed; tests_passed == tests iff passed), wall_s}.
  Other limits: `SandboxConfig` fields.
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
