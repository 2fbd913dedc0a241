"""The polling policy, table-driven: rate, hints (ttl, sy:, max-age), Retry-After, errors, caps."""

from __future__ import annotations

import random

import pytest

from pipeline.models import FeedState
from pipeline.schedule import (
    HOUR,
    RESUME_SECONDS,
    SchedulePolicy,
    dispatch_batches,
    estimate_rate,
    hint_seconds,
    rate_from_dates,
)

POLICY = SchedulePolicy(
    default_interval=600,
    min_interval=120,
    max_interval=86_400,
    backoff_max=86_400,
    retry_after_max=86_400,
    jitter_fraction=0.0,
)
NOW = 1_800_000_000.0


def feed(
    *, interval: int | None = None, rate: float | None = None, hint: float | None = None
) -> FeedState:
    return FeedState(id="f", url="https://a.example/rss", interval=interval, rate=rate, hint=hint)


@pytest.mark.parametrize(
    ("case", "state", "expected"),
    [
        ("no rate known yet: the default", feed(), 600),
        ("busy agency, 30 entries/hour: the floor", feed(rate=30), 120),
        ("12 entries/hour: every 5 minutes", feed(rate=12), 300),
        ("one entry every 3 hours", feed(rate=1 / 3), 3 * HOUR),
        ("quiet blog, one a week: the ceiling", feed(rate=1 / 168), 86_400),
        ("nothing new for a week: the ceiling", feed(rate=0.0), 86_400),
        ("<ttl> 60 min slows a busy feed", feed(rate=30, hint=3600), 3600),
        ("a hint shorter than the rate's interval changes nothing", feed(rate=0.5, hint=600), 7200),
        ("a hint beyond the ceiling is capped", feed(rate=30, hint=7 * 86_400), 86_400),
        ("user interval wins over the rate", feed(interval=900, rate=30), 900),
        ("user interval still respects the feed's hint", feed(interval=900, hint=1800), 1800),
        ("user interval below the floor", feed(interval=10), 120),
        ("user interval above the ceiling", feed(interval=10**7), 86_400),
    ],
)
def test_interval(case: str, state: FeedState, expected: float) -> None:
    assert POLICY.interval(state) == pytest.approx(expected), case
    assert POLICY.next_poll_after_success(state, NOW, random.Random(1)) == pytest.approx(
        NOW + expected
    )


@pytest.mark.parametrize(
    ("case", "state", "errors", "retry_after", "delay"),
    [
        ("first error: one interval", feed(), 1, None, 600),
        ("second: doubled", feed(), 2, None, 1200),
        ("third: doubled again", feed(), 3, None, 2400),
        ("many: capped at 24 h", feed(), 9, None, 86_400),
        ("forever at the cap, never dropped", feed(), 500, None, 86_400),
        ("backoff starts from the feed's own interval", feed(rate=12), 2, None, 600),
        ("Retry-After longer than the backoff wins", feed(), 1, 7200, 7200),
        ("Retry-After shorter than the backoff: backoff", feed(), 3, 60, 2400),
        ("Retry-After capped", feed(), 1, 10 * 86_400, 86_400),
    ],
)
def test_error_backoff(
    case: str, state: FeedState, errors: int, retry_after: float | None, delay: float
) -> None:
    got = POLICY.next_poll_after_error(state, errors, NOW, random.Random(1), retry_after)
    assert got == pytest.approx(NOW + delay), case


def test_retry_after_cap_is_configurable() -> None:
    policy = SchedulePolicy(600, 120, 86_400, 86_400, retry_after_max=3600, jitter_fraction=0.0)
    assert policy.next_poll_after_error(feed(), 1, NOW, random.Random(1), 86_400) == NOW + 3600


def test_jitter_spreads_but_stays_small() -> None:
    policy = SchedulePolicy(600, 120, 86_400, 86_400, 86_400, jitter_fraction=0.1)
    rng = random.Random(7)
    delays = {policy.next_poll_after_success(feed(), 0.0, rng) for _ in range(50)}
    assert len(delays) > 40 and all(540 <= d <= 660 for d in delays)


def test_a_user_interval_is_never_exceeded_by_jitter() -> None:
    # "poll every 60 s" is a freshness promise: jitter may make it shorter, never longer.
    policy = SchedulePolicy(600, 30, 86_400, 86_400, 86_400, jitter_fraction=0.1)
    rng = random.Random(7)
    delays = {policy.next_poll_after_success(feed(interval=60), 0.0, rng) for _ in range(50)}
    assert len(delays) > 40 and all(54 <= d <= 60 for d in delays)


@pytest.mark.parametrize(
    ("case", "ages_hours", "expected"),
    [
        ("no dates", [], None),
        ("20 entries over the last 2 hours", [i / 10 for i in range(20)], 20 / 1.9),
        ("5 entries over 5 days", [0, 24, 48, 72, 120], 5 / 120),
        ("one entry, 3 days ago", [72], 1 / 72),
        ("only entries older than a week", [200, 300], 0.0),
        ("recent ones within a minute count over at least an hour", [0, 0, 0], 3.0),
        ("dates far in the future are ignored", [-48, 1, 2], 2 / 2),
    ],
)
def test_rate_from_dates(case: str, ages_hours: list[float], expected: float | None) -> None:
    times = [NOW - age * HOUR for age in ages_hours]
    got = rate_from_dates(times, NOW)
    assert got == (None if expected is None else pytest.approx(expected)), case


def test_rate_is_smoothed_from_what_was_really_new() -> None:
    known = FeedState(id="f", url="u", rate=2.0, last_poll=NOW - HOUR)
    # Dates are ignored once polls have been observed: 6 new entries in the hour since.
    assert estimate_rate(known, 6, [NOW] * 50, NOW) == pytest.approx(0.3 * 6 + 0.7 * 2)
    assert estimate_rate(known, 0, [], NOW) == pytest.approx(1.4)
    first = FeedState(id="f", url="u")
    assert estimate_rate(first, 20, [NOW - i * 360 for i in range(20)], NOW) == pytest.approx(
        20 / (19 * 0.1)
    )


@pytest.mark.parametrize(
    ("feed_hint", "fresh_for", "expected"),
    [(None, None, None), (3600, None, 3600), (None, 300, 300), (1800, 7200, 7200), (0, 0, None)],
)
def test_hints_combine_to_the_longest(
    feed_hint: float | None, fresh_for: float | None, expected: float | None
) -> None:
    assert hint_seconds(feed_hint, fresh_for) == expected


def test_soon_is_the_floor_and_counts_no_error() -> None:
    assert POLICY.next_poll_soon(NOW, random.Random(1)) == NOW + 120


def test_a_poll_cut_short_by_its_host_resumes_within_the_floor() -> None:
    # Deferred, or entries left for later: waiting out the floor would leave the host idle.
    assert POLICY.next_poll_to_resume(NOW, random.Random(1)) == NOW + RESUME_SECONDS
    tight = SchedulePolicy(600, 2, 86_400, 86_400, 86_400, jitter_fraction=0.0)
    assert tight.next_poll_to_resume(NOW, random.Random(1)) == NOW + 2


@pytest.mark.parametrize(
    ("count", "max_size", "at_once", "sizes"),
    [
        (0, 250, 8, []),
        (3, 250, 8, [1, 1, 1]),  # never an empty batch
        (200, 250, 2, [100, 100]),  # a cold start is spread over every process
        (200, 50, 2, [50, 50, 50, 50]),  # and no batch is larger than the cap
        (1001, 250, 2, [201, 200, 200, 200, 200]),  # nearly equal sizes
        (7, 1, 2, [1] * 7),
    ],
)
def test_dispatch_batches(count: int, max_size: int, at_once: int, sizes: list[int]) -> None:
    ids = [f"f{i}" for i in range(count)]
    batches = dispatch_batches(ids, max_size, at_once)
    assert [len(b) for b in batches] == sizes
    assert [i for b in batches for i in b] == ids  # every feed once, in claim order
