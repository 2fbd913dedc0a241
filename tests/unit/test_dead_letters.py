"""pipeline/dead_letters.py's filter: which letters `feedpipe dead-letters --feed/--reason` choose."""

from __future__ import annotations

from pipeline.dead_letters import EVERY_LETTER, LetterFilter, StoredLetter
from pipeline.models import DeadLetter
from pipeline.normalize import feed_id

URL = "https://agency.example/rss"
LETTER = StoredLetter(
    "1-0",
    DeadLetter(
        item_id="a",
        attempts=3,
        reason="Hard time limit exceeded",
        feed_url=URL,
        feed_id=feed_id(URL),
    ),
)
UNREADABLE = StoredLetter("2-0", None, "no `dead` field")
OLD = StoredLetter("3-0", DeadLetter(item_id="b", attempts=3, reason="crash", feed_url=URL))


def test_a_feed_is_named_by_its_id_or_its_url() -> None:
    assert LetterFilter(feed=feed_id(URL)).matches(LETTER)
    assert LetterFilter(feed=URL).matches(LETTER)
    assert LetterFilter(feed=f"  {URL} ").matches(LETTER)  # as the feeds file's IDs are made
    assert LetterFilter(feed=URL).matches(OLD)  # written before letters carried feed_id
    assert not LetterFilter(feed="https://agency.example/other").matches(LETTER)


def test_reason_is_a_substring_case_aside_and_both_filters_must_hold() -> None:
    assert LetterFilter(reason="TIME LIMIT").matches(LETTER)
    assert not LetterFilter(reason="crash").matches(LETTER)
    assert not LetterFilter(feed=URL, reason="crash").matches(LETTER)
    assert LetterFilter(feed=URL, reason="crash").matches(OLD)


def test_an_unreadable_entry_matches_only_the_empty_filter() -> None:
    assert EVERY_LETTER.matches(UNREADABLE)
    assert not LetterFilter(reason="").matches(UNREADABLE)
    assert not LetterFilter(feed=URL).matches(UNREADABLE)
