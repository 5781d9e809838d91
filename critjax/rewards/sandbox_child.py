"""The two script sides of `code_sandbox` (`python -I -S sandbox_child.py [--judge]`), never
imported by the trainer. Standard library only. Nothing in this file, its job or its environment
is secret: the untrusted side may read all of it (see code_sandbox's threat model).

Untrusted side (no argument). Reads one JSON job from stdin, then, in this order (each step needs
the privileges the next one drops): with new mount + PID namespaces as root, builds a private
root filesystem and pivots into it (read-only binds of the system folders and of the Python
installation, a fresh /proc, /dev with only null/zero/full/random/urandom, a size-capped root-owned
tmpfs /tmp holding the scratch folder; nothing else of the host, not the dataset, not the
checkout); without them, as root, reopens the standard-library folders the sandbox user cannot
reach through directory fds (`/proc/self/fd/N/...`); enters the scratch folder; sets resource
limits; drops to the unprivileged uid with no_new_privs and not dumpable (nobody without
CAP_SYS_PTRACE can trace or read it); disables sockets and signals to other processes at the
Python level; runs the program; then serves calls: the judge sends `(name, args, kwargs)`, this
side calls the program's function and sends back the result as plain data (below), or the name
of the exception it raised. A failure before serving is a traceback on stderr and exit status 1.

Judge (`--judge`): trusted, never runs program code. Reads its job, waits for every untrusted
side's "ready" message, binds the names the test takes from the program to proxies (a call sends
the arguments over the pipe and returns the decoded answer, or raises), to decoded values, or,
for a standard-library module, to the judge's own import of it, runs `test` and then
`check(<entry_point>)`, and writes its verdict to its verdict fd (below).

Test cases (for a partial-credit reward; `passed` does not depend on them). Each top-level
statement of `check`'s body that holds an `assert` of something other than a constant (an
`assert True, "..."` tests nothing) is one test case; a loop of asserts is one. The judge compiles
`test` with each such statement wrapped in a try that records its outcome and goes on with the
next; the other statements run as they are, and an exception in one ends `check` (the cases not
yet run count as failed). `passed` keeps its meaning: `check` ran to its end and no statement
raised, so passed iff tests_passed == tests (a failure after the last case is charged to it). With
no counted case (or no top-level `def check`, or a test that does not parse), tests is 1 and
tests_passed is passed. Everything here is the judge's own code working on the trusted test's
syntax tree; the program's answers still reach it only through the proxies.

Verdict stream (one JSON line each, so a judge killed at the time limit has already reported the
cases it ran): `{"tests": n}` before anything runs, then `1` or `0` as each case passes or fails,
then `{"passed": bool, "error": str, "tests": n, "tests_passed": k}`.

Wire format (one JSON line per message, both directions): None, bool, str, float (NaN and
Infinity as JSON's extensions) and int are themselves (ints beyond 2**52 as {"i": hex}); list is a
JSON array; tuple {"t": [...]}, dict {"d": [[k, v], ...]}, set {"s": [...]}, frozenset
{"f": [...]}, bytes {"b": hex}, complex {"c": [re, im]}. Encoding accepts exactly those types and
their subclasses, a subclass sent as its builtin value (read with the builtin's own C methods, so
nothing the subclass defines runs); anything else is an error. Decoding builds only exact builtin
objects, so the judge compares values whose `==`, `<`, `bool`, `hash` are the builtins' own.
"""
import json
import os
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC = 1, 2, 4, 8, 32, 4096, 16384
MNT_DETACH = 2
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}  # syscall numbers; elsewhere chroot is used
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("null", "zero", "full", "random", "urandom")
NEW_ROOT = "/tmp"  # the fresh tmpfs that becomes the sandbox's root (hides the host's /tmp)
MAX_DEPTH = 200
# Standard-library modules the judge will not import for a test (side effects, GUI).
NO_IMPORT = frozenset({"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"})

# ---------------------------------------------------------------------------------------------
# Wire format


def _plain(x, depth=0):
  """`x` as JSON-ready data; raises TypeError for anything that is not plain data."""
  if depth > MAX_DEPTH:
    raise ValueError("value nested too deeply to send")
  t = type(x)
  if x is None or t is bool or t is str or t is float:
    return x
  if t is int:
    return x if -(1 << 52) <= x <= 1 << 52 else {"i": hex(x)}
  if t is list:
    return [_plain(v, depth + 1) for v in x]
  if t is tuple:
    return {"t": [_plain(v, depth + 1) for v in x]}
  if t is dict:
    return {"d": [[_plain(k, depth + 1), _plain(v, depth + 1)] for k, v in x.items()]}
  if t is set:
    return {"s": [_plain(v, depth + 1) for v in x]}
  if t is frozenset:
    return {"f": [_plain(v, depth + 1) for v in x]}
  if t is bytes:
    return {"b": x.hex()}
  if t is complex:
    return {"c": [x.real, x.imag]}
  # Subclasses: the builtin value underneath, read with the builtin type's own methods.
  for base, value in ((int, int.__int__), (float, float.__float__), (str, str.__str__),
                      (bytes, lambda v: bytes.fromhex(bytes.hex(v))),
                      (complex, lambda v: complex(complex.real.__get__(v),
                                                  complex.imag.__get__(v))),
                      (list, lambda v: list(list.__iter__(v))),
                      (tuple, lambda v: tuple(tuple.__iter__(v))),
                      (dict, lambda v: dict(dict.items(v))), (set, lambda v: set(set.__iter__(v))),
                      (frozenset, lambda v: frozenset(frozenset.__iter__(v)))):
    if issubclass(t, base):
      return _plain(value(x), depth)
  raise TypeError(f"a {t.__name__!r} object is not plain data (None, bool, int, float, complex, "
                  "str, bytes, list, tuple, dict, set, frozenset)")


def encode(x) -> bytes:
  return json.dumps(_plain(x), separators=(",", ":")).encode() + b"\n"


_TAGS = {"t": tuple, "s": set, "f": frozenset}


def _untag(d):
  if len(d) != 1:
    raise ValueError("malformed message")
  (tag, v), = d.items()
  if tag in _TAGS and type(v) is list:
    return _TAGS[tag](v)
  if tag == "d" and type(v) is list and all(type(p) is list and len(p) == 2 for p in v):
    return dict(v)
  if tag == "i" and type(v) is str:
    return int(v, 16)
  if tag == "b" and type(v) is str:
    return bytes.fromhex(v)
  if tag == "c" and type(v) is list and len(v) == 2 and all(type(p) in (int, float) for p in v):
    return complex(v[0], v[1])
  raise ValueError("malformed message")


def decode(line: bytes):
  return json.loads(line, object_hook=_untag)


def _write_all(fd, data: bytes) -> None:
  view = memoryview(data)
  while view:
    view = view[os.write(fd, view):]


# ---------------------------------------------------------------------------------------------
# Untrusted side


def _mount(libc, source, target, fstype, flags, data=None):
  import ctypes
  if libc.mount(source.encode() if source else None, target.encode(),
                fstype.encode() if fstype else None, flags,
                data.encode() if data else None) != 0:
    raise OSError(ctypes.get_errno(), f"mount {source or fstype} on {target} failed")


def _python_dirs():
  """Folders the interpreter imports from: its installation when every import path is in it."""
  paths = [os.path.abspath(p) for p in sys.path if os.path.isdir(p)]
  base = os.path.abspath(sys.base_prefix)
  if base != "/" and all(p == base or p.startswith(base + "/") for p in paths):
    return [base]
  return paths


def _inside(path, dirs):
  return any(path == d or path.startswith(d + "/") for d in dirs)


def _isolate_filesystem(job, libc):
  """A private root, inside new mount + PID namespaces (private propagation: nothing here reaches
  the host). Returns the scratch folder's path."""
  import platform
  system = [d for d in SYSTEM_DIRS if os.path.lexists(d)]
  links = [(d, os.readlink(d)) for d in system if os.path.islink(d)]
  system = [d for d in system if not os.path.islink(d)]
  binds = system + [d for d in _python_dirs() if not _inside(d, system)]
  # Held open before the new root hides their paths (the Python installation may be under /tmp).
  fds = [(d, os.open(d, os.O_PATH | os.O_DIRECTORY)) for d in binds]
  root = NEW_ROOT
  _mount(libc, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, f"size={job['tmpfs_mb']}m,mode=755")
  try:
    for d, target in links:
      os.symlink(target, root + d)
    for d, fd in fds:
      os.makedirs(root + d, mode=0o755, exist_ok=True)
      _mount(libc, f"/proc/self/fd/{fd}", root + d, None, MS_BIND | MS_REC)
      _mount(libc, None, root + d, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
  finally:
    for _, fd in fds:
      os.close(fd)
  dev = root + "/dev"
  os.mkdir(dev, 0o755)
  _mount(libc, "tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=64k,mode=755")
  for name in DEVICES:
    if os.path.exists("/dev/" + name):
      open(f"{dev}/{name}", "w").close()
      _mount(libc, "/dev/" + name, f"{dev}/{name}", None, MS_BIND)
  os.mkdir(dev + "/shm", 0o755)  # root-owned: not writable by the program
  for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                       ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
    os.symlink(target, f"{dev}/{name}")
  os.mkdir(root + "/proc", 0o555)
  # A /proc for this PID namespace: the host's processes are neither listed nor addressable.
  _mount(libc, "proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
  os.mkdir(root + "/tmp", 0o755)
  _mount(libc, "tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
         f"size={job['tmpfs_mb']}m,mode=755")
  os.mkdir(root + "/tmp/scratch", 0o700)
  os.mkdir(root + "/.old", 0o700)
  os.chdir(root)
  nr = PIVOT_ROOT.get(platform.machine())
  if nr is not None and libc.syscall(nr, b".", b".old") == 0:
    os.chroot(".")
    if libc.umount2(b"/.old", MNT_DETACH) != 0:
      raise OSError("umount of the old root failed")
    os.rmdir("/.old")
  else:  # still unreachable: the program runs without privileges and holds no fd outside
    os.chroot(".")
  os.chdir("/")
  _mount(libc, None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
  return "/tmp/scratch"


def _reopen_stdlib(uid, gid):
  """Without a mount namespace: each import folder the sandbox user cannot reach is reopened as
  `/proc/self/fd/N` (a directory fd this process holds), in sys.path and in the `__path__` of
  the packages already imported, so the whole standard library imports after the uid drop."""
  dirs = [os.path.abspath(p) for p in sys.path if os.path.isdir(p)]
  os.setegid(gid)
  os.seteuid(uid)
  try:
    blocked = [d for d in dirs if not os.access(d, os.R_OK | os.X_OK, effective_ids=True)]
  finally:
    os.seteuid(0)
    os.setegid(0)
  if not blocked:
    return
  top = os.path.commonpath(blocked)
  tops = [top] if top != "/" else blocked
  fds = {d: f"/proc/self/fd/{os.open(d, os.O_RDONLY | os.O_DIRECTORY)}" for d in tops}

  def moved(p):
    a = os.path.abspath(p)
    for d, new in fds.items():
      if a == d or a.startswith(d + "/"):
        return new + a[len(d):]
    return p

  sys.path[:] = [moved(p) for p in sys.path]
  for mod in list(sys.modules.values()):
    path = getattr(mod, "__path__", None)
    if type(path) is list:
      path[:] = [moved(p) for p in path]
  sys.path_importer_cache.clear()


class _NoSocket:
  def __init__(self, *a, **k):
    raise PermissionError("network access is disabled in the sandbox")


def _block_signals():
  """Signals only to the program's own process: the PID namespace and the uid drop already keep
  the trainer out of reach; this makes an attempt fail loudly instead of hitting a lookalike pid."""
  own = os.getpid()
  real_kill = os.kill

  def kill(pid, sig):
    if pid != own:
      raise PermissionError("signals to other processes are disabled in the sandbox")
    real_kill(pid, sig)

  def killpg(pgid, sig):
    raise PermissionError("signals to process groups are disabled in the sandbox")

  os.kill, os.killpg = kill, killpg


def _block_sockets():
  import _socket
  import socket
  for mod in (socket, _socket):
    for name in ("socket", "SocketType", "socketpair", "create_connection", "create_server",
                 "fromfd"):
      if hasattr(mod, name):
        setattr(mod, name, _NoSocket)


def _flush():
  for f in (sys.stdout, sys.stderr):
    try:
      f.flush()
    except BaseException:
      pass


def _serve(job):
  """Runs the program, reports which of `job['names']` it defines, then answers calls."""
  import traceback
  ns = {"__name__": "__main__"}
  out = job["resp_fd"]
  try:
    exec(compile(job["program"], "program.py", "exec"), ns)
  except BaseException:  # SystemExit included: a program that exits has no function to test
    traceback.print_exc()
    _flush()
    os._exit(1)
  funcs, manifest = {}, {}
  for name in job["names"]:
    if name not in ns:
      manifest[name] = ("missing",)
    elif type(ns[name]) is type(sys) and type(getattr(ns[name], "__name__", None)) is str:
      manifest[name] = ("module", ns[name].__name__)  # the judge imports its own copy
    elif callable(ns[name]):
      funcs[name], manifest[name] = ns[name], ("callable",)
    else:
      try:
        _plain(ns[name])
        manifest[name] = ("value", ns[name])
      except (TypeError, ValueError):
        manifest[name] = ("unsupported",)
  _write_all(out, encode(("ready", manifest)))
  with os.fdopen(job["req_fd"], "rb") as inp:
    for line in inp:
      try:
        _, name, args, kwargs = decode(line)
        data = encode(("ok", funcs[name](*args, **kwargs)))
      except BaseException as e:  # the judge raises it in the test: a failure, never a pass
        traceback.print_exc()
        try:
          data = encode(("err", type(e).__name__, str(e)[:1000]))
        except BaseException:
          data = encode(("err", "Exception", ""))
      _flush()
      _write_all(out, data)
  _flush()
  os._exit(0)  # skip atexit handlers and threads the program left behind


def child_main():
  import ctypes
  import resource
  job = json.loads(sys.stdin.read())
  fd = os.open(os.devnull, os.O_RDONLY)
  os.dup2(fd, 0)
  os.close(fd)
  libc = ctypes.CDLL(None, use_errno=True)
  uid, gid = job["uid"], job["gid"]
  if uid is not None:
    os.setgroups([])
  if job["namespaces"]:
    scratch = _isolate_filesystem(job, libc)
  else:
    scratch = job["scratch"]
    if uid is not None:
      _reopen_stdlib(uid, gid)
  if uid is not None:
    os.chown(scratch, uid, gid)
  os.chdir(scratch)
  os.environ["HOME"] = os.environ["TMPDIR"] = scratch
  import traceback  # noqa: F401  (loaded before the limits)

  cpu = job["cpu_s"]
  resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL a second on
  mem = job["memory_mb"] << 20
  resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
  resource.setrlimit(resource.RLIMIT_FSIZE, (job["file_bytes"], job["file_bytes"]))
  resource.setrlimit(resource.RLIMIT_NPROC, (job["max_procs"], job["max_procs"]))
  resource.setrlimit(resource.RLIMIT_NOFILE, (job["max_files"], job["max_files"]))
  resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

  if uid is not None:
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
      os._exit(3)
  libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # setuid binaries cannot regain root
  libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no ptrace or /proc/<pid>/mem from same-uid processes
  _block_sockets()
  _block_signals()
  _serve(job)


# ---------------------------------------------------------------------------------------------
# Judge


class CandidateError(Exception):
  """The program raised an exception that is not re-raised under its own builtin type."""


def _raisable():
  import builtins
  return {n: c for n, c in vars(builtins).items()
          if isinstance(c, type) and issubclass(c, Exception)
          and not issubclass(c, (StopIteration, StopAsyncIteration, Warning))}


class _Peer:
  """One untrusted side, seen from the judge."""

  def __init__(self, req_fd, resp_fd, cap, label):
    import _thread
    self.req, self.resp, self.cap, self.label = req_fd, os.fdopen(resp_fd, "rb"), cap, label
    self.raisable = _raisable()
    self.lock = _thread.allocate_lock()  # one call at a time, should a test call from threads
    self.broken = ""  # set once a reply overran the cap: the rest of it is no answer to anything

  def _read(self):
    if self.broken:  # later test cases fail at once instead of reading the overrun as replies
      raise CandidateError(self.broken)
    line = self.resp.readline(self.cap + 1)
    if not line:
      raise CandidateError(f"the {self.label} exited")
    if len(line) > self.cap or not line.endswith(b"\n"):
      self.broken = f"the {self.label} sent more than {self.cap} bytes"
      raise CandidateError(self.broken)
    try:
      return decode(line)
    except Exception:
      raise CandidateError(f"the {self.label} sent a malformed message") from None

  def ready(self) -> dict:
    msg = self._read()
    if not (type(msg) is tuple and len(msg) == 2 and msg[0] == "ready" and type(msg[1]) is dict
            and all(type(v) is tuple and v for v in msg[1].values())):
      raise CandidateError(f"the {self.label} did not start")
    return msg[1]

  def proxy(self, name):
    def call(*args, **kwargs):
      try:
        request = encode(("call", name, args, kwargs))
      except (TypeError, ValueError) as e:
        raise TypeError(f"the test passed {name} an argument that is not plain data: {e}") from None
      with self.lock:
        try:
          _write_all(self.req, request)
        except OSError:
          raise CandidateError(f"the {self.label} exited") from None
        msg = self._read()
      if type(msg) is tuple and len(msg) == 2 and msg[0] == "ok":
        return msg[1]
      if (type(msg) is tuple and len(msg) == 3 and msg[0] == "err" and type(msg[1]) is str
          and type(msg[2]) is str):
        cls = self.raisable.get(msg[1], CandidateError)
        try:
          exc = cls(msg[2])
        except Exception:
          exc = CandidateError(f"{msg[1]}: {msg[2]}")
        raise exc
      raise CandidateError(f"the {self.label} sent a malformed reply")
    call.__name__ = call.__qualname__ = name
    return call


def _describe(e, test):
  import traceback
  where = ""
  for fr in traceback.extract_tb(e.__traceback__):
    if fr.filename == "test.py":
      lines = test.splitlines()
      text = lines[fr.lineno - 1].strip() if 0 < fr.lineno <= len(lines) else ""
      where = f" at test.py:{fr.lineno}: {text}"
  return f"{type(e).__name__}: {str(e)[:500]}{where}"[:2000]


RECORD, CAUGHT = "__judge_record__", "__judge_exception__"  # names the wrapped check uses


def _is_case(stmt) -> bool:
  """Whether a statement of check's body is a test case: it holds an assert of something other
  than a constant, outside the bodies of functions and classes it defines."""
  import ast
  nested = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
  todo = [] if isinstance(stmt, nested) else [stmt]
  while todo:
    node = todo.pop()
    if isinstance(node, ast.Assert) and not isinstance(node.test, ast.Constant):
      return True
    todo += [c for c in ast.iter_child_nodes(node) if not isinstance(c, nested)]
  return False


def _with_cases(test: str):
  """(code, n): `test` compiled with each test case of its last top-level `def check` wrapped so
  that `__judge_record__(i, exception or None)` hears its outcome (a False answer re-raises), and
  the number of cases; (None, 0) when there is no such check or case, or `test` does not parse."""
  import ast
  try:
    tree = ast.parse(test, "test.py")
  except (SyntaxError, ValueError):
    return None, 0
  checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
  if not checks:
    return None, 0
  fn, body, n = checks[-1], [], 0
  for stmt in fn.body:
    if not _is_case(stmt):
      body.append(stmt)
      continue
    # try: <stmt>
    # except BaseException as __judge_exception__:
    #   if not __judge_record__(n, __judge_exception__): raise
    # else: __judge_record__(n, None)
    def record(outcome, i=n):
      return ast.Call(ast.Name(RECORD, ast.Load()), [ast.Constant(i), outcome], [])
    wrapped = ast.Try(
        body=[stmt],
        handlers=[ast.ExceptHandler(
            type=ast.Name("BaseException", ast.Load()), name=CAUGHT,
            body=[ast.If(ast.UnaryOp(ast.Not(), record(ast.Name(CAUGHT, ast.Load()))),
                         [ast.Raise()], [])])],
        orelse=[ast.Expr(record(ast.Constant(None)))], finalbody=[])
    body.append(ast.copy_location(wrapped, stmt))  # the wrapper's nodes take the statement's line
    n += 1
  if not n:
    return None, 0
  fn.body = body
  ast.fix_missing_locations(tree)
  try:
    return compile(tree, "test.py", "exec"), n
  except (SyntaxError, ValueError):
    return None, 0


class _Cases:
  """`__judge_record__`: hears each case's outcome while `check(<entry_point>)` runs, reports it
  on the verdict fd, and keeps the first failure's description. An exception that is not an
  Exception (SystemExit, KeyboardInterrupt), or one raised while the test's own module code calls
  check, is not recorded: it is re-raised, as without the wrapper."""

  def __init__(self, fd, test):
    self.fd, self.test, self.active = fd, test, False
    self.outcomes, self.failed, self.first_error = {}, False, ""

  def __call__(self, i, exc):
    if not self.active or (exc is not None and not isinstance(exc, Exception)):
      return False
    if i not in self.outcomes:
      self.outcomes[i] = exc is None
      _write_all(self.fd, b"1\n" if exc is None else b"0\n")
    if exc is not None and not self.failed:
      self.failed, self.first_error = True, _describe(exc, self.test)
    return True


def judge_main():
  job = json.loads(sys.stdin.read())
  fd = os.open(os.devnull, os.O_RDONLY)
  os.dup2(fd, 0)
  os.close(fd)
  import resource
  cpu = job["cpu_s"]
  resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
  mem = job["memory_mb"] << 20
  resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
  resource.setrlimit(resource.RLIMIT_FSIZE, (job["file_bytes"], job["file_bytes"]))
  resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
  if os.geteuid() != 0:  # the program may share our uid: keep it from tracing this process
    import ctypes
    ctypes.CDLL(None).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
  verdict = {"passed": False, "error": ""}
  out = job["verdict_fd"]
  try:
    code, tests = _with_cases(job["test"])
  except Exception:  # e.g. RecursionError on a deeply nested test: no cases, `passed` unchanged
    code, tests = None, 0
  cases = _Cases(out, job["test"])
  try:
    _write_all(out, json.dumps({"tests": max(tests, 1)}).encode() + b"\n")
    peers = {label: _Peer(p["req_fd"], p["resp_fd"], job["message_bytes"], label)
             for label, p in job["peers"].items()}
    manifests = {label: peer.ready() for label, peer in peers.items()}
    ns = {"__name__": "__main__"}
    for name, label in job["routes"].items():
      kind = manifests[label].get(name, ("missing",))
      if kind[0] == "callable":
        ns[name] = peers[label].proxy(name)
      elif kind[0] == "value" and len(kind) == 2:
        ns[name] = kind[1]
      elif kind[0] == "module" and len(kind) == 2 and type(kind[1]) is str:
        top = kind[1].partition(".")[0]
        if top in sys.stdlib_module_names and top not in NO_IMPORT:
          import importlib
          ns[name] = importlib.import_module(kind[1])
    ns[RECORD] = cases
    exec(code if code is not None else compile(job["test"], "test.py", "exec"), ns)
    cases.active = True
    eval(compile(f"check({job['entry_point']})", "check", "eval"), ns)
    cases.active = False
    verdict["passed"] = not cases.failed
  except BaseException as e:
    cases.active = False
    verdict["error"] = cases.first_error or _describe(e, job["test"])
  else:
    verdict["error"] = cases.first_error
  if not tests:
    tests, tests_passed = 1, int(verdict["passed"])
  elif verdict["passed"]:
    tests_passed = tests  # a check that returned early passed all the same
  else:
    tests_passed = min(sum(cases.outcomes.values()), tests - 1)
  verdict.update(tests=tests, tests_passed=tests_passed)
  try:
    sys.stdout.flush()
    sys.stderr.flush()
  except BaseException:
    pass
  try:
    _write_all(out, json.dumps(verdict).encode() + b"\n")
  except BaseException:
    pass
  os._exit(0)


if __name__ == "__main__":
  judge_main() if sys.argv[1:] == ["--judge"] else child_main()
