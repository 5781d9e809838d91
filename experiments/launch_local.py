"""N local processes of one Python command, joined as one JAX job (the test bed for multi-host runs).

  python -m experiments.launch_local --processes=2 --devices=4 -- \
      -m experiments.train --config=configs/grpo.py:tiny --config.mesh.distributed=True --workdir=/tmp/grpo_2x4

Every process runs `python <args after -->` with a loopback coordinator on a free port and its own
CRITJAX_PROCESS_ID (critjax.sharding.initialize_distributed reads them when the config sets
mesh.distributed=True), JAX_PLATFORMS=cpu and XLA_FLAGS=--xla_force_host_platform_device_count=<devices>.
The launcher waits for all; when one fails it stops the others (SIGTERM, then SIGKILL after a grace
period) and exits with the first failure's status (128 + N for a signal), 0 when all succeed, 124
when --timeout passes first.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from critjax import sharding as sh

GRACE_S = 10.0      # a failed peer's survivors get this long to exit on SIGTERM before SIGKILL
TIMED_OUT = 124     # timeout(1)'s status


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def process_env(i: int, n: int, devices: int, coordinator: str, *, platform: str = "cpu",
                init_timeout: Optional[int] = None, base: Optional[dict] = None) -> dict:
  """Process i's environment: the coordinator and its id, and `devices` host devices on CPU."""
  env = dict(os.environ if base is None else base)
  flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", "")).split()
  if platform == "cpu":
    env["JAX_PLATFORMS"] = "cpu"
    flags.append(f"--xla_force_host_platform_device_count={devices}")
  env["XLA_FLAGS"] = " ".join(flags)
  env.update({sh.ENV_COORDINATOR: coordinator, sh.ENV_NUM_PROCESSES: str(n), sh.ENV_PROCESS_ID: str(i)})
  if init_timeout is not None:
    env[sh.ENV_INIT_TIMEOUT] = str(init_timeout)
  return env


def _status(code: int) -> int:
  return 128 - code if code < 0 else code      # Popen reports a signal as -N


def launch(args: Sequence[str], processes: int, devices: int, *, platform: str = "cpu",
           init_timeout: Optional[int] = None, log_dir: Optional[str | Path] = None,
           coordinator: Optional[str] = None, env: Optional[dict] = None, timeout: Optional[float] = None) -> int:
  """Runs `python *args` in `processes` processes; returns 0, the first failure's exit status, or
  TIMED_OUT when `timeout` seconds pass first (all are stopped then). With `log_dir`, process i's
  stdout and stderr go to log_dir/process_<i>.log (else they are inherited)."""
  coordinator = coordinator or f"127.0.0.1:{free_port()}"
  logs = []
  if log_dir is not None:
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    logs = [open(Path(log_dir) / f"process_{i}.log", "w") for i in range(processes)]
  procs = []
  try:
    for i in range(processes):
      out = logs[i] if logs else None
      procs.append(subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT if out else None,
                                    env=process_env(i, processes, devices, coordinator, platform=platform,
                                                    init_timeout=init_timeout, base=env)))
    deadline = None if timeout is None else time.monotonic() + timeout
    failed = None
    while failed is None and any(p.poll() is None for p in procs):
      failed = next((p for p in procs if p.poll() not in (None, 0)), None)
      if deadline is not None and time.monotonic() > deadline:
        _stop(procs)
        return TIMED_OUT
      time.sleep(0.1)
    failed = failed or next((p for p in procs if p.returncode), None)
    if failed is None:
      return 0
    _stop(procs)
    return _status(failed.returncode)
  except BaseException:        # Ctrl-C or an error here: take the children down too
    _stop(procs)
    raise
  finally:
    for f in logs:
      f.close()


def _stop(procs):
  for p in procs:
    if p.poll() is None:
      p.send_signal(signal.SIGTERM)
  deadline = time.monotonic() + GRACE_S
  for p in procs:
    try:
      p.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], usage="%(prog)s [options] -- ARGS...")
  parser.add_argument("--processes", type=int, default=2)
  parser.add_argument("--devices", type=int, default=4, help="CPU devices per process")
  parser.add_argument("--platform", default="cpu", help="'cpu' (fake host devices) or 'native' (leave JAX_PLATFORMS)")
  parser.add_argument("--init_timeout", type=int, default=60, help="seconds for every process to join")
  parser.add_argument("--log_dir", default=None, help="process_<i>.log per process (default: inherit)")
  parser.add_argument("--timeout", type=float, default=None, help="stop all after this many seconds (status 124)")
  parser.add_argument("args", nargs=argparse.REMAINDER)
  a = parser.parse_args(argv)
  args = a.args[1:] if a.args[:1] == ["--"] else a.args
  if not args or a.processes < 1 or a.devices < 1:
    parser.error("need --processes >= 1, --devices >= 1 and a command after --")
  return launch(args, a.processes, a.devices, platform=a.platform, init_timeout=a.init_timeout, log_dir=a.log_dir,
                timeout=a.timeout)


if __name__ == "__main__":
  sys.exit(main())
