"""Rules every feed format's adapter (``parse`` for feedparser, ``jsonfeed``) applies the same
way when it turns one entry into an ``Entry``: how the entry is recognized on later polls, and
what one text given as both summary and content is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pipeline.models import Entry
from pipeline.normalize import short_hash


def repeated_guids(guids: Iterable[str]) -> set[str]:
    """GUIDs that occur more than once in one document (broken CMSs reuse one for all)."""
    counts = Counter(guids)
    return {guid for guid, n in counts.items() if guid and n > 1}


def make_entry(
    *,
    guid: str | None,
    repeated_guids: set[str],
    url: str | None,
    canonical_url: str | None,
    title: str,
    summary: str,
    content: str,
    **details: Any,
) -> Entry:
    """An ``Entry`` with its identity; ``details`` are the remaining ``Entry`` fields.

    One text given as both summary and content is the entry's content, and it has no summary:
    feedparser copies an Atom entry's only ``<content>`` into its summary, and feeds repeat
    ``content:encoded`` in ``description``. Kept as the summary, a full article in the feed
    would read as a teaser and its page would be fetched even under ``fulltext: feed``."""
    if content == summary:
        # The identity is computed as it always was (the text as the summary), so an entry
        # known only by its text keeps its identity and is not taken as new.
        identity_text, summary = f"{title}\n{summary}\n", ""
    else:
        identity_text = f"{title}\n{summary}\n{content}"
    identity = entry_identity(
        None if guid in repeated_guids else guid, canonical_url, identity_text
    )
    return Entry(
        identity=identity,
        title=title,
        url=url,
        canonical_url=canonical_url,
        guid=guid,
        summary=summary,
        content=content,
        **details,
    )


def entry_identity(guid: str | None, canonical: str | None, fallback: str) -> str:
    """How an entry is recognized on later polls: its GUID, else its URL, else its content.

    GUIDs that repeat within one feed (broken CMSs reuse one for every entry) must be passed
    as None by the caller, so those entries fall back to their URL.
    """
    if guid:
        return "guid:" + guid
    if canonical:
        return "url:" + canonical
    return "hash:" + short_hash(fallback, 32)
