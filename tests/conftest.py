"""Shared fixtures: a private redis-server per test session (never the machine's 6379)."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
