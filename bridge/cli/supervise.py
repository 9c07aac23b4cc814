"""Run several copies of one process as a single service (`bridge worker --processes`).

Why: a worker process spends its CPU in Python under one GIL; with a fleet's worth of
orders one process saturates one core (bench/fleet.py: 0.77-0.85 of the fleet's
budget with one process on a 2-core Xeon, 0.98 with two). Threads keep a slow panel
from holding the others (docs/benchmarks.md); processes add cores.

Rules, so that systemd (or a terminal) sees one well-behaved service:
- children run in their own session, so a Ctrl-C reaches them once, through us
  (Celery takes a second SIGINT as "cold shutdown": running steps cut short);
- a child dies with us (PR_SET_PDEATHSIG), so a SIGKILLed supervisor leaves no
  orphans (their leases then expire, as for any killed worker);
- SIGTERM, SIGINT, SIGQUIT and SIGHUP are forwarded to every child, and we wait
  for all of them; we exit 0 when stopped by a signal;
- when a child exits on its own, the others are stopped (SIGTERM: Celery's warm
  shutdown) and we exit with its status, so `Restart=on-failure` restarts the set.
"""

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from types import FrameType

FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


def default_processes(limit: int = 4) -> int:
    """One per CPU this process may run on, at most `limit` (DB connections)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, limit))


def worker_processes(asked: int | None, pool: str) -> int:
    """How many worker processes to run: as asked, else one per CPU for threads.

    Prefork already runs a process per CPU, and solo is one task at a time by
    design: both default to a single process.
    """
    if asked is not None:
        return asked
    return default_processes() if pool == "threads" else 1


def _death_signal() -> Callable[[], None] | None:
    """What each child runs before exec: SIGTERM when the supervisor dies.

    Resolved once, in the supervisor: the child only makes the system call
    (looking libc up there would run a linker query between fork and exec).
    None where there is no `prctl` (not Linux).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = getattr(ctypes.CDLL(None), "prctl", None)  # libc, already loaded
    if prctl is None:
        return None
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _exit_status(returncode: int) -> int:
    """A child's status as ours: killed by a signal counts as a failure."""
    return returncode if returncode >= 0 else 1


def supervise(commands: Sequence[Sequence[str]]) -> int:
    """Start every command, forward stop signals, return the exit status to use."""
    children: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    die_with_us = _death_signal()
    for argv in commands:
        children.append(
            # preexec_fn is unsafe only with threads; the supervisor has none.
            subprocess.Popen(  # noqa: S603 - our own argv
                list(argv),
                start_new_session=True,
                preexec_fn=die_with_us,  # noqa: PLW1509
            )
        )
    first = _wait_any(children)
    if not stopping:
        # One child ended by itself (a crash, a bad broker URL): stop the rest so
        # the service restarts as a whole rather than limping on fewer processes.
        # The supervisor has no logging of its own: one line on stderr.
        print(
            f"bridge worker: process {first.pid} exited with {first.returncode};"
            " stopping the others",
            file=sys.stderr,
            flush=True,
        )
        forward(signal.SIGTERM, None)
    for child in children:
        child.wait()
    if stopping and first.returncode in (0, -stopping[0]):
        return 0
    return _exit_status(first.returncode)


def _wait_any(children: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """Block until one child exits (signals still run their handlers)."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            # Reaped already (Popen.poll in the handler): find which one.
            done = [c for c in children if c.poll() is not None]
            if done:
                return done[0]
            raise
        for child in children:
            if child.pid == pid:
                child.returncode = os.waitstatus_to_exitcode(status)
                return child
