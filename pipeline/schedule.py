"""When to poll a feed next. Pure policy: no I/O, ``now`` and the random source are passed in.

The interval follows the feed's own rate of new entries (one new entry per poll on average),
is never shorter than what the feed or its server asks for (RSS ``<ttl>``, ``sy:update*``,
Cache-Control max-age / Expires), and stays within the configured floor and ceiling. Failures
back off exponentially to a cap, where the feed keeps being retried forever; a 429/503
Retry-After is honoured, capped. docs/fetching.md explains the choices.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.models import FeedState

HOUR = 3600.0
# Weight of the newest observation in the running rate estimate: a feed that changes pace
# is followed within a few polls, one unusual poll does not swing the interval.
RATE_SMOOTHING = 0.3
# Entry dates older than this say nothing about the current pace.
RATE_WINDOW = 7 * 24 * HOUR
# A poll cut short by a busy host is dispatched again this soon: the host's feeds keep it busy
# (waiting in a fetch process is free), where waiting out the floor would leave it idle.
RESUME_SECONDS = 5.0


@dataclass(frozen=True)
class SchedulePolicy:
    default_interval: float
    min_interval: float
    max_interval: float
    backoff_max: float
    retry_after_max: float
    jitter_fraction: float = 0.1

    def interval(self, feed: FeedState) -> float:
        """Seconds between polls of a healthy feed."""
        if feed.interval:  # set by the user for this feed; clamped as an int: 10**400 has no float
            wanted = float(min(feed.interval, self.max_interval))
        elif feed.rate is None:
            wanted = self.default_interval
        elif feed.rate <= 0:
            wanted = self.max_interval
        else:
            wanted = HOUR / feed.rate
        if feed.hint:
            wanted = max(wanted, min(feed.hint, self.max_interval))
        return max(self.min_interval, min(self.max_interval, wanted))

    def next_poll_after_success(self, feed: FeedState, now: float, rng: random.Random) -> float:
        interval = self.interval(feed)
        if feed.interval and interval == feed.interval:
            # An interval the user set is a promise of freshness: jitter only shortens it.
            return now + interval * (1 - rng.uniform(0, self.jitter_fraction))
        return now + self._jittered(interval, rng)

    def next_poll_after_error(
        self,
        feed: FeedState,
        consecutive_errors: int,
        now: float,
        rng: random.Random,
        retry_after: float | None = None,
    ) -> float:
        """Exponential backoff from the feed's interval, capped: a failing feed is retried
        forever at the cap, never dropped. The server's Retry-After is a lower bound."""
        exponent = min(max(consecutive_errors - 1, 0), 20)
        delay = min(self.backoff_max, self.interval(feed) * 2**exponent)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_after_max))
        return now + self._jittered(delay, rng)

    def next_poll_soon(self, now: float, rng: random.Random) -> float:
        """A poll that left entries another poll holds (which may have died: its claims
        expire): after the floor, errors not counted."""
        return now + self._jittered(self.min_interval, rng)

    def next_poll_to_resume(self, now: float, rng: random.Random) -> float:
        """A poll cut short by its host's politeness (deferred before its first request, or
        entries left for later): resumed as soon as the host may be free, within the floor.
        The floor spares a server polls that look for news; these fetch what it published."""
        return now + self._jittered(min(self.min_interval, RESUME_SECONDS), rng)

    def _jittered(self, delay: float, rng: random.Random) -> float:
        # Jitter spreads feeds of one host and of one import so they do not stay in lockstep.
        return delay * (1 + rng.uniform(-self.jitter_fraction, self.jitter_fraction))


def hint_seconds(feed_hint: float | None, fresh_for: float | None) -> float | None:
    """The longest of the feed's own hint (ttl, sy:) and the server's freshness lifetime."""
    hints = [h for h in (feed_hint, fresh_for) if h]
    return max(hints) if hints else None


def estimate_rate(
    feed: FeedState, new_entries: int, entry_times: Iterable[float], now: float
) -> float | None:
    """New entries per hour. The first poll reads the pace off the entries' dates; later
    polls smooth in what was really new since the last poll (dates can lie: some CMSs stamp
    every entry with the time of the request)."""
    if feed.rate is None or feed.last_poll is None:
        return rate_from_dates(entry_times, now)
    elapsed = max(now - feed.last_poll, 1.0)
    observed = new_entries * HOUR / elapsed
    return RATE_SMOOTHING * observed + (1 - RATE_SMOOTHING) * feed.rate


def rate_from_dates(entry_times: Iterable[float], now: float) -> float | None:
    """Entries per hour over the recent window, from publication dates; None without dates."""
    times = [t for t in entry_times if t <= now + HOUR]
    if not times:
        return None
    recent = [t for t in times if t >= now - RATE_WINDOW]
    if not recent:
        return 0.0  # dated, but nothing for a week: a quiet feed
    span = max(now - min(recent), HOUR)
    return len(recent) * HOUR / span


def dispatch_batches(ids: Sequence[str], max_size: int, at_once: int) -> list[list[str]]:
    """Due feeds split into poll tasks: at least ``at_once`` (the poll tasks the fetch workers
    run at once: a cold start's feeds are spread over all of them, not queued behind one),
    each at most ``max_size``, all of nearly equal size, in the order they were claimed."""
    if not ids:
        return []
    count = max(min(at_once, len(ids)), -(-len(ids) // max_size))
    size, extra = divmod(len(ids), count)
    batches, start = [], 0
    for k in range(count):
        end = start + size + (k < extra)
        batches.append(list(ids[start:end]))
        start = end
    return batches
