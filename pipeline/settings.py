"""The one settings object. Built once per process (``Settings()``) and passed in."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pipeline.errors import ConfigError

# A poll task must finish its work within this (the Celery soft limit minus a margin).
POLL_WORK_LIMIT_SECONDS = 90


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("feedpipe"))


class Settings(BaseSettings):
    """Every knob is a ``FEEDPIPE_<NAME>`` environment variable (or a line in ``.env``)."""

    model_config = SettingsConfigDict(
        env_prefix="FEEDPIPE_", env_file=".env", extra="ignore", frozen=True
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
    stream_maxlen: int = Field(default=100_000, ge=100)

    # --- Scheduling (docs/fetching.md) ---------------------------------------------------
    # Interval of a feed whose rate of new entries is not known yet.
    poll_interval_seconds: int = Field(default=600, ge=1)
    min_poll_interval_seconds: int = Field(default=120, ge=1)
    max_poll_interval_seconds: int = Field(default=86_400, ge=1)
    error_backoff_max_seconds: int = Field(default=86_400, ge=1)
    retry_after_max_seconds: int = Field(default=86_400, ge=0)
    failing_after_errors: int = Field(default=5, ge=1)
    jitter_fraction: float = Field(default=0.1, ge=0, le=0.5)
    unconditional_fetch_seconds: int = Field(default=86_400, ge=0)
    permanent_redirect_after: int = Field(default=5, ge=1)
    # Due feeds wait at most this long to be dispatched (freshness: docs/performance.md).
    dispatch_interval_seconds: float = Field(default=1.0, gt=0)
    dispatch_batch_size: int = Field(default=50, ge=1, le=500)
    dispatch_max_feeds: int = Field(default=5000, ge=1)
    poll_lease_seconds: int = Field(default=300, ge=10)
    # A task delivered but not acknowledged this long (its worker was killed outright) is
    # delivered again. Must exceed the longest task (poll: 120 s) plus retry countdowns (300 s),
    # or a task still running is run twice (harmless, everything is idempotent, but wasteful).
    # Set in all three places Celery reads it (celery#7651).
    visibility_timeout_seconds: int = Field(default=1800, ge=10)
    # An extract job queued this long ago (or last started this long ago) that the broker
    # holds nowhere was lost in transit and is sent again (pipeline/redeliver.py).
    redeliver_after_seconds: int = Field(default=300, ge=10)

    # --- Fetching ------------------------------------------------------------------------
    user_agent: str = "feedpipe/0.1 (+https://github.com/feedpipe/feedpipe)"
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=20)
    # Politeness per host, shared by every worker through Redis.
    host_max_in_flight: int = Field(default=2, ge=1)
    host_min_gap_seconds: float = Field(default=1.0, ge=0)
    # How long one poll task may spend (waiting for hosts included) before it leaves the
    # rest for the next poll; plus one request's timeouts it must fit the poll time limit.
    poll_budget_seconds: float = Field(default=45.0, gt=0)
    # SSRF guard: loopback, private, link-local, multicast and reserved addresses are refused
    # unless allowed here (the demo and the tests allow them; intranet feeds list a CIDR).
    allow_private_networks: bool = False
    allowed_networks: Annotated[tuple[str, ...], NoDecode] = ()
    max_feed_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_page_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_entries_per_poll: int = Field(default=200, ge=1)
    feed_concurrency: int = Field(default=20, ge=1)
    article_concurrency: int = Field(default=8, ge=1)
    html_ttl_seconds: int = Field(default=86_400, ge=60)
    # > poll hard time limit (120 s), < poll lease: a re-dispatched poll can retake the entries.
    claim_ttl_seconds: int = Field(default=240, ge=30)
    seen_ttl_days: int = Field(default=30, ge=1)

    # --- Dedupe ---------------------------------------------------------------------------
    dedupe_window_days: int = Field(default=7, ge=1, le=90)

    # --- Extraction ----------------------------------------------------------------------
    min_text_chars: int = Field(default=250, ge=0)
    # An article whose extraction crashed its process, hit the hard time limit or raised this
    # many times goes to the dead-letter stream instead of being tried forever.
    extract_max_attempts: int = Field(default=3, ge=1)
    # Hard limit of one extract task; the soft limit (feed text instead) is 3/4 of it.
    extract_time_limit_seconds: int = Field(default=60, ge=4)

    # --- Monitoring ----------------------------------------------------------------------
    metrics_host: str = "127.0.0.1"  # `feedpipe exporter` listens here (compose: 0.0.0.0)
    metrics_port: int = Field(default=9464, ge=1, le=65535)

    # --- Workers (used by `feedpipe run` and the compose file) ---------------------------
    fetch_concurrency: int = Field(default=2, ge=1)
    extract_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    log_level: str = "INFO"

    @field_validator("redis_url", "broker_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"must start with redis://, rediss:// or unix:// (got {value!r})")
        return value

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
    def _check_intervals(self) -> Settings:
        if self.min_poll_interval_seconds > self.max_poll_interval_seconds:
            raise ValueError(
                "FEEDPIPE_MIN_POLL_INTERVAL_SECONDS must not exceed "
                "FEEDPIPE_MAX_POLL_INTERVAL_SECONDS"
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
