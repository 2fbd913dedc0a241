"""The full-content policy (pipeline/fulltext.py): pure functions, unit- and property-tested."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.fulltext import (
    FulltextPolicy,
    describe,
    feed_text_is_article,
    page_needed,
    should_compare,
)
from pipeline.models import Entry, FeedState

POLICY = FulltextPolicy(learn_after=3, recheck_every=20, min_recall=0.9, min_chars=250)
ARTICLE = " ".join(f"word{i} sentence{i % 7}." for i in range(80))  # ~1,100 characters


def entry(identity: str = "guid:1", content: str = ARTICLE) -> Entry:
    return Entry(identity=identity, title="t", url="https://example.org/a", content=content)


def feed(mode: str = "auto", streak: int = 0) -> FeedState:
    state = FeedState(id="f", url="https://example.org/rss")
    return msgspec.structs.replace(state, fulltext=mode, fulltext_streak=streak)


@pytest.mark.parametrize(
    ("mode", "streak", "content", "needed"),
    [
        ("page", 99, ARTICLE, True),  # always the page
        ("feed", 0, ARTICLE, False),  # never, from the first entry
        ("feed", 0, "a teaser", True),  # a summary is not the article, whatever the mode
        ("auto", 0, ARTICLE, True),  # learning
        ("auto", 2, ARTICLE, True),
        ("auto", 0, "", True),
    ],
)
def test_page_needed(mode: str, streak: int, content: str, needed: bool) -> None:
    assert page_needed(feed(mode, streak), entry(content=content), POLICY) is needed


def test_a_trusted_feed_rechecks_about_one_entry_in_twenty() -> None:
    state = feed("auto", 3)
    fetched = sum(page_needed(state, entry(f"guid:{i}"), POLICY) for i in range(10_000))
    assert 400 <= fetched <= 600
    assert page_needed(state, entry("guid:7"), POLICY) == page_needed(
        state, entry("guid:7"), POLICY
    )


def test_only_auto_feeds_with_content_are_compared() -> None:
    assert should_compare("auto", entry(), POLICY)
    assert not should_compare("auto", entry(content="a teaser"), POLICY)
    assert not should_compare("page", entry(), POLICY)
    assert not should_compare("feed", entry(), POLICY)


def test_the_whole_article_in_the_feed_is_the_article() -> None:
    assert feed_text_is_article(ARTICLE, ARTICLE, POLICY)
    # the page's extraction adds a caption: still the article
    assert feed_text_is_article(ARTICLE, ARTICLE + " Photo: Reuters.", POLICY)


def test_a_summary_or_a_truncated_text_is_not() -> None:
    half = ARTICLE[: len(ARTICLE) // 2]
    assert not feed_text_is_article(half, ARTICLE, POLICY)
    assert not feed_text_is_article(ARTICLE.split(".")[0], ARTICLE, POLICY)


def test_persian_spellings_of_one_text_are_one_text() -> None:
    page = "وزیر امور خارجه می‌گوید کشورهای منطقه " * 20
    feed_text = "وزير امور خارجه مي گويد كشورهاي منطقه " * 20  # Arabic yeh/kaf, ZWNJ as a space
    assert feed_text_is_article(feed_text, page, POLICY)


def test_describe() -> None:
    assert describe(feed("page"), POLICY) == "page (set)"
    assert describe(feed("auto", 1), POLICY) == "page (auto: 1 of 3 checks so far)"
    assert describe(feed("auto", 5), POLICY).startswith("feed (learned")


@given(st.text(), st.text())
def test_any_text_gets_a_verdict_and_is_its_own_article(feed_text: str, page: str) -> None:
    assert isinstance(feed_text_is_article(feed_text, page, POLICY), bool)
    assert feed_text_is_article(page, page, POLICY)
