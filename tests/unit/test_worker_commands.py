"""The worker processes `feedpipe run` starts (workers/supervisor.py: celery_commands)."""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import Settings
from workers.supervisor import celery_commands


def commands(**settings: int | str) -> dict[str, list[str]]:
    return celery_commands(Settings(data_dir=Path("/tmp/feedpipe-test"), **settings), "7")


def test_fetch_workers_are_thread_pools_one_per_process() -> None:
    found = commands(fetch_processes=3, fetch_concurrency=16)
    assert list(found) == ["fetch", "fetch-2", "fetch-3", "extract", "beat"]
    for name in ("fetch", "fetch-2", "fetch-3"):
        command = found[name]
        assert command[command.index("-P") + 1] == "threads"
        assert command[command.index("-c") + 1] == "16"
        assert command[command.index("-n") + 1] == f"{name}-7@%h"  # unique node names
    assert "-P" not in found["extract"]  # extraction is CPU: prefork, one process per core


def test_one_fetch_process_is_named_fetch() -> None:
    assert [k for k in commands(fetch_processes=1) if k.startswith("fetch")] == ["fetch"]


def test_websub_adds_the_callback_service_and_a_push_worker_of_its_own() -> None:
    """Pushes have their own queue and worker: a push never waits for a fetch worker's
    threads, which may all be polls waiting for their hosts' turns."""
    assert "push" not in commands() and "websub" not in commands()
    found = commands(websub_base_url="https://feeds.example")
    push = found["push"]
    assert push[push.index("-Q") + 1] == "push"
    assert push[push.index("-P") + 1] == "threads"
    assert push[push.index("-n") + 1] == "push-7@%h"
    assert all(
        "push" not in c[c.index("-Q") + 1] for n, c in found.items() if "-Q" in c and n != "push"
    )
