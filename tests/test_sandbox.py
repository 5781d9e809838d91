"""Code sandbox: canonical HumanEval solutions pass; each attack scores 0 within the time limit
while the caller (standing in for the trainer) keeps running; a wrong program cannot forge a pass
(whatever it reads, prints, patches, traces, raises or exits with); correct programs importing any
standard-library module pass."""
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from critjax.data.datasets import Example, load_humaneval
from critjax.data.paths import data_path
from critjax.rewards import code_sandbox
from critjax.rewards import REWARDS
from critjax.rewards.code_sandbox import (CodeSandbox, SandboxConfig, run_code_tests,
                                          sandbox_isolation)

TIMEOUT_S = 3.0
SLACK_S = 2.0  # kill, reap and clean-up after the wall-time limit


@pytest.fixture(scope="module")
def sandbox():
  return CodeSandbox(SandboxConfig(timeout_s=TIMEOUT_S, memory_mb=512), max_concurrency=2)


def _attack(body: str) -> tuple[str, str, str]:
  """A program whose `check` passes unless the sandbox stops `body` (indented into f)."""
  program = "import os, sys, signal, socket\n\ndef f():\n" + "".join(
      "    " + line + "\n" for line in body.strip().splitlines()) + "    return 1\n"
  return program, "def check(c):\n    assert c() == 1\n", "f"


def _assert_zero_in_time(result):
  passed, info = result
  assert not passed, info
  assert info["wall_s"] < TIMEOUT_S + SLACK_S, info


def test_canonical_humaneval_solutions_pass_and_a_wrong_one_fails(sandbox):
  exs = load_humaneval(limit=5)
  with REWARDS.get("humaneval_tests")(timeout_s=10.0) as reward:
    scores, stats = reward.score(exs + exs[:1], [e.answer for e in exs] + ["    return False\n"])
  assert scores.tolist() == [1.0] * 5 + [0.0], stats
  assert stats == {"n": 6, "passed": 5, "failed": 1}


def test_fenced_whole_function_completion():
  ex = load_humaneval(limit=1)[0]
  fenced = ("Here it is:\n```python\ndef has_close_elements(numbers, threshold):\n"
            "    return any(abs(a - b) < threshold for i, a in enumerate(numbers)\n"
            "               for j, b in enumerate(numbers) if i != j)\n```\n")
  with REWARDS.get("humaneval_tests")() as reward:
    assert reward([ex], [fenced]).tolist() == [1.0]


def test_infinite_loop(sandbox):
  passed, info = sandbox.run(*_attack("while True:\n    pass"))
  _assert_zero_in_time((passed, info))
  assert info["status"] == "timeout" or info["returncode"] != 0


def test_sleeping_forever_hits_the_wall_clock(sandbox):
  passed, info = sandbox.run(*_attack("import time\ntime.sleep(1000)"))
  _assert_zero_in_time((passed, info))
  assert info["status"] == "timeout"


def test_fork_bomb(sandbox):
  passed, info = sandbox.run(*_attack("while True:\n    os.fork()"))
  _assert_zero_in_time((passed, info))
  assert info["status"] == "timeout" or "BlockingIOError" in info["stderr"], info
  # Nothing of it survives: no process of the sandbox user is left behind.
  if sandbox_isolation()["drop_uid"]:
    deadline = time.monotonic() + SLACK_S  # the kernel tears the PID namespace down async
    while True:
      out = subprocess.run(["ps", "-u", "nobody", "-o", "pid="], capture_output=True, text=True)
      if out.stdout.strip() == "" or time.monotonic() > deadline:
        break
      time.sleep(0.05)
    assert out.stdout.strip() == ""


def test_ten_gigabyte_allocation(sandbox):
  passed, info = sandbox.run(*_attack("x = bytearray(10 * 2**30)\nx[-1] = 1"))
  _assert_zero_in_time((passed, info))
  assert "MemoryError" in info["stderr"]


def test_socket_connection_attempt(sandbox):
  srv = socket.socket()
  srv.bind(("127.0.0.1", 0))
  srv.listen(4)
  port = srv.getsockname()[1]
  body = f"socket.create_connection(('127.0.0.1', {port}), timeout=1)"
  if sandbox_isolation()["network_namespace"]:
    # Bypass the Python-level stub with raw syscalls: only the network namespace stops this.
    body = f"""
import ctypes, struct
try:
    {body}
except PermissionError:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.socket(2, 1, 0)
    addr = struct.pack('!HH4s8x', 2, {port}, bytes([127, 0, 0, 1]))
    addr = struct.pack('H', 2) + addr[2:]
    assert libc.connect(fd, addr, len(addr)) == 0, ctypes.get_errno()
"""
  try:
    passed, info = sandbox.run(*_attack(body))
    _assert_zero_in_time((passed, info))
    assert "PermissionError" in info["stderr"] and "ModuleNotFound" not in info["stderr"], info
    srv.settimeout(0.2)
    with pytest.raises(socket.timeout):
      srv.accept()  # nobody reached the listener
  finally:
    srv.close()


def test_writing_outside_the_scratch_directory(sandbox, tmp_path):
  tag = uuid.uuid4().hex
  targets = [tmp_path / f"escape_{tag}", Path("/tmp") / f"escape_{tag}",
             Path("/dev/shm") / f"escape_{tag}", Path(__file__).parent / f"escape_{tag}"]
  body = "written = 0\n"
  for t in targets:
    body += f"try:\n    open({str(t)!r}, 'w').write('x')\n    written += 1\nexcept OSError:\n    pass\n"
  body += "assert written > 0, 'every write was refused'"
  try:
    passed, info = sandbox.run(*_attack(body))
    _assert_zero_in_time((passed, info))
    assert "every write was refused" in info["stderr"], info
    assert [t for t in targets if t.exists()] == []
  finally:
    for t in targets:
      t.unlink(missing_ok=True)
  # Control: the scratch directory (the cwd) is writable.
  passed, info = sandbox.run(*_attack("open('x.txt', 'w').write('hi')\n"
                                      "assert open('x.txt').read() == 'hi'"))
  assert passed, info


def test_killing_the_parent(sandbox):
  trainer = subprocess.Popen(["sleep", "60"])  # a stand-in trainer process, besides ourselves
  try:
    for pid in (os.getpid(), trainer.pid):
      passed, info = sandbox.run(*_attack(f"os.kill({pid}, signal.SIGKILL)"))
      _assert_zero_in_time((passed, info))
      assert "ProcessLookupError" in info["stderr"] or "PermissionError" in info["stderr"], info
    _assert_zero_in_time(sandbox.run(*_attack("os.kill(os.getppid(), signal.SIGKILL)")))
    _assert_zero_in_time(sandbox.run(*_attack("os.killpg(0, signal.SIGKILL)")))
    assert trainer.poll() is None  # still running (and so is this test)
  finally:
    trainer.kill()
    trainer.wait()


def test_early_exit_and_output_flood_fail(sandbox):
  for body in ("sys.exit(0)", "os._exit(0)"):
    # Exiting with status 0 before `check` runs must not pass.
    passed, info = sandbox.run(f"import os, sys\n{body}\ndef f():\n    return 1\n",
                               "def check(c):\n    assert c() == 1\n", "f")
    assert not passed, info
  passed, info = sandbox.run(*_attack("print('x' * 10**7)"))
  _assert_zero_in_time((passed, info))
  assert len(info["stdout"]) <= SandboxConfig().output_bytes


def test_batch_keeps_order_and_config_is_validated(sandbox):
  progs = [_attack("pass"), _attack("raise ValueError"), _attack("pass")]
  res = sandbox.run_batch(*zip(*progs))
  assert [ok for ok, _ in res] == [True, False, True]
  with pytest.raises(ValueError, match="SandboxConfig.memory_mb"):
    SandboxConfig(memory_mb=0)
  passed, info = run_code_tests("def f():\n    return 2\n", "def check(c):\n    assert c() == 2\n",
                                "f", timeout_s=5, memory_mb=256)
  assert passed, info


# --- The verdict cannot be forged -----------------------------------------------------------------
# Each program below is wrong (its `f` returns 2; the test wants 1) and tries to score 1 anyway.

CHECK_ONE = "def check(candidate):\n    assert candidate() == 1\n"

# Looks for the old design's "tests returned" marker everywhere the program can reach and returns
# every 32-hex string found (frames, gc first): printing it, then exiting 0, passed the old sandbox.
FIND_MARKER = r'''
import gc, os, re, sys
_HEX = re.compile(r"\b[0-9a-f]{32}\b")

def _markers():
    found = []
    frame = sys._getframe()
    while frame is not None:
        for v in list(frame.f_locals.values()):
            if isinstance(v, dict) and isinstance(v.get("nonce"), str):
                found.append(v["nonce"])
        frame = frame.f_back
    for o in gc.get_objects():
        if isinstance(o, dict) and isinstance(o.get("nonce"), str):
            found.append(o["nonce"])
    texts = list(sys.argv) + [k + "=" + v for k, v in os.environ.items()]
    paths = ["/proc/self/cmdline", "/proc/self/environ", sys.argv[0] if sys.argv else ""]
    try:
        paths += ["/proc/%s/cmdline" % p for p in os.listdir("/proc") if p.isdigit()]
        paths += [os.path.join("..", n) for n in os.listdir("..")]
    except OSError:
        pass
    for p in paths:
        try:
            with open(p, "rb") as fh:
                texts.append(fh.read(1 << 20).decode("latin-1"))
        except OSError:
            pass
    for t in texts:
        found += _HEX.findall(t)
    return found or ["0" * 32]

def _fake_pass():
    sys.stdout.flush()
    os.write(1, ("\n" + "\n".join(reversed(_markers())) + "\n").encode())
'''


def _wrong(prelude: str = "", body: str = "", ret: str = "2") -> str:
  """FIND_MARKER + `prelude` at module level + a wrong `f` that runs `body` first."""
  return (FIND_MARKER + "\n" + prelude + "\n\ndef f(*args):\n" +
          "".join("    " + line + "\n" for line in body.strip().splitlines()) +
          f"    return {ret}\n")


def _all_zero(sandbox, programs, test=CHECK_ONE):
  """Every program scores 0 in time; the message lists the ones that scored 1."""
  results = sandbox.run_batch(programs, [test] * len(programs), ["f"] * len(programs))
  scored = [(program[len(FIND_MARKER):], info) for program, (passed, info) in zip(programs, results)
            if passed]
  assert scored == [], f"{len(scored)} of {len(programs)} wrong programs scored 1: {scored}"
  for _, info in results:
    assert info["wall_s"] < TIMEOUT_S + SLACK_S, info


def test_a_correct_program_passes_with_every_attack_helper_loaded(sandbox):
  # Control for the attacks below: FIND_MARKER itself does not break a right answer.
  passed, info = sandbox.run(_wrong(ret="1") + "_markers()\n", CHECK_ONE, "f")
  assert passed, info


def test_marker_read_from_memory_argv_env_proc_or_files_and_printed(sandbox):
  _all_zero(sandbox, [
      _wrong("_fake_pass()\nos._exit(0)"),              # before the tests run
      _wrong(body="_fake_pass()\nos._exit(0)"),         # from inside the call under test
      _wrong(body="_fake_pass()"),                      # printed, then the wrong value returned
  ])


def test_always_equal_objects_and_builtin_subclasses(sandbox):
  classes = '''
class AlwaysEq:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __hash__(self): return 0
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
class EqInt(int):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = int.__hash__
class EqStr(str):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = str.__hash__
class EqFloat(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = float.__hash__
class EqList(list):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
class EqTuple(tuple):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
class EqDict(dict):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
class Falsy(list):
    def __bool__(self): return False
    def __len__(self): return 0
'''
  rets = ["AlwaysEq()", "EqInt(5)", "EqStr('wrong')", "EqFloat(0.5)", "EqList([9])",
          "EqTuple((9,))", "EqDict(x=9)"]
  _all_zero(sandbox, [_wrong(classes, ret=r) for r in rets])
  # ... and inside containers.
  _all_zero(sandbox, [_wrong(classes, ret=r) for r in ("[AlwaysEq()]", "[EqInt(7)]", "EqList([])")],
            test="def check(candidate):\n    assert candidate() == [1]\n")
  # `assert not candidate()` wants a falsy answer; a non-empty list that claims to be empty is not.
  _all_zero(sandbox, [_wrong(classes, ret="Falsy([1])")],
            test="def check(candidate):\n    assert not candidate()\n")
  # Ordering and membership tests go through the same plain values.
  _all_zero(sandbox, [_wrong(classes, ret="AlwaysEq()")],
            test="def check(candidate):\n    assert candidate() < 2 and candidate() in (1,)\n")


def test_trace_and_profile_hooks_cannot_replace_or_skip_the_test(sandbox):
  settrace = '''
def _tr(frame, event, arg):
    g = frame.f_globals
    if "check" in g and not getattr(g["check"], "patched", False):
        def check(candidate):
            pass
        check.patched = True
        g["check"] = check
    return _tr
sys.settrace(_tr)
sys._getframe().f_trace = _tr
'''
  setprofile = '''
import ctypes
def _pr(frame, event, arg):
    if event == "call" and frame.f_code.co_name == "check":
        frame.f_locals["candidate"] = lambda *a, **k: 1
        ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
sys.setprofile(_pr)
'''
  threads = '''
import threading, time
threading.settrace(lambda *a: None)
threading.setprofile(lambda *a: None)
_found = _markers()
def _later():
    time.sleep(0.3)
    sys.stdout.flush()
    os.write(1, ("\n" + "\n".join(reversed(_found)) + "\n").encode())
    os._exit(0)
threading.Thread(target=_later, daemon=True).start()
'''
  audit = '''
_called = []
def _audit(event, args):
    if _called:
        _called.clear()
        _fake_pass()
        os._exit(0)
sys.addaudithook(_audit)
'''
  _all_zero(sandbox, [
      _wrong(settrace), _wrong(setprofile),
      _wrong(threads, body="import time\ntime.sleep(1)"),
      _wrong(audit, body="_called.append(1)"),
  ])


def test_patching_builtins_imports_and_the_harness(sandbox):
  builtins_patch = '''
import builtins
builtins.abs = lambda x: 0
builtins.len = lambda x: 1
builtins.all = builtins.any = lambda x: True
'''
  fake_math = '''
import builtins, types
_real_import = builtins.__import__
def _import(name, *a, **k):
    if name == "math":
        m = types.ModuleType("math")
        m.fabs = m.isclose = lambda *x, **y: 0
        return m
    return _real_import(name, *a, **k)
builtins.__import__ = _import
'''
  # Patches the old harness's failure path: its traceback printer prints the marker, its
  # os._exit(1) becomes os._exit(0).
  harness = '''
import traceback
_real_exit = os._exit
traceback.print_exc = lambda *a, **k: _fake_pass()
os._exit = lambda code: _real_exit(0)
'''
  _all_zero(sandbox, [_wrong(builtins_patch)], test=(
      "def check(candidate):\n    assert abs(candidate() - 1) < 1e-9\n"
      "    assert len([candidate()]) == 1 and all([candidate() == 1])\n"))
  _all_zero(sandbox, [_wrong(fake_math)], test=(
      "def check(candidate):\n    import math\n    assert math.fabs(candidate() - 1) < 1e-9\n"))
  _all_zero(sandbox, [_wrong(harness), _wrong(body=harness)])


def test_exit_after_faking_output_fails(sandbox):
  _all_zero(sandbox, [
      _wrong("import atexit\natexit.register(_fake_pass)"),
      _wrong(body="_fake_pass()\nsys.exit(0)"),
      _wrong(body="_fake_pass()\nraise SystemExit(0)"),
      _wrong("print('passed')\nos._exit(0)"),
      _wrong(body="print('passed')\nsys.stdout.flush()\nos._exit(0)"),
      _wrong(body="raise KeyboardInterrupt"),
  ])


def test_exceptions_from_the_candidate_are_not_swallowed(sandbox):
  # A StopIteration raised by the function under test used to end the test's map() early, so
  # all()/any() over it saw an empty sequence and the assertion held.
  stop = _wrong(body="raise StopIteration")
  _all_zero(sandbox, [stop], test="def check(candidate):\n    assert all(map(candidate, [1, 2]))\n")
  _all_zero(sandbox, [stop],
            test="def check(candidate):\n    assert not any(map(candidate, [1, 2]))\n")
  _all_zero(sandbox, [_wrong(body="raise StopAsyncIteration"), _wrong(body="raise GeneratorExit")],
            test="def check(candidate):\n    assert all(map(candidate, [1, 2]))\n")


def test_test_helpers_come_from_the_prompt_not_the_completion(sandbox):
  # HumanEval/38: the test calls the prompt's `encode_cyclic`. A completion that redefines it (and
  # the entry point) as the identity used to pass; the canonical solution still passes.
  ex = {e.id: e for e in load_humaneval(limit=51)}
  e38 = ex["HumanEval/38"]
  hack = "    return s\n\n\ndef encode_cyclic(s):\n    return s\n"
  passed, info = sandbox.run(e38.prompt + hack, e38.meta["test"], e38.meta["entry_point"])
  assert not passed, info
  # HumanEval/32: a completion that redefines `poly` to be 0 everywhere.
  e32 = ex["HumanEval/32"]
  hack = "    return 0.0\n\n\ndef poly(xs, x):\n    return 0\n"
  passed, info = sandbox.run(e32.prompt + hack, e32.meta["test"], e32.meta["entry_point"])
  assert not passed, info
  # The canonical solutions of every task whose test calls a function other than `candidate`.
  picked = [ex[k] for k in ("HumanEval/32", "HumanEval/33", "HumanEval/38", "HumanEval/50")]
  with REWARDS.get("humaneval_tests")(timeout_s=10.0) as reward:
    scores, stats = reward.score(picked, [e.answer for e in picked])
  assert scores.tolist() == [1.0] * 4, stats


STDLIB_SOLUTIONS = {
    "cmath": "return cmath.sqrt(-4).imag == 2.0",
    "unicodedata": "return unicodedata.name('a') == 'LATIN SMALL LETTER A'",
    "calendar": "return calendar.isleap(2024) and not calendar.isleap(1900)",
    "threading": "t = threading.Thread(target=lambda: None); t.start(); t.join(); return True",
    "zlib": "return zlib.decompress(zlib.compress(b'abc')) == b'abc'",
    "difflib": "return difflib.SequenceMatcher(None, 'abc', 'abd').ratio() > 0.5",
    "csv": "return next(csv.reader(['a,b'])) == ['a', 'b']",
    "bz2": "return bz2.decompress(bz2.compress(b'x')) == b'x'",
    "sqlite3": "return sqlite3.connect(':memory:').execute('select 1').fetchone() == (1,)",
    "xml.etree.ElementTree": "return xml.etree.ElementTree.fromstring('<a>1</a>').text == '1'",
    "encodings.idna": "return 'bücher'.encode('idna') == b'xn--bcher-kva'",
    "email.utils": "return email.utils.parseaddr('A <a@b.c>') == ('A', 'a@b.c')",
    "zoneinfo": "return zoneinfo.ZoneInfo('UTC').key == 'UTC'",
}


@pytest.mark.parametrize("namespaces", [None, False])
def test_correct_solutions_importing_the_standard_library_pass(namespaces):
  sb = CodeSandbox(SandboxConfig(timeout_s=10.0, memory_mb=512, namespaces=namespaces), 2)
  mods = list(STDLIB_SOLUTIONS)
  progs = [f"import {m}\n\ndef f():\n    {STDLIB_SOLUTIONS[m]}\n" for m in mods]
  test = "def check(candidate):\n    assert candidate() is True\n"
  results = sb.run_batch(progs, [test] * len(progs), ["f"] * len(progs))
  failed = {m: info["stderr"][-300:] for m, (ok, info) in zip(mods, results) if not ok}
  assert failed == {}


@pytest.mark.parametrize("namespaces", [None, False])
def test_every_standard_library_module_importable_outside_is_importable_inside(namespaces):
  import sys
  skip = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "__phello__",
          "_tkinter", "lib2to3", "pydoc_data", "ensurepip", "venv"}  # side effects / GUI only
  names = sorted(set(sys.stdlib_module_names) - skip)
  probe = ("def f(names):\n    import importlib\n    ok = []\n    for n in names:\n"
           "        try:\n            importlib.import_module(n)\n            ok.append(n)\n"
           "        except Exception:\n            pass\n    return ok\n")
  ns = {}
  exec(probe, ns)
  outside = subprocess.run([sys.executable, "-I", "-S", "-c",
                            probe + f"print(repr(f({names!r})))"],
                           capture_output=True, text=True, check=True).stdout
  expected = eval(outside)
  test = (f"def check(candidate):\n    got = candidate({names!r})\n"
          f"    assert got == {expected!r}, sorted(set({expected!r}) - set(got))\n")
  passed, info = run_code_tests(probe, test, "f", timeout_s=30.0, memory_mb=1024,
                                namespaces=namespaces)
  assert passed, (info.get("judge"), info["stderr"][-2000:])


def test_the_dataset_and_the_checkout_are_unreadable():
  if not sandbox_isolation()["network_namespace"]:
    pytest.skip("needs the mount namespace")
  # The dataset holds every canonical solution: a program that read it could pass by copying one.
  paths = [str(data_path("humaneval", "HumanEval.jsonl.gz")), str(Path(__file__).resolve()),
           str(Path(code_sandbox.__file__).resolve())]
  body = ("readable = []\nfor p in " + repr(paths) + ":\n    try:\n"
          "        open(p, 'rb').read(1)\n        readable.append(p)\n    except OSError:\n"
          "        pass\nassert readable == [], readable")
  passed, info = run_code_tests(*_attack(body), timeout_s=TIMEOUT_S)
  assert passed, info


def test_plain_values_round_trip_exactly(sandbox):
  cases = [
      ("(1, 'a', None)", "(1, 'a', None)"), ("{(1, 2): [3.5, -0.0]}", "{(1, 2): [3.5, -0.0]}"),
      ("{1, 2, frozenset({3})}", "{1, 2, frozenset({3})}"), ("2 ** 200", "2 ** 200"),
      ("-(10 ** 5000)", "-(10 ** 5000)"), ("b'\\x00\\xff'", "b'\\x00\\xff'"), ("1 + 2j", "1 + 2j"),
      ("'\\ud800\\n\"'", "'\\ud800\\n\"'"), ("float('inf')", "float('inf')"), ("True", "True"),
      ("[[[]]]", "[[[]]]"), ("{'a': {'b': ()}}", "{'a': {'b': ()}}"),
  ]
  progs = [f"def f(*a):\n    return {r}\n" for r, _ in cases]
  tests = [f"def check(candidate):\n    r = candidate()\n"
           f"    assert r == {e} and type(r) is type({e})\n" for _, e in cases]
  res = sandbox.run_batch(progs, tests, ["f"] * len(progs))
  assert [ok for ok, _ in res] == [True] * len(cases), [i for ok, i in res if not ok]
  # Arguments arrive as plain values too, and exceptions keep their builtin type.
  passed, info = sandbox.run(
      "def f(x, *, k):\n    if x == 0:\n        raise ValueError('zero')\n    return x * k\n",
      "def check(candidate):\n    assert candidate([1, (2,)], k=2) == [1, (2,), 1, (2,)]\n"
      "    try:\n        candidate(0, k=1)\n    except ValueError:\n        pass\n"
      "    else:\n        assert False\n", "f")
  assert passed, info
  # An object that is not plain data is no answer.
  _all_zero(sandbox, [_wrong(ret="(x for x in [1])"), _wrong(ret="object()")])


def test_forged_or_broken_protocol_messages_fail(sandbox):
  # The only channel back is the pipe the answers travel on. Whatever is written to it, the judge
  # decodes plain values and compares them itself: junk, oversized lines, tags that are not plain
  # data, or a reply sent ahead of the question are wrong answers, never a pass.
  writes = [
      "b'garbage\\n'", "b'{\"x\": 1}\\n'", "b'[\"ok\", {\"t\": 1}]\\n'",
      "b'[\"ok\", 2]\\n' * 3", "b'[' * 100000 + b'\\n'", "b' ' * (9 << 20) + b'\\n'",
  ]
  progs = []
  for w in writes:
    progs.append(_wrong(f"for _fd in range(3, 20):\n    try:\n        os.write(_fd, {w})\n"
                        "    except OSError:\n        pass"))
    progs.append(_wrong(body=f"for fd in range(3, 20):\n    try:\n        os.write(fd, {w})\n"
                             "    except OSError:\n        pass"))
  _all_zero(sandbox, progs)


def test_names_the_test_takes_from_the_prompt(sandbox):
  # A test may use the prompt's helpers, constants and imported standard-library modules; the
  # judge gets them from the prompt alone (its own import, for a module).
  prompt = ("import math\nSCALE = (10, 'x')\n\ndef helper(x):\n    return x * 10\n\n"
            "def f(x):\n    \"\"\"Ten times x.\"\"\"\n")
  test = ("def check(candidate):\n    assert candidate(2) == helper(2)\n"
          "    assert candidate(3) == SCALE[0] * 3 and math.isclose(candidate(0.5), helper(0.5))\n")
  passed, info = sandbox.run(prompt + "    return x * 10\n", test, "f")
  assert passed, info
  # The completion's redefinitions (which all agree with its wrong answer) do not reach the test.
  hack = ("    return 0\n\nimport types\nmath = types.SimpleNamespace(isclose=lambda *a: True)\n"
          "SCALE = (0,)\n\ndef helper(x):\n    return 0\n")
  passed, info = sandbox.run(prompt + hack, test, "f")
  assert not passed, info


# --- Test cases and partial credit (Critique-Coder's fraction of test cases passed) ------------------
# Each expectation is counted by hand from the test's top-level assert statements.

SQUARES = ("def check(candidate):\n    assert candidate(1) == 1\n    assert candidate(2) == 4\n"
           "    assert candidate(3) == 9\n")


def _square_example(test=SQUARES):
  return Example(id="sq", prompt="def f(x):\n", answer="    return x * x\n",
                 meta={"test": test, "entry_point": "f"})


@pytest.fixture(scope="module")
def rewards():
  with REWARDS.get("humaneval_tests")(timeout_s=TIMEOUT_S) as all_pass, \
       REWARDS.get("humaneval_tests")(partial_credit=True, timeout_s=TIMEOUT_S) as fraction:
    yield all_pass, fraction


def test_partial_credit_is_the_fraction_of_asserts_passed(rewards):
  all_pass, fraction = rewards
  ex = _square_example()
  completions = ["    return x * x\n",                       # 3 of 3
                 "    return 4 if x == 2 else x\n",          # f(1)=1 ok, f(2)=4 ok, f(3)=3 wrong: 2 of 3
                 "    return 0\n",                           # 0 of 3
                 "    return x *\n"]                         # a syntax error: the program never runs
  got, stats = fraction.score([ex] * 4, completions)
  np.testing.assert_allclose(got, [1.0, 2 / 3, 0.0, 0.0], rtol=1e-6)
  assert got[0] == 1.0 and got[1] < 1.0
  assert all_pass([ex] * 4, completions).tolist() == [1.0, 0.0, 0.0, 0.0]
  assert stats == {"n": 4, "passed": 1, "failed": 3}


def test_each_assert_statement_is_one_case_and_failures_do_not_stop_the_rest(sandbox):
  # The middle assert fails, the last still runs and passes: 2 of 3, and the verdict names the first
  # failure, as the whole check (which stops there) would.
  passed, info = sandbox.run("def f(x):\n    return 0 if x == 2 else x * x\n", SQUARES, "f")
  assert not passed and info["status"] == "failed"
  assert (info["tests"], info["tests_passed"]) == (3, 2)
  assert "test.py:3" in info["judge"] and "AssertionError" in info["judge"]
  passed, info = sandbox.run("def f(x):\n    return x * x\n", SQUARES, "f")
  assert passed and (info["tests"], info["tests_passed"]) == (3, 3) and info["judge"] == ""


def test_a_loop_of_asserts_is_one_case_and_assert_true_is_none(sandbox):
  test = ("def check(candidate):\n    assert True, 'This prints if this assert fails'\n"
          "    for x in range(4):\n        assert candidate(x) == x * x\n"
          "    assert candidate(10) == 100\n")
  # cases: the loop (one) and candidate(10) (one); `assert True` tests nothing
  wrong_at_3 = "def f(x):\n    return 0 if x == 3 else x * x\n"       # the loop fails at x=3
  passed, info = sandbox.run(wrong_at_3, test, "f")
  assert not passed and (info["tests"], info["tests_passed"]) == (2, 1)
  passed, info = sandbox.run("def f(x):\n    return x * x if x < 10 else 0\n", test, "f")
  assert not passed and (info["tests"], info["tests_passed"]) == (2, 1)
  passed, info = sandbox.run("def f(x):\n    return x * x\n", test, "f")
  assert passed and (info["tests"], info["tests_passed"]) == (2, 2)


def test_a_failing_setup_statement_fails_the_cases_after_it(sandbox):
  test = ("def check(candidate):\n    assert candidate(1) == 1\n    y = candidate(0)\n"
          "    assert candidate(2) == 4\n    assert y == 0\n")
  # candidate(0) raises: case 1 passed, the two after the setup line never run
  prog = "def f(x):\n    if x == 0:\n        raise ValueError('zero')\n    return x * x\n"
  passed, info = sandbox.run(prog, test, "f")
  assert not passed and (info["tests"], info["tests_passed"]) == (3, 1)
  assert "ValueError" in info["judge"] and "test.py:3" in info["judge"]


def test_without_counted_asserts_the_check_is_one_case(sandbox):
  for test in ("def check(candidate):\n    assert True\n    candidate(1)\n",   # only a constant assert
               "def helper(c):\n    assert c(1) == 1\n\ncheck = helper\n"):   # no `def check`
    for prog, ok in (("def f(x):\n    return 1\n", True), ("def f(x):\n    raise KeyError\n", False)):
      passed, info = sandbox.run(prog, test, "f")
      assert passed is ok and (info["tests"], info["tests_passed"]) == (1, int(ok)), (test, info)


def test_a_hang_fails_the_cases_not_yet_reported(sandbox, rewards):
  _, fraction = rewards
  ex = _square_example()
  hang_first = "    while True:\n        pass\n"                       # hangs at the first call
  hang_third = "    if x == 3:\n        while True:\n            pass\n    return x * x\n"
  t0 = time.monotonic()
  got, stats = fraction.score([ex, ex], [hang_first, hang_third])
  # the first reports no case before the time limit: 0; the second passed 2 before hanging: 2/3
  np.testing.assert_allclose(got, [0.0, 2 / 3], rtol=1e-6)
  assert stats == {"n": 2, "timeout": 2}
  assert time.monotonic() - t0 < 2 * (TIMEOUT_S + SLACK_S)
  passed, info = sandbox.run("def f(x):\n    while True:\n        pass\n", SQUARES, "f")
  assert not passed and info["status"] == "timeout"
  assert (info["tests"], info["tests_passed"]) == (3, 0)


def test_a_crash_fails_the_remaining_cases(sandbox):
  # The program exits during the second call: the first case passed, the rest see it gone.
  prog = "import os\n\ndef f(x):\n    if x == 2:\n        os._exit(0)\n    return x * x\n"
  passed, info = sandbox.run(prog, SQUARES, "f")
  assert not passed and info["status"] == "failed"
  assert (info["tests"], info["tests_passed"]) == (3, 1)


def test_counts_default_when_there_is_no_verdict():
  passed, info = run_code_tests("def f():\n    return 1\n", CHECK_ONE, "not an identifier")
  assert info["status"] == "sandbox_error" and (info["tests"], info["tests_passed"]) == (1, 0)
  with pytest.raises(TypeError, match="partial_credit"):
    REWARDS.get("humaneval_tests")(partial_credit="yes")
