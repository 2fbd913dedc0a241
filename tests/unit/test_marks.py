"""Exact-dedupe marks: bucket names and the publish script's day/keep/prune argument."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.dedupe import DedupePolicy
from pipeline.keys import Keys
from pipeline.publish import PublishPolicy, _marks_days

NOW = datetime(2026, 11, 25, 23, 59, tzinfo=UTC)  # unix day 20782


def policy(ttl_seconds: int) -> PublishPolicy:
    return PublishPolicy(
        maxlen=10, dedupe_ttl_seconds=ttl_seconds, min_text_chars=250, near=DedupePolicy()
    )


def test_an_id_splits_into_its_bucket_and_field() -> None:
    keys = Keys()
    assert keys.item_mark("beef" + "0" * 20) == ("feedpipe:v2:items:beef", "0" * 20)
    assert keys.content_mark("0123" + "f" * 28) == ("feedpipe:v2:texts:0123", "f" * 28)


def test_marks_are_kept_whole_days_and_pruned_every_quarter_of_them() -> None:
    assert _marks_days(policy(30 * 86_400), NOW) == ("20782", "30", "7")
    assert _marks_days(policy(3600), NOW) == ("20782", "1", "1")  # under a day: a whole day
    assert _marks_days(policy(86_400 + 1), NOW) == ("20782", "2", "1")  # rounded up, never down
