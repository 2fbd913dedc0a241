"""Finding the processes of one run in the process table, re-parented ones included: every
process the run starts inherits a mark in its environment, read back from /proc/*/environ.
Standard library only: .ci/smoke_run.py uses it from an install without dev extras."""

from __future__ import annotations

import contextlib
from pathlib import Path


def marked_processes(variable: str, mark: str) -> list[str]:
    """Command lines of the live processes whose environment has ``variable=mark``."""
    found = []
    needle = f"{variable}={mark}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            environment = (proc / "environ").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if needle in environment and state != "Z":  # a zombie is dead, awaiting its reaper
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return found
