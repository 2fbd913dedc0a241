from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.errors import ConfigError
from pipeline.models import FeedSpec, FeedState
from pipeline.registry import load_feeds_file, parse_feeds_yaml, parse_opml
from pipeline.schedule import SchedulePolicy
from pipeline.settings import Settings

POLICY = SchedulePolicy(
    base_interval=600, min_interval=60, max_interval=86_400, backoff_max=86_400, jitter_fraction=0.0
)


def feed(interval: int | None = None) -> FeedState:
    return FeedState(id="f", url="https://a.example/rss", interval=interval)


@pytest.mark.parametrize(
    ("interval", "expected"), [(None, 600), (120, 120), (10, 60), (10**7, 86_400)]
)
def test_interval_override_within_floor_and_ceiling(interval: int | None, expected: int) -> None:
    assert POLICY.interval(feed(interval)) == expected
    assert (
        POLICY.next_poll_after_success(feed(interval), 1000.0, random.Random(1)) == 1000 + expected
    )


@pytest.mark.parametrize(
    ("errors", "delay"), [(1, 600), (2, 1200), (3, 2400), (9, 86_400), (60, 86_400)]
)
def test_error_backoff_is_exponential_and_capped(errors: int, delay: int) -> None:
    assert POLICY.next_poll_after_error(feed(), errors, 0.0, random.Random(1)) == delay


def test_jitter_stays_small() -> None:
    policy = SchedulePolicy(600, 60, 86_400, 86_400, jitter_fraction=0.05)
    rng = random.Random(7)
    delays = {policy.next_poll_after_success(feed(), 0.0, rng) for _ in range(50)}
    assert len(delays) > 1 and all(570 <= d <= 630 for d in delays)


def test_feeds_yaml() -> None:
    specs = parse_feeds_yaml(
        b"feeds:\n  - url: https://a.example/rss\n    title: A\n    tags: [fa, news]\n"
        b"    interval: 300\n  - https://b.example/atom\n",
        "feeds.yaml",
    )
    assert specs == [
        FeedSpec(url="https://a.example/rss", title="A", tags=("fa", "news"), interval=300),
        FeedSpec(url="https://b.example/atom"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"feeds: [", "not valid YAML"),
        (b"urls: []", "top-level 'feeds:' list"),
        (
            b"feeds:\n  - url: ftp://a.example/rss\n",
            "feeds[0]: feed url must be an absolute http(s)",
        ),
        (b"feeds:\n  - title: no url\n", "feeds[0]"),
        (b"feeds:\n  - url: https://a.example/\n    interval: -5\n", "interval must be a positive"),
        (b"feeds:\n  - url: https://a.example/\n    colour: red\n", "colour"),
    ],
)
def test_bad_feeds_files_name_the_file_and_entry(body: bytes, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_feeds_yaml(body, "my-feeds.yaml")
    assert "my-feeds.yaml" in str(info.value) and message.split(":", maxsplit=1)[0] in str(
        info.value
    )


def test_opml_with_folders(tmp_path: Path) -> None:
    path = tmp_path / "subs.opml"
    path.write_text("""<?xml version="1.0"?><opml version="2.0"><head/><body>
      <outline text="Iran"><outline text="ILNA" type="rss" xmlUrl="https://ilna.example/rss"/></outline>
      <outline text="Solo" xmlUrl="https://solo.example/feed"/></body></opml>""")
    assert load_feeds_file(path) == [
        FeedSpec(url="https://ilna.example/rss", title="ILNA", tags=("Iran",)),
        FeedSpec(url="https://solo.example/feed", title="Solo"),
    ]
    with pytest.raises(ConfigError, match="not valid OPML"):
        parse_opml(b"<opml><body>", "x.opml")


def test_missing_feeds_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read feeds file"):
        load_feeds_file(tmp_path / "nope.yaml")


def test_settings_from_env_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDPIPE_POLL_INTERVAL_SECONDS", "900")
    monkeypatch.setenv("FEEDPIPE_REDIS_URL", "redis://127.0.0.1:1/0")
    settings = Settings()
    assert settings.poll_interval_seconds == 900
    assert settings.celery_broker_url == "redis://127.0.0.1:1/0"
    monkeypatch.setenv("FEEDPIPE_REDIS_URL", "http://nope")
    with pytest.raises(ValidationError, match="redis_url"):
        Settings()
    monkeypatch.delenv("FEEDPIPE_REDIS_URL")
    with pytest.raises(ConfigError, match="FEEDPIPE_REDIS_URL"):
        Settings().require_redis_url()
