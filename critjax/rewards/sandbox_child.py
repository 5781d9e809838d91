"""The sandboxed side of `code_sandbox`: run as a script (`python -I -S sandbox_child.py`), never
imported by the trainer. Standard library only.

It reads one JSON job from stdin, then, in this order (each step needs the privileges the next
one drops): mounts fresh tmpfs over the world-writable folders and /proc when it runs in new mount
and PID namespaces as root; makes the scratch folder and enters it; imports the modules the program
may need (after the uid drop the interpreter's own folder may be unreadable); sets resource limits;
drops to the unprivileged uid with no_new_privs; disables sockets and signals to other processes at
the Python level; runs
`program + test + check(entry_point)`; and prints the job's nonce only if `check` returned, so an
early `exit(0)` in the program cannot pass.
"""
import ctypes
import json
import os
import resource
import sys

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
PR_SET_NO_NEW_PRIVS = 38
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # each hidden under a fresh tmpfs


def _mount(libc, source, target, fstype, flags, data):
  if libc.mount(source.encode(), target.encode(), fstype.encode(), flags,
                data.encode() if data else None) != 0:
    raise OSError(ctypes.get_errno(), f"mount {fstype} on {target} failed")


def _isolate_filesystem(job, libc):
  """Inside new mount + PID namespaces (private propagation: nothing here reaches the host)."""
  for d in WORLD_WRITABLE:
    if os.path.isdir(d):
      # Owned by root, mode 755: the unprivileged program cannot write here at all.
      _mount(libc, "tmpfs", d, "tmpfs", MS_NOSUID | MS_NODEV,
             f"size={job['tmpfs_mb']}m,mode=755")
  # A /proc for this PID namespace: the host's processes are neither listed nor addressable.
  _mount(libc, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
  os.makedirs("/tmp/scratch", mode=0o700)
  return "/tmp/scratch"


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


def main():
  job = json.loads(sys.stdin.read())
  fd = os.open(os.devnull, os.O_RDONLY)
  os.dup2(fd, 0)
  os.close(fd)
  libc = ctypes.CDLL(None, use_errno=True)

  scratch = _isolate_filesystem(job, libc) if job["namespaces"] else job["scratch"]
  if job["uid"] is not None:
    os.chown(scratch, job["uid"], job["gid"])
  os.chdir(scratch)
  os.environ["HOME"] = os.environ["TMPDIR"] = scratch

  for name in job["preload"]:
    try:
      __import__(name)
    except ImportError:
      pass
  import traceback  # noqa: F401  (needed to report a failure after the uid drop)

  cpu = job["cpu_s"]
  resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU, then SIGKILL a second on
  mem = job["memory_mb"] << 20
  resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
  resource.setrlimit(resource.RLIMIT_FSIZE, (job["file_bytes"], job["file_bytes"]))
  resource.setrlimit(resource.RLIMIT_NPROC, (job["max_procs"], job["max_procs"]))
  resource.setrlimit(resource.RLIMIT_NOFILE, (job["max_files"], job["max_files"]))
  resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

  if job["uid"] is not None:
    os.setgroups([])
    os.setgid(job["gid"])
    os.setuid(job["uid"])
    if os.getuid() != job["uid"] or os.geteuid() != job["uid"]:
      os._exit(3)
  libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # setuid binaries cannot regain root
  _block_sockets()
  _block_signals()

  source = f"{job['program']}\n\n{job['test']}\n\ncheck({job['entry_point']})\n"
  try:
    exec(compile(source, "program.py", "exec"), {"__name__": "__main__"})
  except BaseException:  # SystemExit included: exiting before check returns is a failure
    import traceback
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)
  sys.stdout.flush()
  os.write(1, ("\n" + job["nonce"] + "\n").encode())
  os._exit(0)  # skip atexit handlers and threads the program left behind


if __name__ == "__main__":
  main()
