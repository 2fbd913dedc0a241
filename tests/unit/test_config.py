from __future__ import annotations

import inspect
from pathlib import Path
from urllib.parse import quote

import annotated_types
import pytest
import redis
import redis.asyncio.connection
import redis.connection
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.errors import ConfigError
from pipeline.models import FeedSpec
from pipeline.registry import load_feeds_file, parse_feeds_yaml, parse_opml
from pipeline.settings import (
    REDIS_URL_OPTIONS,
    TCP_ONLY_OPTIONS,
    TLS_ONLY_OPTIONS,
    Settings,
    check_redis_url,
)


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
        (b"feeds:\n  - url: https://a.example/\n    interval: -5\n", "interval must be from"),
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
        ({"FEEDPIPE_LOG_LEVEL": "verbose"}, "log_level"),
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


def test_feeds_gauge_counts_new_feeds_apart_from_ok() -> None:
    from pipeline.monitor import Snapshot
    from workers.exporter import metrics_of

    snapshot = Snapshot(
        taken_at=0, feeds=10, feeds_new=4, feeds_erroring=2, feeds_failing=1, feeds_overdue=0,
        oldest_overdue_seconds=0, queues={}, streams={}, groups=(), counters={},
        fetch_latency_ms={}, worst=(),
    )  # fmt: skip
    family = next(f for f in metrics_of(snapshot) if f.name == "feedpipe_feeds")
    by_state = {sample.labels["state"]: sample.value for sample in family.samples}
    assert by_state == {"new": 4, "ok": 3, "erroring": 2, "failing": 1}


# --- numeric settings are bounded ---------------------------------------------------------------


def test_every_numeric_setting_has_a_finite_upper_bound() -> None:
    unbounded = [
        name
        for name, field in Settings.model_fields.items()
        if field.annotation in (int, float)
        and not any(isinstance(m, annotated_types.Le | annotated_types.Lt) for m in field.metadata)
    ]
    assert not unbounded, f"numeric settings without le=: {unbounded}"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ("FEEDPIPE_POLL_INTERVAL_SECONDS", "poll_interval_seconds"),
        ("FEEDPIPE_MAX_POLL_INTERVAL_SECONDS", "max_poll_interval_seconds"),
        ("FEEDPIPE_STREAM_MAXLEN", "stream_maxlen"),
        ("FEEDPIPE_REQUESTS_IN_FLIGHT", "requests_in_flight"),
        ("FEEDPIPE_SEEN_TTL_DAYS", "seen_ttl_days"),
        ("FEEDPIPE_DISPATCH_INTERVAL_SECONDS", "dispatch_interval_seconds"),
    ],
)
def test_absurd_numbers_are_refused(monkeypatch: pytest.MonkeyPatch, env: str, name: str) -> None:
    monkeypatch.setenv(env, "1" + "0" * 30)
    with pytest.raises(ValidationError, match=name):
        Settings()


def test_model_checks_name_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDPIPE_MIN_POLL_INTERVAL_SECONDS", "900")
    monkeypatch.setenv("FEEDPIPE_MAX_POLL_INTERVAL_SECONDS", "600")
    with pytest.raises(ValidationError) as info:
        Settings()
    (error,) = info.value.errors()
    assert error["loc"] == ()  # load_settings prints such a message without a variable prefix
    assert "FEEDPIPE_MIN_POLL_INTERVAL_SECONDS (900)" in error["msg"]
    assert "FEEDPIPE_MAX_POLL_INTERVAL_SECONDS (600)" in error["msg"]


def test_a_settings_error_never_shows_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDPIPE_REDIS_URL", "redis://:hunter2secret@h:70000/0")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "hunter2" not in str(info.value) and "70000 is out of range" in str(info.value)


# --- Redis URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost",
        "redis://127.0.0.1:6379/0",
        "redis://:p%2Fw%3F%23%40%25@redis:6379/0",
        "redis://user:pass@redis-1.internal:6380/15",
        "redis://[::1]:6379/2",
        "redis://[fe80::1%25eth0]/0",
        "redis://h/",
        "rediss://:pw@h:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem",
        "rediss://h/0?ssl_min_version=771&ssl_check_hostname=false",
        "rediss://h/0?ssl_include_verify_flags=VERIFY_X509_STRICT,VERIFY_X509_PARTIAL_CHAIN",
        "redis://h/0?socket_timeout=2.5&socket_connect_timeout=1&health_check_interval=30",
        "redis://h/0?protocol=3&retry_on_timeout=yes&client_name=feedpipe-worker",
        "redis://h?db=3",
        "unix:///run/redis/redis.sock",
        "unix://:pw@/run/redis/redis.sock?db=2",
    ],
)
def test_good_redis_urls_pass_and_redis_py_reads_them(url: str) -> None:
    assert check_redis_url(url) == url
    assert Settings(redis_url=url, broker_url=url).redis_url == url
    redis.ConnectionPool.from_url(url).make_connection()
    redis.asyncio.ConnectionPool.from_url(url).make_connection()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/0", "must start with redis://, rediss:// or unix://"),
        ("REDIS://h/0", "must start with redis://"),
        ("redis://h:70000/0", "port 70000 is out of range 1-65535"),
        ("redis://h:0/0", "port 0 is out of range"),
        ("redis://h:99999999999999999999999/0", "port of 23 digits is out of range"),
        ("redis://h:port/0", "the port must be a number"),
        ("redis://h:/0", "nothing after the host's ':'"),
        ("redis://[::1/0", "needs its closing ']'"),
        ("redis://[::g]/0", "not an IPv6 address"),
        ("redis://[::1]x/0", "only ':port' may follow"),
        ("redis://::1/0", "no host"),
        ("redis://h:1:2/0", "more than one ':'"),
        ("redis:///0", "no host"),
        ("redis://h_o st/0", "a space, a control or a non-ASCII"),
        ("redis://h/0\r\n", "a space, a control or a non-ASCII"),
        ("redis://hôst/0", "non-ASCII"),
        ("redis://h!/0", "not a valid host name"),
        ("redis://h:6379/abc", "the path '/abc' is not a database number"),
        ("redis://h/-1", "not a database number"),
        ("redis://h/1/2", "not a database number"),  # redis-py would read db 12
        ("redis://h/99999999999", "not a database number"),
        ("redis://h/0?db=1", "given twice"),
        ("redis://h/0?bogus=1", "unknown option 'bogus'"),
        ("redis://h/0?retry_on_error=x", "unknown option 'retry_on_error'"),
        ("redis://h/0?timeout=5", "unknown option 'timeout'"),  # blocking pools only
        ("redis://h/0?protocol=4", "'protocol' must be a whole number from 2 to 3"),
        ("redis://h/0?db=abc", "'db' must be a whole number"),
        ("redis://h/0?socket_timeout=nan", "'socket_timeout' must be a number of seconds"),
        ("redis://h/0?socket_timeout=-1", "'socket_timeout' must be a number of seconds"),
        ("redis://h/0?socket_keepalive=maybe", "'socket_keepalive' must be true or false"),
        ("redis://h/0?socket_timeout", "'socket_timeout' has no value"),
        ("redis://h/0?socket_timeout=1&socket_timeout=2", "given twice"),
        ("redis://h/0?ssl_cert_reqs=required", "needs a rediss:// URL"),
        ("unix:///run/redis.sock?socket_keepalive=true", "not a socket"),
        ("rediss://h/0?ssl_cert_reqs=CERT_REQUIRED", "must be one of none, optional, required"),
        ("rediss://h/0?ssl_include_verify_flags=VERIFY_NOTHING", "comma-separated list"),
        ("rediss://h/0?ssl_min_version=1", "must be one of"),
        ("redis://h/0#frag", "'#' means nothing to Redis"),
        ("unix://localhost/run/redis.sock", "takes the socket's path, no host"),
        ("unix://", "needs the socket's path"),
    ],
)
def test_bad_redis_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        check_redis_url(url)
    assert message in str(info.value)
    with pytest.raises(ValidationError, match="broker_url"):
        Settings(broker_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter/2secret@redis:6379/0",  # compose: redis://:${REDIS_PASSWORD}@redis...
        "redis://:hunter?2secret@redis:6379/0",
        "redis://:hunter#2secret@redis:6379/0",
        "redis://:hunter@2secret@redis:6379/0",
        "redis://:hunter%2secret@redis:6379/0",
        "redis://:hunter 2secret@redis:6379/0",
        "redis://:hunter2secret/@redis:6379/0",
        "redis://:hunter2secret",
        "redis://:hunter2secret/0",
        "redis://hunter2secret:@/0",
        "redis://:hunter2secret@redis:6379/0?password=x&bogus=1",
    ],
)
def test_a_password_that_breaks_the_url_gets_a_message_without_it(url: str) -> None:
    with pytest.raises(ValueError) as info:
        check_redis_url(url)
    assert "hunter" not in str(info.value) and "2secret" not in str(info.value)


def _keywords(*classes: type) -> set[str]:
    return {name for cls in classes for name in inspect.signature(cls.__init__).parameters}


def test_the_options_are_those_both_redis_py_clients_read() -> None:
    # feedpipe hands one URL to the sync client (Celery, kombu) and to the asyncio one (the
    # pipeline): an option only one of them reads is a TypeError in the other. The two lists
    # may differ (redis-py 8.2's sync client alone reads ssl_validate_ocsp*).
    accepted = set(REDIS_URL_OPTIONS)
    sync_parsers = set(redis.connection.URL_QUERY_ARGUMENT_PARSERS)
    async_parsers = set(redis.asyncio.connection.URL_QUERY_ARGUMENT_PARSERS)
    assert (sync_parsers & async_parsers) - {"retry_on_error", "timeout"} <= accepted
    assert not accepted & (sync_parsers ^ async_parsers)
    sync_classes = (redis.connection.AbstractConnection, redis.connection.SSLConnection)
    async_classes = (
        redis.asyncio.connection.AbstractConnection,
        redis.asyncio.connection.SSLConnection,
    )
    passed_through = accepted - (sync_parsers & async_parsers)
    assert passed_through <= _keywords(*sync_classes) & _keywords(*async_classes)
    tls = _keywords(sync_classes[1]) & _keywords(async_classes[1])
    assert tls & accepted == TLS_ONLY_OPTIONS
    unix = _keywords(redis.connection.UnixDomainSocketConnection, sync_classes[0]) & _keywords(
        redis.asyncio.connection.UnixDomainSocketConnection, async_classes[0]
    )
    pool_options = {"max_connections"}  # read by the connection pool, whatever the socket
    assert accepted - unix - TLS_ONLY_OPTIONS - pool_options == TCP_ONLY_OPTIONS


@given(st.text(max_size=200))
@example("redis://[::1/0")
@example("redis://h:6379/abc")
@example("unix://:a@b@/x")
def test_any_text_is_a_redis_url_or_a_value_error(text: str) -> None:
    try:
        assert check_redis_url(text) == text
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    try:  # what the check lets through, redis-py reads without a surprise
        kwargs = redis.connection.parse_url(text)
    except ValueError as exc:  # pragma: no cover - a URL the check should have refused
        pytest.fail(f"accepted {text!r}, redis-py refuses it: {exc}")
    assert "db" not in kwargs or kwargs["db"] >= 0


# A password with "$" (never in a message of ours) between its characters: any two of its
# characters shown in a message show a "$".
PASSWORD = st.text(min_size=1, max_size=20).map(lambda p: "$" + "$".join(p) + "$")
HOSTS = st.sampled_from(["redis", "127.0.0.1", "[::1]", "[::1", "h_1.internal", ""])
PORTS = st.sampled_from(["", ":6379", ":70000", ":", ":x"])
PATHS = st.sampled_from(["", "/", "/0", "/15", "/abc", "/0/1"])
QUERIES = st.sampled_from(["", "?protocol=3", "?bogus=1", "?db=x", "?socket_timeout=0", "#x"])


@given(password=PASSWORD, host=HOSTS, port=PORTS, path=PATHS, query=QUERIES)
@example(password="$p$/$w$", host="127.0.0.1", port=":1", path="/0", query="")
@example(password="$p$#$w$", host="redis", port=":6379", path="/0", query="")
@example(password="$p$?$w$", host="redis", port=":6379", path="/0", query="")
def test_no_redis_url_error_shows_the_password(
    password: str, host: str, port: str, path: str, query: str
) -> None:
    for scheme in ("redis", "rediss"):
        url = f"{scheme}://:{password}@{host}{port}{path}{query}"
        try:
            check_redis_url(url)
        except ValueError as exc:
            assert "$" not in str(exc)
        try:
            Settings(redis_url=url)
        except ValidationError as exc:
            assert "$" not in str(exc)


@given(password=st.text(min_size=1, max_size=40), db=st.integers(0, 2**31 - 1))
def test_any_password_percent_encoded_is_read_back_by_redis_py(password: str, db: int) -> None:
    url = f"redis://:{quote(password, safe='')}@redis:6379/{db}"
    assert check_redis_url(url) == url
    kwargs = redis.connection.parse_url(url)
    assert (kwargs["password"], kwargs["db"], kwargs["host"]) == (password, db, "redis")


OPTION_VALUES = st.sampled_from(["0", "1", "3", "2.5", "true", "no", "required", "x", "771"])


@given(
    scheme=st.sampled_from(["redis", "rediss", "unix"]),
    userinfo=st.sampled_from(["", "u@", ":p%2F@", "u:p@", ":@"]),
    host=st.sampled_from(["h", "127.0.0.1", "[::1]", "", "[fe80::1%25lo]"]),
    port=PORTS,
    path=st.sampled_from(["", "/", "/3", "/run/redis.sock", "/x"]),
    options=st.lists(st.tuples(st.sampled_from(sorted(REDIS_URL_OPTIONS)), OPTION_VALUES)),
)
def test_what_the_check_accepts_redis_py_connects_with(
    scheme: str, userinfo: str, host: str, port: str, path: str, options: list[tuple[str, str]]
) -> None:
    query = "&".join(f"{name}={value}" for name, value in options)
    url = f"{scheme}://{userinfo}{host}{port}{path}" + (f"?{query}" if query else "")
    try:
        check_redis_url(url)
    except ValueError:
        return
    for pool in (redis.ConnectionPool, redis.asyncio.ConnectionPool):
        connection = pool.from_url(url).make_connection()  # unknown keywords: a TypeError
        expected_db = dict(options).get("db") or (path[1:] if scheme != "unix" else "") or "0"
        assert connection.db == int(expected_db)


@pytest.mark.parametrize("env", ["FEEDPIPE_FEED_CONCURRENCY", "FEEDPIPE_ARTICLE_CONCURRENCY"])
def test_a_retired_setting_is_named_in_the_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, env: str
) -> None:
    monkeypatch.setenv(env, "20")
    with caplog.at_level("WARNING", logger="pipeline.settings"):
        Settings()
    assert f"{env} is no longer read; see FEEDPIPE_REQUESTS_IN_FLIGHT" in caplog.text
