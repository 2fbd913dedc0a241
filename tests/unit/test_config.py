from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pipeline.errors import ConfigError
from pipeline.models import FeedSpec
from pipeline.registry import load_feeds_file, parse_feeds_yaml, parse_opml
from pipeline.settings import Settings


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


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    missing = [
        f"FEEDPIPE_{name.upper()}"
        for name in Settings.model_fields
        if f"`FEEDPIPE_{name.upper()}`" not in readme
    ]
    assert not missing, f"settings missing from the README table: {missing}"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FEEDPIPE_ALLOWED_NETWORKS": "10.0.0.0/8, intranet"}, "not a CIDR network: 'intranet'"),
        ({"FEEDPIPE_POLL_BUDGET_SECONDS": "80"}, "FEEDPIPE_POLL_BUDGET_SECONDS"),
        ({"FEEDPIPE_HOST_MAX_IN_FLIGHT": "0"}, "host_max_in_flight"),
    ],
)
def test_fetch_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_dashboard_and_alerts_use_only_metrics_the_exporter_serves() -> None:
    import json
    import re

    import yaml

    from pipeline.monitor import GroupLag, Snapshot
    from workers.exporter import metrics_of

    root = Path(__file__).resolve().parents[2]
    snapshot = Snapshot(
        taken_at=0, feeds=3, feeds_erroring=1, feeds_failing=1, feeds_overdue=0,
        oldest_overdue_seconds=0, queues={"extract": 1}, streams={"feedpipe:items": 2},
        groups=(GroupLag("feedpipe:items", "g", 1, 0, 0),), counters={"polls:2xx": 1},
        fetch_latency_ms={"le:50": 1}, worst=(),
    )  # fmt: skip
    served = {"feedpipe_redis_up", "feedpipe_workers"}
    for family in metrics_of(snapshot):
        served |= {sample.name for sample in family.samples} | {family.name}
    dashboard = json.loads((root / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = yaml.safe_load((root / "deploy" / "feedpipe-rules.yml").read_text())
    exprs += [rule["expr"] for rule in rules["groups"][0]["rules"]]
    used = {name for expr in exprs for name in re.findall(r"feedpipe_\w+", expr)}
    assert used <= served, sorted(used - served)
