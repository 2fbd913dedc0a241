"""CI's user-path smoke of `feedpipe run`: a loopback feed farm, `feedpipe run --feeds` on it
until items are published, Ctrl-C, then no process of the run may be left.

    python .ci/smoke_run.py VENV_BIN

Runs with the interpreter and `feedpipe` of VENV_BIN (an install without dev extras), so it
uses the standard library only. Every process of the run inherits a mark in its environment;
``/proc/*/environ`` finds them, re-parented ones included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

MARK = "FEEDPIPE_SMOKE_MARK"
ROOT = Path(__file__).resolve().parents[1]
FEEDS, ENTRIES, WANTED = 6, 3, 10
sys.path.insert(0, str(ROOT))
from tests.processes import marked_processes  # noqa: E402 - the project root goes first


def fail(message: str) -> None:
    raise SystemExit(f"smoke: FAILED: {message}")


def main(venv_bin: Path) -> None:
    mark = uuid.uuid4().hex
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="feedpipe-smoke-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")} | {
            MARK: mark,
            "FEEDPIPE_DATA_DIR": str(Path(tmp, "data")),
            "FEEDPIPE_ALLOW_PRIVATE_NETWORKS": "true",  # the farm is on 127.0.0.1
            "FEEDPIPE_HOST_MIN_GAP_SECONDS": "0.05",
            "FEEDPIPE_DISPATCH_INTERVAL_SECONDS": "0.5",
            "FEEDPIPE_FETCH_CONCURRENCY": "1",
            "FEEDPIPE_EXTRACT_CONCURRENCY": "1",
        }
        feeds_file = Path(tmp, "farm.yaml")
        farm = subprocess.Popen(
            [str(venv_bin / "python"), "-m", "bench.feedfarm", "--feeds", str(FEEDS),
             "--entries", str(ENTRIES), "--hosts", "2", "--write-feeds", str(feeds_file)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            _wait_for_line(farm, "feeds written", 60)
            published = _run_until_published(venv_bin, feeds_file, env)
        finally:
            farm.send_signal(signal.SIGINT)
            farm.wait(30)
    deadline = time.monotonic() + 30
    while left := marked_processes(MARK, mark):
        if time.monotonic() > deadline:
            fail("processes left behind after Ctrl-C:\n" + "\n".join(left))
        time.sleep(0.5)
    took = time.monotonic() - started
    print(f"smoke: feedpipe run published {published} items, stopped cleanly ({took:.0f} s)")


def _run_until_published(venv_bin: Path, feeds_file: Path, env: dict[str, str]) -> int:
    run = subprocess.Popen(
        [str(venv_bin / "feedpipe"), "run", "--feeds", str(feeds_file), "--summary-interval", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    published, lines = 0, []
    deadline = time.monotonic() + 150
    try:
        while published < WANTED:
            line = _wait_for_line(run, "", deadline - time.monotonic())
            lines.append(line)
            if "| published " in line:
                published += int(line.split("| published ")[1].split()[0])
    except SystemExit:
        print("".join(lines[-40:]), file=sys.stderr)
        raise
    run.send_signal(signal.SIGINT)
    try:
        code = run.wait(90)
    except subprocess.TimeoutExpired:
        run.kill()
        fail("feedpipe run did not stop within 90 s of Ctrl-C")
    if code != 0:
        fail(f"feedpipe run exited {code} on Ctrl-C")
    return published


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    """The next line of ``proc``'s output that contains ``needle``."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            fail(f"{proc.args[0]} exited {proc.returncode}")
        if needle in line:
            return line
    fail(f"timed out waiting for {needle or 'output'!r} from {proc.args[0]}")
    return ""


if __name__ == "__main__":
    main(Path(sys.argv[1]))
