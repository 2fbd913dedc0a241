"""Hostile and broken input, as a user (or an attacker) types it: `feedpipe` subprocesses against
the tests' own redis-server, and the compose file's start-up guards run as local processes.

Every refusal is one line on stderr that names the input (the command, the feeds file entry,
the variable), exits non-zero, shows no traceback and no password, and stores nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from tests.conftest import ROOT
from tests.integration.test_cli import cli_env, feedpipe
from tests.integration.test_compose import compose_config

SECRET = "hunter2secret"


def refused(done: subprocess.CompletedProcess[str], *names: str) -> str:
    """The one line a refusal prints, checked: non-zero, names each of ``names``, no traceback."""
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr + done.stdout
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def db_url(redis_server: Any) -> Iterator[str]:
    """A database no worker of the session consumes, emptied."""
    url = str(redis_server.url).rsplit("/", 1)[0] + "/11"
    client = sync_redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


def stored_urls(url: str) -> list[str]:
    client = sync_redis.Redis.from_url(url, decode_responses=True)
    return sorted(str(client.hget(key, "url")) for key in client.scan_iter("feedpipe:feed:*"))


# --- feeds add ---------------------------------------------------------------------------------


def test_feeds_add_refuses_a_url_that_would_forge_lines(db_url: str) -> None:
    env = cli_env(db_url)
    forged = "https://a.example/rss\r\nhttps://evil.example/  [ok]\n  last poll never"
    for discover in ("--no-discover", "--discover"):
        line = refused(
            feedpipe("feeds", "add", forged, discover, env=env, check=False), "feeds add"
        )
        assert "\\x0d\\x0a" in line and "control characters" in line
    tab = refused(feedpipe("feeds", "add", "https://a.example/\trss", env=env, check=False))
    assert "\\x09" in tab
    assert stored_urls(db_url) == []
    assert feedpipe("feeds", "ls", env=env).stdout == "0 feed(s), 0 failing\n"


def test_feeds_add_applies_the_ssrf_guard_unless_the_settings_open_it(db_url: str) -> None:
    private = "http://10.20.0.7:8080/rss"
    line = refused(
        feedpipe("feeds", "add", private, "--no-discover", env=cli_env(db_url), check=False),
        "feeds add",
        "private",
        "FEEDPIPE_ALLOW_PRIVATE_NETWORKS",
    )
    assert private in line
    with_credentials = f"http://reader:{SECRET}@127.0.0.1:1/rss"
    line = refused(
        feedpipe("feeds", "add", with_credentials, env=cli_env(db_url), check=False), "loopback"
    )
    assert "http://***@127.0.0.1:1/rss" in line
    assert stored_urls(db_url) == []

    opened = cli_env(db_url, FEEDPIPE_ALLOW_PRIVATE_NETWORKS="true")
    assert (
        f"added {private}" in feedpipe("feeds", "add", private, "--no-discover", env=opened).stdout
    )
    listed = cli_env(db_url, FEEDPIPE_ALLOWED_NETWORKS="10.30.0.0/16")
    feedpipe("feeds", "add", "http://10.30.1.1/rss", "--no-discover", env=listed)
    assert stored_urls(db_url) == ["http://10.20.0.7:8080/rss", "http://10.30.1.1/rss"]


def test_feeds_add_refuses_overlong_urls_and_absurd_intervals(db_url: str) -> None:
    env = cli_env(db_url)
    long_url = "https://a.example/" + "x" * 5000
    line = refused(feedpipe("feeds", "add", long_url, "--no-discover", env=env, check=False))
    assert "5018 characters long, more than 2048" in line and len(line) < 500
    huge = str(10**30)
    line = refused(
        feedpipe(
            "feeds", "add", "https://a.example/rss", "--no-discover", "--interval", huge,
            env=env, check=False,
        ),
        "feeds add: interval must be from 120 to 86400 seconds",
        "FEEDPIPE_MAX_POLL_INTERVAL_SECONDS",
    )  # fmt: skip
    assert "31 digits" in line
    for bad in ("0", "-5", "119"):
        args = ("feeds", "add", "https://a.example/rss", "--no-discover", "--interval", bad)
        refused(feedpipe(*args, env=env, check=False), "interval must be from 120")
    assert stored_urls(db_url) == []
    # The bounds are the settings'.
    lowered = cli_env(db_url, FEEDPIPE_MIN_POLL_INTERVAL_SECONDS="30")
    args = ("feeds", "add", "https://a.example/rss", "--no-discover", "--interval", "60")
    feedpipe(*args, env=lowered)
    assert stored_urls(db_url) == ["https://a.example/rss"]


# --- feeds import and run --feeds --------------------------------------------------------------


def test_feeds_import_names_the_bad_entry_and_imports_nothing(db_url: str, tmp_path: Path) -> None:
    env = cli_env(db_url)
    cases = {
        "feeds:\n  - https://a.example/rss\n  - https://b.example/rss\n"
        '  - "https://c.example/rss\\r\\nforged"\n': ("feeds[2]", "\\x0d\\x0a"),
        "feeds:\n  - https://a.example/rss\n  - url: http://192.168.0.10/rss\n": (
            "feeds[1]",
            "private",
        ),
        "feeds:\n  - url: https://a.example/rss\n    interval: 1000000000000000000000000000000\n": (
            "feeds[0]: interval must be from 120 to 86400",
            "31 digits",
        ),
        f"feeds:\n  - url: https://u:{SECRET}@a.example/{'x' * 3000}\n": (
            "feeds[0]",
            "more than 2048",
        ),
    }
    for number, (body, expected) in enumerate(cases.items()):
        path = tmp_path / f"feeds{number}.yaml"
        path.write_text(body)
        line = refused(feedpipe("feeds", "import", str(path), env=env, check=False), *expected)
        assert line.startswith(f"Error: {path}: ")
    assert stored_urls(db_url) == []

    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline text="A" '
        f'xmlUrl="https://u:{SECRET}@a.example/rss&#13;&#10;x"/></body></opml>'
    )
    line = refused(feedpipe("feeds", "import", str(opml), env=env, check=False), "subs.opml")
    assert "https://***@a.example/rss\\x0d\\x0ax" in line

    opened = tmp_path / "intranet.yaml"
    opened.write_text("feeds:\n  - url: http://192.168.0.10/rss\n    interval: 300\n")
    refused(feedpipe("feeds", "import", str(opened), env=env, check=False), "feeds[0]", "private")
    allowed = cli_env(db_url, FEEDPIPE_ALLOWED_NETWORKS="192.168.0.0/24")
    assert "1 new" in feedpipe("feeds", "import", str(opened), env=allowed).stdout
    assert stored_urls(db_url) == ["http://192.168.0.10/rss"]


def test_run_refuses_a_bad_feeds_file_before_starting_anything(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: http://169.254.169.254/latest/meta-data/\n")
    env = cli_env(None, FEEDPIPE_DATA_DIR=str(tmp_path / "data"))
    done = feedpipe("run", "--feeds", str(path), env=env, check=False)
    refused(done, "feeds.yaml: feeds[0]", "link-local")
    assert not (tmp_path / "data" / "redis").exists()  # no redis-server was started


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"FEEDPIPE_REDIS_URL": "redis://127.0.0.1:70000/0"}, ("port 70000 is out of range",)),
        ({"FEEDPIPE_REDIS_URL": "redis://[::1/0"}, ("closing ']'",)),
        ({"FEEDPIPE_REDIS_URL": "redis://h:6379/abc"}, ("'/abc' is not a database number",)),
        ({"FEEDPIPE_REDIS_URL": "redis://h/0?bogus=1"}, ("unknown option 'bogus'",)),
        ({"FEEDPIPE_REDIS_URL": f"redis://:{SECRET}@h/0?protocol=9"}, ("'protocol'",)),
        ({"FEEDPIPE_REDIS_URL": f"redis://:{SECRET[:4]}/{SECRET[4:]}@127.0.0.1:1/0"}, ("%2F",)),
        ({"FEEDPIPE_REDIS_URL": f"redis://:{SECRET[:4]}#{SECRET[4:]}@redis:6379/0"}, ("%23",)),
        ({"FEEDPIPE_REDIS_URL": f"redis://:{SECRET[:4]}@{SECRET[4:]}@redis/0"}, ("%40",)),
        ({"FEEDPIPE_BROKER_URL": "redis://h:0/0"}, ("FEEDPIPE_BROKER_URL: port 0",)),
        ({"FEEDPIPE_STREAM_MAXLEN": str(10**30)}, ("FEEDPIPE_STREAM_MAXLEN",)),
        (
            {
                "FEEDPIPE_MIN_POLL_INTERVAL_SECONDS": "900",
                "FEEDPIPE_MAX_POLL_INTERVAL_SECONDS": "600",
            },
            ("settings: FEEDPIPE_MIN_POLL_INTERVAL_SECONDS (900) must not exceed",),
        ),
        (
            {"FEEDPIPE_POLL_BUDGET_SECONDS": "80"},
            ("settings: FEEDPIPE_POLL_BUDGET_SECONDS + FEEDPIPE_CONNECT_TIMEOUT_SECONDS",),
        ),
    ],
)
def test_bad_settings_are_one_line_naming_the_variable(
    env: dict[str, str], names: tuple[str, ...]
) -> None:
    variable = next(iter(env))
    done = feedpipe("feeds", "ls", env=cli_env(None) | env, check=False)
    line = refused(done, "invalid settings", *names)
    assert "FEEDPIPE_:" not in line and "Value error" not in line
    if variable.endswith("_URL"):
        assert f"{variable}: " in line
    assert SECRET[:4] not in line.replace("FEEDPIPE_", "")  # no fragment of a password


def test_a_percent_encoded_password_is_accepted_and_never_shown() -> None:
    env = cli_env("redis://:p%2Fw%23hunter2secret@127.0.0.1:1/0")
    line = refused(feedpipe("feeds", "ls", env=env, check=False), "cannot reach Redis")
    assert "redis://***@127.0.0.1:1/0" in line
    assert "p%2Fw" not in line and "p/w" not in line


# --- the compose file's start-up guards -----------------------------------------------------------


def compose_services(tmp: Path, **variables: str) -> dict[str, Any]:
    """`docker-compose config` with an env file of ``variables``: must succeed whatever the
    passwords (compose cannot check them; the services do at start)."""
    return dict(compose_config(tmp, variables)["services"])


def fake_bin(tmp: Path, *names: str) -> str:
    """A PATH whose ``names`` print their arguments (the image's entrypoint, celery)."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        script = bin_dir / name
        script.write_text('#!/bin/sh\necho "started: $0 $*"\n')
        script.chmod(0o755)
    return f"{bin_dir}:{os.environ.get('PATH', '')}"


def start_redis(
    service: dict[str, Any], password: str, path: str
) -> subprocess.CompletedProcess[str]:
    entrypoint = [arg.replace("$$", "$") for arg in service["entrypoint"]]
    return subprocess.run(
        [*entrypoint, *service["command"]], env={"PATH": path, "REDIS_PASSWORD": password},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def start_flower(service: dict[str, Any], path: str) -> subprocess.CompletedProcess[str]:
    command = service["command"]
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]],
        env={"PATH": path, "FLOWER_BASIC_AUTH": service["environment"]["FLOWER_BASIC_AUTH"]},
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("password", "refusal"),
    [
        ("change-me", "example password"),
        ("pa/ss", "only letters, digits"),
        ("pa#ss", "only letters, digits"),
        ("pa?ss", "only letters, digits"),
        ("pa@ss", "only letters, digits"),
        ("pa%2Fss", "only letters, digits"),
        ("pa ss", "only letters, digits"),
        ("pässword", "only letters, digits"),
    ],
)
def test_compose_redis_refuses_a_password_the_url_cannot_carry(
    tmp_path: Path, password: str, refusal: str
) -> None:
    services = compose_services(
        tmp_path, REDIS_PASSWORD=password, FLOWER_PASSWORD="flower-pw-of-mine"
    )
    done = start_redis(services["redis"], password, fake_bin(tmp_path, "docker-entrypoint.sh"))
    assert done.returncode == 1 and "started" not in done.stdout
    assert "REDIS_PASSWORD" in done.stderr and refusal in done.stderr
    assert password not in done.stderr


def test_compose_redis_starts_with_a_url_safe_password(tmp_path: Path) -> None:
    password = "0123abcDEF-_.~xyz"
    services = compose_services(tmp_path, REDIS_PASSWORD=password, FLOWER_PASSWORD="mine")
    assert services["worker-fetch"]["environment"]["FEEDPIPE_REDIS_URL"] == (
        f"redis://:{password}@redis:6379/0"
    )
    done = start_redis(services["redis"], password, fake_bin(tmp_path, "docker-entrypoint.sh"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("started: ") and " redis-server --appendonly yes" in done.stdout
    assert done.stdout.rstrip().endswith(f"--requirepass {password}")


def test_compose_flower_refuses_the_example_password(tmp_path: Path) -> None:
    path = fake_bin(tmp_path, "celery")
    for password in ("change-me", "a,b"):
        services = compose_services(tmp_path, REDIS_PASSWORD="redis-pw", FLOWER_PASSWORD=password)
        done = start_flower(services["flower"], path)
        assert done.returncode == 1 and "started" not in done.stdout
        assert "FLOWER_PASSWORD" in done.stderr and "set your own in .env" in done.stderr
    services = compose_services(tmp_path, REDIS_PASSWORD="redis-pw", FLOWER_PASSWORD="f1ower-pw")
    done = start_flower(services["flower"], path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("started: ") and "-A workers.app flower" in done.stdout


def test_the_example_env_file_still_passes_compose_config() -> None:
    done = subprocess.run(
        ["docker-compose", "--env-file", ".env.example", "-f", "docker-compose.yml", "config",
         "-q"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_settings_refuse_the_compose_url_of_an_unsafe_password(tmp_path: Path) -> None:
    """Outside compose's guard (a hand-made .env elsewhere), the same URL still fails clearly."""
    services = compose_services(tmp_path, REDIS_PASSWORD=f"{SECRET}/x", FLOWER_PASSWORD="mine")
    url = services["feeds-import"]["environment"]["FEEDPIPE_REDIS_URL"]
    done = feedpipe("feeds", "ls", env=cli_env(url), check=False)
    refused(done, "FEEDPIPE_REDIS_URL", "must be percent-encoded")
