"""When to poll a feed next. Pure policy: no I/O, ``now`` is passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipeline.models import FeedState
from pipeline.settings import Settings


@dataclass(frozen=True)
class SchedulePolicy:
    base_interval: int
    min_interval: int
    max_interval: int
    backoff_max: int
    jitter_fraction: float = 0.05

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulePolicy:
        return cls(
            base_interval=settings.poll_interval_seconds,
            min_interval=settings.min_poll_interval_seconds,
            max_interval=settings.max_poll_interval_seconds,
            backoff_max=settings.error_backoff_max_seconds,
        )

    def interval(self, feed: FeedState) -> int:
        """The feed's own interval if it has one, else the base; always within floor/ceiling."""
        wanted = feed.interval or self.base_interval
        return max(self.min_interval, min(self.max_interval, wanted))

    def next_poll_after_success(self, feed: FeedState, now: float, rng: random.Random) -> float:
        return now + self._jittered(self.interval(feed), rng)

    def next_poll_after_error(
        self, feed: FeedState, consecutive_errors: int, now: float, rng: random.Random
    ) -> float:
        """Exponential backoff from the feed's interval, capped: a failing feed is retried
        forever at the cap, never dropped."""
        exponent = min(max(consecutive_errors - 1, 0), 16)
        delay = min(self.backoff_max, self.interval(feed) * 2**exponent)
        return now + self._jittered(delay, rng)

    def _jittered(self, delay: float, rng: random.Random) -> float:
        # Jitter spreads feeds added together (one import) so they do not stay in lockstep.
        return delay * (1 + rng.uniform(-self.jitter_fraction, self.jitter_fraction))
