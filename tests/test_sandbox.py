"""Code sandbox: canonical HumanEval solutions pass; each attack scores 0 within the time limit
while the caller (standing in for the trainer) keeps running."""
import os
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from critjax.data.datasets import Example, load_humaneval
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
