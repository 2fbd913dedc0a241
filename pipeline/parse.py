"""Feed bytes -> ParsedFeed. The only module that ever sees feedparser's dicts (JSON Feed has
its own adapter, ``pipeline.jsonfeed``; charsets are settled first by ``pipeline.decode``)."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime
from typing import Any

import feedparser

from pipeline.decode import decode_xml_body
from pipeline.discover import feed_links, looks_like_html
from pipeline.entries import make_entry, repeated_guids
from pipeline.errors import NotAFeed
from pipeline.jsonfeed import looks_like_json_feed, parse_json_feed
from pipeline.models import Entry, FetchResult, ParsedFeed
from pipeline.normalize import (
    absolute_url,
    canonical_url,
    clean_line,
    html_to_text,
)


def parse_feed(result: FetchResult, feed_url: str, max_entries: int) -> ParsedFeed:
    """Parse RSS 0.9x/1.0/2.0, Atom or JSON Feed. Raises NotAFeed when the body is none of them.

    A body that is not well-formed XML but still yields entries is kept, with ``problem`` set:
    many real feeds have a stray '&' and their readers still expect the news.
    """
    if not result.body.strip():
        raise NotAFeed(feed_url, f"empty response body (HTTP {result.status})")
    if looks_like_json_feed(result):
        return parse_json_feed(result, feed_url, max_entries)
    if looks_like_html(result.content_type, result.body):
        raise NotAFeed(feed_url, _html_page_message(result))
    decoded = decode_xml_body(result.body, result.charset)
    parsed = feedparser.parse(
        decoded.text_bytes,
        # The body is UTF-8 now, whatever the server or the prolog claimed.
        response_headers={
            "content-location": result.final_url,
            "content-type": "application/xml; charset=utf-8",
        },
        # We turn content into plain text ourselves, so feedparser's HTML sanitizing and
        # URI rewriting inside content would be wasted work (about half its parse time).
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    problem = _bozo_message(parsed)
    if not parsed.get("version") and not parsed.entries:
        raise NotAFeed(feed_url, f"not an RSS, Atom or JSON feed ({problem or _describe(result)})")
    feed = parsed.get("feed", {})
    base = result.final_url
    language = _text(feed.get("language")) or None
    raw_entries = parsed.entries[:max_entries]
    repeated = repeated_guids(_text(raw.get("id")).strip() for raw in raw_entries)
    entries = tuple(_to_entry(raw, base, language, repeated) for raw in raw_entries)
    return ParsedFeed(
        title=clean_line(_text(feed.get("title"))) or None,
        link=absolute_url(_text(feed.get("link")), base),
        language=language,
        entries=entries,
        problem=problem,
        min_interval=_feed_interval_hint(feed),
        total_entries=len(parsed.entries),
        hub_link=_feed_link(feed, "hub", base),
        self_link=_feed_link(feed, "self", base),
    )


def _feed_link(feed: Any, rel: str, base: str) -> str | None:
    """The feed's own <link rel=...> (Atom, or atom:link in RSS): WebSub's hub and topic."""
    for link in feed.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == rel:
            return absolute_url(_text(link.get("href")), base)
    return None


def _to_entry(raw: dict[str, Any], base: str, language: str | None, repeated: set[str]) -> Entry:
    url = absolute_url(_text(raw.get("link")), base)
    return make_entry(
        guid=_text(raw.get("id")).strip() or None,
        repeated_guids=repeated,
        url=url,
        canonical_url=canonical_url(url),
        title=clean_line(html_to_text(_text(raw.get("title")))),
        summary=html_to_text(_text(raw.get("summary"))),
        content=_content_text(raw),
        author=clean_line(_text(raw.get("author"))) or None,
        published_at=_iso_date(raw.get("published_parsed") or raw.get("updated_parsed")),
        categories=_categories(raw),
        image=_image(raw, base),
        language=_text(raw.get("language")) or language,
    )


# sy:updatePeriod in seconds (RSS 1.0 Syndication module); sy:updateFrequency divides it.
_SY_PERIODS = {
    "hourly": 3600,
    "daily": 86_400,
    "weekly": 604_800,
    "monthly": 2_592_000,
    "yearly": 31_536_000,
}


def _feed_interval_hint(feed: dict[str, Any]) -> float | None:
    """The shortest interval the feed asks readers to poll at: RSS <ttl> (minutes) or
    sy:updatePeriod / sy:updateFrequency. Nonsense values are ignored, not trusted."""
    hints: list[float] = []
    ttl = _text(feed.get("ttl")).strip()
    if ttl.isdigit() and int(ttl) > 0:
        hints.append(int(ttl) * 60.0)
    period = _SY_PERIODS.get(_text(feed.get("sy_updateperiod")).strip().lower())
    if period:
        frequency = _text(feed.get("sy_updatefrequency")).strip()
        divisor = int(frequency) if frequency.isdigit() and int(frequency) > 0 else 1
        hints.append(period / divisor)
    return max(hints) if hints else None


def _html_page_message(result: FetchResult) -> str:
    links = feed_links(result.body, result.final_url)
    if links:
        return f"an HTML page, not a feed; it links to the feed {links[0]}: use that URL"
    return "an HTML page, not a feed (`feedpipe feeds add` finds a site's feed by itself)"


def _bozo_message(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    # feedparser flags a charset it had to override as bozo; the text is still right.
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return None
    return f"{type(exc).__name__}: {exc}" if exc else "malformed feed"


def _describe(result: FetchResult) -> str:
    kind = result.content_type or "no content type"
    return f"{kind}, {len(result.body)} bytes"


def _content_text(raw: dict[str, Any]) -> str:
    parts = [html_to_text(_text(c.get("value"))) for c in raw.get("content") or []]
    return max(parts, key=len, default="")


def _categories(raw: dict[str, Any]) -> tuple[str, ...]:
    tags = raw.get("tags") or []
    terms = (clean_line(_text(tag.get("term") or tag.get("label"))) for tag in tags)
    return tuple(dict.fromkeys(t for t in terms if t))


def _image(raw: dict[str, Any], base: str) -> str | None:
    for media in list(raw.get("media_content") or []) + list(raw.get("media_thumbnail") or []):
        url = absolute_url(_text(media.get("url")), base)
        if url:
            return url
    for link in raw.get("links") or []:
        if link.get("rel") == "enclosure" and _text(link.get("type")).startswith("image/"):
            return absolute_url(_text(link.get("href")), base)
    return None


def _iso_date(struct: time.struct_time | None) -> str | None:
    if not struct:
        return None
    try:
        stamp = calendar.timegm(struct)
    except (TypeError, ValueError, OverflowError):
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat().replace("+00:00", "Z")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
