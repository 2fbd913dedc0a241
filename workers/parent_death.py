"""``python -m workers.parent_death PID -- COMMAND...``: run COMMAND so that it receives SIGTERM
when process PID (the `feedpipe run`/`demo` supervisor that started it) dies, however it dies.

The supervisor stops its children itself on Ctrl-C, SIGTERM, SIGHUP, a closed output or an
exception; nothing it can do runs after a SIGKILL or a crash of the interpreter. Linux's
parent-death signal (``prctl(PR_SET_PDEATHSIG)``) covers that case from the kernel's side and
survives ``execve``, so this small launcher arms it and then becomes COMMAND. It is a launcher
and not a ``preexec_fn`` because ``preexec_fn`` is unsafe while other threads run (the demo
serves its feeds from a thread). Other systems have no parent-death signal: there the
launcher only runs COMMAND (docs/operations.md says what that leaves uncovered).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
SIGNAL = signal.SIGTERM  # Celery's warm shutdown; redis-server writes its AOF out


def launcher(parent_pid: int) -> list[str]:
    """The argv prefix that runs a command under this launcher, tied to ``parent_pid``.

    Empty off the main thread: the kernel sends the signal when the *thread* that started
    the child ends, which for another thread is long before the process does.
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    return [sys.executable, "-m", "workers.parent_death", str(parent_pid), "--"]


def arm(parent_pid: int) -> None:
    """Ask the kernel for SIGNAL when our parent dies; exit if it already has."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(SIGNAL), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died between our fork and the prctl: then we were re-parented
    # already and no signal will ever come.
    if os.getppid() != parent_pid:
        raise SystemExit(f"feedpipe: parent {parent_pid} is gone; not starting")


def main(argv: Sequence[str]) -> None:
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        raise SystemExit("usage: python -m workers.parent_death PARENT_PID -- COMMAND...")
    arm(int(argv[0]))
    command = list(argv[2:])
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
