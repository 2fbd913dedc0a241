"""JSON Feed 1.0/1.1 -> ParsedFeed. The JSON Feed adapter, as ``pipeline.parse`` is feedparser's.

https://www.jsonfeed.org/version/1.1/ . The conventions are parse.py's: the same entry identity
(and the same rule for GUIDs repeated within one feed), http(s) URLs only, plain clean text,
dates as ISO 8601 UTC ending with "Z", at most ``max_entries`` entries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from pipeline.entries import make_entry, repeated_guids
from pipeline.errors import NotAFeed
from pipeline.models import Entry, FetchResult, ParsedFeed
from pipeline.normalize import (
    absolute_url,
    canonical_url,
    clean_line,
    clean_text,
    html_to_text,
)

JSON_FEED_TYPES = frozenset(["application/feed+json", "application/json"])
# Old feeds and some generators still write the version URL with http:.
_VERSION_PREFIXES = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
_BOM = b"\xef\xbb\xbf"
_SPACE = b" \t\r\n"

JsonObject = dict[str, Any]


def looks_like_json_feed(result: FetchResult) -> bool:
    """Whether to hand the body to ``parse_json_feed`` rather than to feedparser.

    A JSON content type, or a body that opens with "{". A body that opens with "<" is markup
    whatever its content type says (servers label RSS as application/json too).
    """
    head = result.body[:64].removeprefix(_BOM).lstrip(_SPACE)
    if head.startswith(b"<"):
        return False
    return _media_type(result.content_type) in JSON_FEED_TYPES or head.startswith(b"{")


def parse_json_feed(result: FetchResult, feed_url: str, max_entries: int) -> ParsedFeed:
    """Parse a JSON Feed. Raises NotAFeed when the body is not JSON, or JSON of another kind."""
    doc = _decode(result, feed_url)
    base = _base_url(doc, result.final_url)
    language = _text(doc.get("language")).strip() or None
    objects = [item for item in doc["items"] if isinstance(item, dict)]
    items = objects[:max_entries]
    repeated = repeated_guids(_item_id(item) for item in items)
    feed_author = _author(doc)
    entries = tuple(_to_entry(item, base, language, feed_author, repeated) for item in items)
    return ParsedFeed(
        title=clean_line(_text(doc.get("title"))) or None,
        link=absolute_url(_text(doc.get("home_page_url")), result.final_url),
        language=language,
        entries=entries,
        problem=None,
        total_entries=len(objects),
    )


def _decode(result: FetchResult, feed_url: str) -> JsonObject:
    body = result.body.removeprefix(_BOM)
    if not body.strip():
        raise NotAFeed(feed_url, "not a JSON Feed (empty body)")
    try:
        doc = _json(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise NotAFeed(feed_url, f"not a JSON Feed (not JSON: {exc})") from None
    if not isinstance(doc, dict) or not _text(doc.get("version")).startswith(_VERSION_PREFIXES):
        raise NotAFeed(feed_url, "JSON but not a JSON Feed (no jsonfeed.org version)")
    if not isinstance(doc.get("items"), list):
        raise NotAFeed(feed_url, "JSON Feed without an items list")
    return doc


def _json(body: bytes) -> Any:
    """JSON is UTF-8 by definition; a stray byte of another encoding should not lose the feed.

    Invalid sequences become U+FFFD here, before msgspec sees the data: msgspec 0.23 rejects
    them where earlier versions let them through, and the outcome must not depend on that.
    """
    try:
        text = body.decode("utf-8")  # one decode when the body is valid (nearly always)
    except UnicodeDecodeError:
        text = body.decode("utf-8", errors="replace")
    return msgspec.json.decode(text)


def _to_entry(
    item: JsonObject, base: str, language: str | None, feed_author: str | None, repeated: set[str]
) -> Entry:
    url = absolute_url(_text(item.get("url")) or _text(item.get("external_url")), base)
    return make_entry(
        guid=_item_id(item) or None,
        repeated_guids=repeated,
        url=url,
        canonical_url=canonical_url(url),
        title=clean_line(_text(item.get("title"))),
        summary=clean_text(_text(item.get("summary"))),
        content=_content(item),
        author=_author(item) or feed_author,
        published_at=_iso_date(item.get("date_published") or item.get("date_modified")),
        categories=_tags(item),
        image=absolute_url(_text(item.get("image")) or _text(item.get("banner_image")), base),
        language=_text(item.get("language")).strip() or language,
    )


def _base_url(doc: JsonObject, final_url: str) -> str:
    """What relative item URLs resolve against: home_page_url, else feed_url, else the fetch."""
    for key in ("home_page_url", "feed_url"):
        url = absolute_url(_text(doc.get(key)), final_url)
        if url:
            return url
    return final_url


def _item_id(item: JsonObject) -> str:
    value = item.get("id")
    # 1.1: "id" is a string, but numbers are common and meant as the same id.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return _text(value).strip()


def _content(item: JsonObject) -> str:
    parts = (
        html_to_text(_text(item.get("content_html"))),
        clean_text(_text(item.get("content_text"))),
    )
    return max(parts, key=len)


def _author(obj: JsonObject) -> str | None:
    """The first named author: ``authors`` (1.1), else ``author`` (1.0)."""
    authors = obj.get("authors")
    candidates = [*(authors if isinstance(authors, list) else []), obj.get("author")]
    for author in candidates:
        name = clean_line(_text(author.get("name"))) if isinstance(author, dict) else ""
        if name:
            return name
    return None


def _tags(item: JsonObject) -> tuple[str, ...]:
    tags = item.get("tags")
    terms = (clean_line(_text(tag)) for tag in (tags if isinstance(tags, list) else []))
    return tuple(dict.fromkeys(t for t in terms if t))


def _iso_date(value: object) -> str | None:
    """RFC 3339 -> ISO 8601 UTC with "Z", to the second as parse.py writes it; None if invalid."""
    text = _text(value).strip().upper()
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:  # RFC 3339 requires an offset; read its absence as UTC
            moment = moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC).replace(microsecond=0)
    except (ValueError, OverflowError):
        return None
    return moment.isoformat().replace("+00:00", "Z")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
