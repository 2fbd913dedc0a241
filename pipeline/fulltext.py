"""Full-content feeds: when the feed's own text is the article, its page is not fetched.

Many agencies put the whole article in the feed (RSS ``content:encoded``, Atom ``content``,
JSON Feed ``content_html``). Fetching its page then costs a request to the publisher and an
extraction for nothing. Each feed has a ``fulltext`` mode (feeds file, ``feeds add``):

- ``page``: always fetch the page (trafilatura's text, the feed's as the fallback);
- ``feed``: never fetch a page for an entry that has content in the feed;
- ``auto`` (default): fetch pages, and let the extract stage compare each entry's feed
  content with its page's extraction (``feed_text_is_article``). After ``learn_after`` checks
  in a row in which the feed's text was the article, pages are fetched only for entries
  chosen to re-check it (about one in ``recheck_every``, by a hash of the entry's identity,
  so no counter is kept); one check that finds the page says more resets the streak, and
  pages are fetched again. An entry without content in the feed always has its page fetched.

Pure policy: the poll stage asks ``page_needed``, the extract stage asks
``feed_text_is_article`` and records the verdict on the feed (``pipeline.extract_stage``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

from pipeline.models import Entry, FeedState, Fulltext
from pipeline.normalize import normalize_for_matching


@dataclass(frozen=True)
class FulltextPolicy:
    learn_after: int = 3  # checks in a row that trust a feed's text
    recheck_every: int = 20  # about one entry in this many re-checks a trusted feed
    # Share of the page's words (as many times as the page has them) that the feed's text must
    # have: what trafilatura finds beyond it (a caption, a line it kept) stays under a tenth.
    min_recall: float = 0.9
    min_chars: int = 250  # a feed text shorter than this is a summary (FEEDPIPE_MIN_TEXT_CHARS)


def page_needed(state: FeedState, entry: Entry, policy: FulltextPolicy) -> bool:
    """Whether a poll fetches this entry's page."""
    if len(entry.content) < policy.min_chars or state.fulltext == "page":
        return True
    if state.fulltext == "feed":
        return False
    return state.fulltext_streak < policy.learn_after or _rechecks(entry, policy)


def should_compare(mode: Fulltext, entry: Entry, policy: FulltextPolicy) -> bool:
    """Whether the extract stage compares this entry's feed text with its page's."""
    return mode == "auto" and len(entry.content) >= policy.min_chars


def feed_text_is_article(feed_text: str, page_text: str, policy: FulltextPolicy) -> bool:
    """Whether the feed's text holds the page's article: at least ``min_recall`` of the
    page's words, counted with repeats, on normalized text (so spelling variants of one
    outlet's two renderings, ZWNJ and Arabic/Persian letter forms, do not count as missing)."""
    page_words = Counter(normalize_for_matching(page_text).split())
    if not page_words:
        return True
    feed_words = Counter(normalize_for_matching(feed_text).split())
    found = sum((page_words & feed_words).values())
    return found >= policy.min_recall * sum(page_words.values())


def describe(state: FeedState, policy: FulltextPolicy) -> str:
    """Where the feed's items take their text from, as `feeds ls` shows it."""
    if state.fulltext != "auto":
        return f"{state.fulltext} (set)"
    if state.fulltext_streak >= policy.learn_after:
        return f"feed (learned: its text was the article on {state.fulltext_streak} checks)"
    return f"page (auto: {state.fulltext_streak} of {policy.learn_after} checks so far)"


def _rechecks(entry: Entry, policy: FulltextPolicy) -> bool:
    digest = hashlib.blake2b(entry.identity.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % policy.recheck_every == 0
