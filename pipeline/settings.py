"""The one settings object. Built once per process (``Settings()``) and passed in."""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, unquote_plus, urlsplit

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.errors import ConfigError
from pipeline.page_store import DEFAULT_MAX_PAGE_BYTES

# A poll task must finish its work within this (the Celery soft limit minus a margin).
POLL_WORK_LIMIT_SECONDS = 90

DAY = 86_400
# Settings that are no longer read, with what replaced them: a deployment that still sets one
# is told once, in the log, instead of silently getting the new default.
_IN_FLIGHT = (
    "FEEDPIPE_REQUESTS_IN_FLIGHT (requests in flight per fetch process; waiting for a host's "
    "turn no longer counts)"
)
RETIRED_SETTINGS = {
    "FEEDPIPE_FEED_CONCURRENCY": _IN_FLIGHT,
    "FEEDPIPE_ARTICLE_CONCURRENCY": _IN_FLIGHT,
}
log = logging.getLogger(__name__)
# Ceiling of every interval, backoff, delay and TTL setting in seconds (and of a feed's own
# `interval`): a feed polled less than monthly is as good as dead, and a finite bound keeps
# every `now + interval` a real timestamp (an unbounded one overflowed float arithmetic).
MAX_INTERVAL_SECONDS = 30 * DAY
# Ceiling of counts of things started or held at once (processes, requests in flight, feeds
# per task): far above what one machine runs, low enough that a typo fails here, not later.
MAX_COUNT = 10_000
# Largest response body accepted: bodies are held in memory (and in Redis for pages).
MAX_BODY_BYTES = 1024 * 1024 * 1024


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("feedpipe"))


class Settings(BaseSettings):
    """Every knob is a ``FEEDPIPE_<NAME>`` environment variable (or a line in ``.env``)."""

    # hide_input_in_errors: a ValidationError (printed whole by a worker that fails to start)
    # must never show a value, since FEEDPIPE_REDIS_URL carries the Redis password.
    model_config = SettingsConfigDict(
        env_prefix="FEEDPIPE_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    # --- Redis ---------------------------------------------------------------------------
    redis_url: str | None = Field(
        default=None,
        description="Redis for feeds, dedupe and output streams. Unset: `feedpipe run` starts "
        "a local redis-server for you.",
    )
    broker_url: str | None = Field(
        default=None, description="Celery broker URL; defaults to redis_url."
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded redis-server and beat keep their files.",
    )

    # --- Output --------------------------------------------------------------------------
    output_stream: str = "feedpipe:items"
    duplicates_stream: str = "feedpipe:duplicates"
    # A billion entries is terabytes of Redis memory: anything above is a typo.
    stream_maxlen: int = Field(default=100_000, ge=100, le=1_000_000_000)

    # --- Scheduling (docs/fetching.md) ---------------------------------------------------
    # Interval of a feed whose rate of new entries is not known yet.
    poll_interval_seconds: int = Field(default=600, ge=1, le=MAX_INTERVAL_SECONDS)
    min_poll_interval_seconds: int = Field(default=120, ge=1, le=MAX_INTERVAL_SECONDS)
    max_poll_interval_seconds: int = Field(default=86_400, ge=1, le=MAX_INTERVAL_SECONDS)
    error_backoff_max_seconds: int = Field(default=86_400, ge=1, le=MAX_INTERVAL_SECONDS)
    retry_after_max_seconds: int = Field(default=86_400, ge=0, le=MAX_INTERVAL_SECONDS)
    # Past a thousand failed polls in a row, "failing" would never show.
    failing_after_errors: int = Field(default=5, ge=1, le=1000)
    jitter_fraction: float = Field(default=0.1, ge=0, le=0.5)
    unconditional_fetch_seconds: int = Field(default=86_400, ge=0, le=MAX_INTERVAL_SECONDS)
    # Past a thousand polls in a row, a permanent redirect would never be followed.
    permanent_redirect_after: int = Field(default=5, ge=1, le=1000)
    # Due feeds wait at most this long to be dispatched (freshness: docs/performance.md);
    # an hour is already far beyond any useful freshness.
    dispatch_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    # Feeds per poll task, at most (due feeds are split over at least as many tasks as the
    # fetch workers run at once: FETCH_CONCURRENCY x FETCH_PROCESSES). A task polls all its
    # feeds at once: waiting on a host costs nothing.
    dispatch_batch_size: int = Field(default=250, ge=1, le=5000)
    # Feeds claimed per dispatch: a million is more than the scale bench goes to.
    dispatch_max_feeds: int = Field(default=5000, ge=1, le=1_000_000)
    # A claimed feed whose poll never reported back is due again after this (polls end
    # within minutes: a day is generous).
    poll_lease_seconds: int = Field(default=300, ge=10, le=DAY)
    # A task delivered but not acknowledged this long (its worker was killed outright) is
    # delivered again. Must exceed the longest task (poll: 120 s) plus retry countdowns (300 s),
    # or a task still running is run twice (harmless, everything is idempotent, but wasteful).
    # Set in all three places Celery reads it (celery#7651). Above a week, lost tasks are lost.
    visibility_timeout_seconds: int = Field(default=1800, ge=10, le=7 * DAY)
    # An extract job queued this long ago (or last started this long ago) that the broker
    # holds nowhere was lost in transit and is sent again (pipeline/redeliver.py); its page
    # waits in Redis for FEEDPIPE_HTML_TTL_SECONDS at most.
    redeliver_after_seconds: int = Field(default=300, ge=10, le=MAX_INTERVAL_SECONDS)

    # --- Fetching ------------------------------------------------------------------------
    user_agent: str = "feedpipe/0.1 (+https://github.com/feedpipe/feedpipe)"
    # Each timeout alone must fit the poll task's limit (their sum is checked below too).
    connect_timeout_seconds: float = Field(default=10.0, gt=0, le=POLL_WORK_LIMIT_SECONDS)
    read_timeout_seconds: float = Field(default=30.0, gt=0, le=POLL_WORK_LIMIT_SECONDS)
    max_redirects: int = Field(default=5, ge=0, le=20)
    # Article pages are fetched only where their site's robots.txt allows feedpipe's product
    # token (pipeline/robots.py); feeds are always fetched.
    obey_robots_txt: bool = True
    # Politeness per host, shared by every worker through Redis.
    host_max_in_flight: int = Field(default=2, ge=1, le=MAX_COUNT)
    host_min_gap_seconds: float = Field(default=1.0, ge=0, le=3600)
    # How long one poll task may spend (waiting for hosts included) before it leaves the
    # rest for the next poll; plus one request's timeouts it must fit the poll time limit.
    poll_budget_seconds: float = Field(default=45.0, gt=0, le=POLL_WORK_LIMIT_SECONDS)
    # SSRF guard: loopback, private, link-local, multicast and reserved addresses are refused
    # unless allowed here (the demo and the tests allow them; intranet feeds list a CIDR).
    allow_private_networks: bool = False
    allowed_networks: Annotated[tuple[str, ...], NoDecode] = ()
    max_feed_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=MAX_BODY_BYTES)
    max_page_bytes: int = Field(default=DEFAULT_MAX_PAGE_BYTES, ge=1024, le=MAX_BODY_BYTES)
    max_entries_per_poll: int = Field(default=200, ge=1, le=MAX_COUNT)
    # Requests in flight at once in one fetch process (feeds and pages together). A request
    # waiting for its host's turn (politeness) does not count: waiting is free.
    requests_in_flight: int = Field(default=64, ge=1, le=MAX_COUNT)
    html_ttl_seconds: int = Field(default=86_400, ge=60, le=MAX_INTERVAL_SECONDS)
    # > poll hard time limit (120 s), < poll lease: a re-dispatched poll can retake the entries.
    claim_ttl_seconds: int = Field(default=240, ge=30, le=DAY)
    # Ten years: Redis memory, not the bound, limits how long marks can be kept.
    seen_ttl_days: int = Field(default=30, ge=1, le=3650)

    # --- Dedupe ---------------------------------------------------------------------------
    dedupe_window_days: int = Field(default=7, ge=1, le=90)

    # --- Extraction ----------------------------------------------------------------------
    # A million characters is a book; a higher floor would replace every page by its feed.
    min_text_chars: int = Field(default=250, ge=0, le=1_000_000)
    # An article whose extraction crashed its process, hit the hard time limit or raised this
    # many times goes to the dead-letter stream instead of being tried forever.
    extract_max_attempts: int = Field(default=3, ge=1, le=100)
    # Hard limit of one extract task; the soft limit (feed text instead) is 3/4 of it. An
    # hour of CPU for one page is a runaway, not an extraction.
    extract_time_limit_seconds: int = Field(default=60, ge=4, le=3600)

    # --- Monitoring ----------------------------------------------------------------------
    metrics_host: str = "127.0.0.1"  # `feedpipe exporter` listens here (compose: 0.0.0.0)
    metrics_port: int = Field(default=9464, ge=1, le=65535)

    # --- WebSub (pipeline/websub.py) -----------------------------------------------------
    # The public base URL hubs reach `feedpipe websub` at (https://feeds.example.org; a reverse
    # proxy in front of it). Unset: feedpipe never subscribes and only polls.
    websub_base_url: str | None = None
    websub_host: str = "127.0.0.1"  # `feedpipe websub` listens here (compose: 0.0.0.0)
    websub_port: int = Field(default=8480, ge=1, le=65535)
    # The lease asked of hubs (they decide); renewed at 80 % of what they grant.
    websub_lease_seconds: int = Field(default=10 * 86_400, ge=300, le=365 * 86_400)
    # A subscribed feed is still polled, this rarely at most often: a net for lost pushes.
    websub_poll_seconds: int = Field(default=3600, ge=60, le=7 * 86_400)
    # How often due subscriptions are (re)requested (the beat's websub-maintain task).
    websub_maintain_seconds: float = Field(default=30.0, gt=0, le=3600)

    # --- Workers (used by `feedpipe run` and the compose file) ---------------------------
    # Poll tasks at once in a fetch worker (threads sharing one event loop; due feeds are
    # split over at least this many tasks per fetch process). Extract: processes, 1024 is
    # beyond any machine.
    fetch_concurrency: int = Field(default=8, ge=1, le=1024)
    # Fetch workers `feedpipe run` starts (each one process, at most one core busy).
    fetch_processes: int = Field(default=2, ge=1, le=64)
    extract_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1, le=1024)
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"expected one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        return check_redis_url(value) if value else None

    @field_validator("websub_base_url")
    @classmethod
    def _check_websub_base_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError("expected the http(s) base URL hubs reach `feedpipe websub` at")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials (hubs would see them)")
        return value.rstrip("/")

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):  # FEEDPIPE_ALLOWED_NETWORKS="10.1.0.0/16, 192.168.5.0/24"
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("allowed_networks")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a CIDR network: {network!r}") from exc
        return value

    # Model-level checks have no single field: their messages name every variable involved.
    @model_validator(mode="after")
    def _check_poll_budget(self) -> Settings:
        worst = self.poll_budget_seconds + self.connect_timeout_seconds + self.read_timeout_seconds
        if worst > POLL_WORK_LIMIT_SECONDS:
            raise ValueError(
                "FEEDPIPE_POLL_BUDGET_SECONDS + FEEDPIPE_CONNECT_TIMEOUT_SECONDS + "
                f"FEEDPIPE_READ_TIMEOUT_SECONDS must not exceed {POLL_WORK_LIMIT_SECONDS} s "
                f"(the poll task's time limit); got {worst:g} s"
            )
        return self

    @model_validator(mode="after")
    def _warn_retired(self) -> Settings:
        for name in sorted(RETIRED_SETTINGS.keys() & os.environ.keys()):
            log.warning("%s is no longer read; see %s", name, RETIRED_SETTINGS[name])
        return self

    @model_validator(mode="after")
    def _check_intervals(self) -> Settings:
        if self.min_poll_interval_seconds > self.max_poll_interval_seconds:
            raise ValueError(
                f"FEEDPIPE_MIN_POLL_INTERVAL_SECONDS ({self.min_poll_interval_seconds}) must "
                f"not exceed FEEDPIPE_MAX_POLL_INTERVAL_SECONDS ({self.max_poll_interval_seconds})"
            )
        return self

    def require_redis_url(self) -> str:
        """The configured Redis URL, or a clear error naming the setting."""
        if not self.redis_url:
            raise ConfigError(
                "FEEDPIPE_REDIS_URL is not set (only `feedpipe run` and `feedpipe demo` "
                "start a Redis of their own)"
            )
        return self.redis_url

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.require_redis_url()


# --- Redis URLs ------------------------------------------------------------------------------
# Checked in full here, so that what redis-py (and kombu, for the broker) would misread or
# trip over later with a traceback is one line naming the setting now. The messages quote no
# part of the URL that could hold the password: only option names, numbers and the path.

REDIS_SCHEMES = ("redis", "rediss", "unix")
# The levels Python's logging and Celery's -l both accept.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The highest database index Redis can be configured with (`databases` is an int).
MAX_REDIS_DB = 2**31 - 1

# RFC 3986 userinfo: unreserved / sub-delims / ":" / %XX. Anything else in a user name or
# password (/ ? # @ %, spaces, non-ASCII) must be percent-encoded, or the URL is misread.
_USERINFO = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*")
_HOST_NAME = re.compile(r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})+")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]*")
PERCENT_ENCODE = (
    "the user name and password must be percent-encoded ('/' as %2F, '?' as %3F, '#' as %23, "
    "'@' as %40, '%' as %25; letters, digits and -._~ need nothing)"
)


def _digits(value: str, low: int, high: int) -> int | None:
    """``value`` as an int within [low, high] when it is plain ASCII digits, else None."""
    if not value.isascii() or not value.isdigit() or len(value) > len(str(high)):
        return None
    number = int(value)
    return number if low <= number <= high else None


def _int_option(low: int, high: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        ok = _digits(value, low, high) is not None
        return None if ok else f"must be a whole number from {low} to {high}"

    return check


def _seconds_option(value: str) -> str | None:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    ok = math.isfinite(seconds) and 0 < seconds <= DAY
    return None if ok else f"must be a number of seconds above 0, at most {DAY}"


_TRUE = frozenset({"1", "true", "yes", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "n", "f"})  # redis-py's FALSE_STRINGS, lower-cased


def _bool_option(value: str) -> str | None:
    return None if value.lower() in _TRUE | _FALSE else "must be true or false"


def _choice_option(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _verify_flags_option(value: str) -> str | None:
    names = [flag.strip() for flag in value.strip("[]").split(",")]
    known = [name for name in dir(ssl.VerifyFlags) if name.startswith("VERIFY_")]
    if all(name in known for name in names):
        return None
    return f"must be a comma-separated list of {', '.join(known)}"


def _text_option(value: str) -> str | None:
    return None if value.isprintable() else "must be printable text"


_TLS_VERSIONS = sorted(str(v.value) for v in ssl.TLSVersion if v.value >= 0)

# The query options both redis-py clients read from a URL (URL_QUERY_ARGUMENT_PARSERS of
# redis.connection and of redis.asyncio.connection), plus the string keywords both clients'
# connection classes take, which redis-py passes through as they are. feedpipe gives one URL
# to both clients (Celery and kombu use the sync one), so an option only one of them reads
# (ssl_validate_ocsp*, sync only) would be a TypeError in the other. Left out: retry_on_error
# (it takes exception classes, which a URL cannot name), timeout (read by
# BlockingConnectionPool only: every other client feedpipe builds from the URL would fail
# with a TypeError), and lib_name/lib_version (deprecated by redis-py).
# tests/unit/test_config.py checks this list against the installed redis.
REDIS_URL_OPTIONS: Mapping[str, Callable[[str], str | None]] = {
    "db": _int_option(0, MAX_REDIS_DB),
    "socket_timeout": _seconds_option,
    "socket_connect_timeout": _seconds_option,
    "socket_read_size": _int_option(1, 2**31 - 1),
    "socket_keepalive": _bool_option,
    "retry_on_timeout": _bool_option,
    "max_connections": _int_option(1, 1_000_000),
    "health_check_interval": _int_option(0, DAY),
    "protocol": _int_option(2, 3),
    "legacy_responses": _bool_option,
    "client_name": _text_option,
    "username": _text_option,
    "password": _text_option,
    "ssl_check_hostname": _bool_option,
    "ssl_include_verify_flags": _verify_flags_option,
    "ssl_exclude_verify_flags": _verify_flags_option,
    "ssl_min_version": _choice_option(*_TLS_VERSIONS),
    "ssl_cert_reqs": _choice_option("none", "optional", "required"),
    "ssl_ca_certs": _text_option,
    "ssl_ca_path": _text_option,
    "ssl_certfile": _text_option,
    "ssl_keyfile": _text_option,
    "ssl_password": _text_option,
    "ssl_ciphers": _text_option,
}
# redis-py hands these to the TLS connection only: on redis:// they are a TypeError.
TLS_ONLY_OPTIONS = frozenset(name for name in REDIS_URL_OPTIONS if name.startswith("ssl_"))
# ... and these to a TCP connection only: on unix:// they are a TypeError.
TCP_ONLY_OPTIONS = frozenset({"socket_keepalive"})


def check_redis_url(url: str) -> str:
    """``url`` if redis-py (and kombu) read it as written; else ValueError saying what is wrong.

    redis://[[user]:password@]host[:port][/db][?option=value&...], rediss:// the same over
    TLS, unix://[[user]:password@]/path/to/socket[?db=N&...]. A message never shows the
    user name or password, whatever the URL looks like.
    """
    if not _PRINTABLE_ASCII.fullmatch(url):
        raise ValueError(
            "holds a space, a control or a non-ASCII character; percent-encode it (in the "
            "password too)"
        )
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in REDIS_SCHEMES:
        raise ValueError("must start with redis://, rediss:// or unix://")
    authority, path, query, fragment = _split(rest)
    if "@" in path + (query or "") + (fragment or ""):
        raise ValueError(f"'@' after the host: {PERCENT_ENCODE}")
    if fragment is not None:
        raise ValueError(f"'#' means nothing to Redis: {PERCENT_ENCODE}")
    userinfo, at, hostport = authority.rpartition("@")
    if at and not _USERINFO.fullmatch(userinfo):
        raise ValueError(PERCENT_ENCODE)
    if scheme == "unix":
        if hostport:
            raise ValueError(
                "a unix:// URL takes the socket's path, no host: unix:///run/redis/redis.sock "
                f"(with a password: unix://:password@/run/redis/redis.sock); {PERCENT_ENCODE}"
            )
        if path in ("", "/"):
            raise ValueError("a unix:// URL needs the socket's path: unix:///run/redis/redis.sock")
        path_db = None
    else:
        _check_host_and_port(hostport)
        path_db = _path_db(path)
    options = _query_options(query or "", scheme)
    if path_db is not None and "db" in options:
        raise ValueError("the database is given twice, as the path and as ?db=")
    return url


def _split(rest: str) -> tuple[str, str, str | None, str | None]:
    """authority, path, query (None: no '?'), fragment (None: no '#') of what follows '://'."""
    rest, hash_sign, fragment = rest.partition("#")
    rest, question, query = rest.partition("?")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    return authority, path, query if question else None, fragment if hash_sign else None


def _check_host_and_port(hostport: str) -> None:
    if hostport.startswith("["):
        inside, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise ValueError("an IPv6 host needs its closing ']': redis://[::1]:6379/0")
        try:
            ipaddress.IPv6Address(unquote(inside))
        except ValueError:
            raise ValueError("the host in [...] is not an IPv6 address") from None
        if after and not after.startswith(":"):
            raise ValueError("only ':port' may follow an IPv6 host's ']'")
        port = after[1:] if after else None
    else:
        host, colon, port_text = hostport.partition(":")
        if not host:
            raise ValueError(
                f"no host (redis://host:6379/0, or with a password redis://:pw@host:6379/0); "
                f"{PERCENT_ENCODE}"
            )
        if ":" in port_text:
            raise ValueError("more than one ':' after the host (write an IPv6 host in [...])")
        if not _HOST_NAME.fullmatch(host):
            raise ValueError("the host is not a valid host name or IPv4 address")
        port = port_text if colon else None
    if port is None:
        return
    if not port:
        raise ValueError("nothing after the host's ':' (give the port, or leave out the ':')")
    if not port.isdigit():
        raise ValueError(f"the port must be a number from 1 to 65535; {PERCENT_ENCODE}")
    if _digits(port, 1, 65535) is None:
        shown = port if len(port) <= 10 else f"of {len(port)} digits"
        raise ValueError(f"port {shown} is out of range 1-65535")


def _path_db(path: str) -> int | None:
    """The database a redis:// path selects (None: no path), or ValueError."""
    if path in ("", "/"):
        return None
    db = _digits(path[1:], 0, MAX_REDIS_DB)
    if db is None:
        shown = path if len(path) <= 30 else path[:30] + "..."
        raise ValueError(
            f"the path {shown!r} is not a database number from 0 to {MAX_REDIS_DB} "
            "(redis://host:6379/0 selects database 0)"
        )
    return db


def _query_options(query: str, scheme: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for field in query.split("&"):
        if not field:
            continue
        raw_name, equals, raw_value = field.partition("=")
        name, value = unquote_plus(raw_name), unquote_plus(raw_value)
        if name not in REDIS_URL_OPTIONS:
            shown = name if len(name) <= 40 else name[:40] + "..."
            raise ValueError(
                f"unknown option {shown!r} (redis-py reads {', '.join(REDIS_URL_OPTIONS)})"
            )
        if name in options:
            raise ValueError(f"option {name!r} is given twice")
        if name in TLS_ONLY_OPTIONS and scheme != "rediss":
            raise ValueError(f"option {name!r} needs a rediss:// URL")
        if name in TCP_ONLY_OPTIONS and scheme == "unix":
            raise ValueError(f"option {name!r} needs a redis:// or rediss:// URL, not a socket")
        if not equals or not value:
            raise ValueError(f"option {name!r} has no value")
        problem = REDIS_URL_OPTIONS[name](value)
        if problem:
            raise ValueError(f"option {name!r} {problem}")
        options[name] = value
    return options
