"""Shared fixtures: a private redis-server per test session (never the machine's 6379).

Under ``CI=true`` a skip is a failure that gives the skip's reason: CI must not pass while
tests quietly did not run (``../shared`` missing, say). xfail is left alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from workers.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURE = SHARED / "fixtures" / "seed-ilna.txt"


class RedisServer(EmbeddedRedis):
    """The tests' own redis-server on a free port: never the machine's shared 6379."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, persistent=False)
        try:
            self.start()
        except ConfigError as exc:
            pytest.fail(f"{exc} (.ci/run installs it)")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def item_schema() -> dict[str, object]:
    return dict(json.loads((ROOT / "docs" / "item-schema.json").read_text()))


@pytest.fixture(scope="session")
def fixture_path() -> Path:
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} not found: the shared fixtures live beside the project root")
    return FIXTURE


def _ci() -> bool:
    return os.environ.get("CI") == "true"


def _fail_skip_under_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Turn a skip (``pytest.skip()``, a skip/skipif marker) into a failure with its reason."""
    if not (_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true: {reason.removeprefix('Skipped: ')}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield  # tryfirst: the outermost wrapper, so xfail has already been decided
    _fail_skip_under_ci(report)
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield  # a module-level pytest.skip() or importorskip()
    _fail_skip_under_ci(report)
    return report
