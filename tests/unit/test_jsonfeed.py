"""The JSON Feed adapter: JSON Feed 1.0 and 1.1 into Entry values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.entries import entry_identity
from pipeline.errors import NotAFeed
from pipeline.jsonfeed import looks_like_json_feed, parse_json_feed
from pipeline.models import FetchResult

FEED_URL = "https://agency.example/fa/feed.json"
FINAL_URL = "https://cdn.agency.example/feeds/fa.json"


def result(
    body: str | bytes | dict[str, Any], content_type: str | None = "application/feed+json"
) -> FetchResult:
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False)
    if isinstance(body, str):
        body = body.encode()
    return FetchResult(
        url=FEED_URL, final_url=FINAL_URL, status=200, body=body, content_type=content_type
    )


def feed(*items: Any, **top: Any) -> dict[str, Any]:
    return {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Feed",
        **top,
        "items": [*items],
    }


FEED_11 = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": " خبرگزاری  نمونه ",
    "home_page_url": "https://agency.example/fa/",
    "feed_url": "https://agency.example/fa/feed.json",
    "language": "fa",
    "authors": [{"name": "تحریریه"}],
    "items": [
        {
            "id": "n-1",
            "url": "news/1?utm_source=feed",
            "title": "بارش برف در تهران",
            "content_html": "<p>مدارس فردا <b>تعطیل</b> می‌شود.</p><p>بند دو</p>",
            "summary": "مدارس تعطیل می‌شود.",
            "date_published": "2025-12-13T09:30:00+03:30",
            "authors": [{"url": "https://agency.example/u/1"}, {"name": "دبیر"}],
            "tags": ["اجتماعی", "آب‌وهوا", "اجتماعی", 7, " "],
            "image": "/img/1.jpg",
        },
        {
            "id": "n-2",
            "external_url": "https://other.example/en/harbour",
            "title": "Harbour reopens",
            "content_text": "The harbour reopened on Monday.\n\nShips are back.",
            "date_modified": "2025-06-01T10:00:00.250Z",
            "banner_image": "https://agency.example/img/banner.png",
            "language": "en",
        },
    ],
}

FEED_10 = {
    "version": "https://jsonfeed.org/version/1",
    "title": "Loopback Daily",
    "home_page_url": "https://daily.example/",
    "author": {"name": "Feed Desk"},
    "items": [
        {
            "id": 101,
            "url": "https://daily.example/en/news/1.html",
            "title": "Budget passed",
            "content_text": "The budget passed.",
            "summary": "The budget passed.",
            "date_published": "2025-06-01T10:00:00-04:00",
            "author": {"name": "Jane Roe"},
        },
        {"id": 102, "url": "https://daily.example/en/news/2.html", "content_html": "<p>Hi</p>"},
    ],
}


def test_json_feed_11_fields() -> None:
    parsed = parse_json_feed(result(FEED_11), FEED_URL, 100)
    assert parsed.title == "خبرگزاری نمونه"
    assert parsed.link == "https://agency.example/fa/"
    assert parsed.language == "fa" and parsed.problem is None
    assert len(parsed.entries) == 2
    first = parsed.entries[0]
    assert first.guid == "n-1" and first.identity == "guid:n-1"
    # Relative to home_page_url, not to where the JSON was fetched from.
    assert first.url == "https://agency.example/fa/news/1?utm_source=feed"
    assert first.canonical_url == "https://agency.example/fa/news/1"
    assert first.title == "بارش برف در تهران"
    assert first.content == "مدارس فردا تعطیل می‌شود.\n\nبند دو"
    assert "\u200c" in first.summary and first.summary == "مدارس تعطیل می‌شود."
    assert first.published_at == "2025-12-13T06:00:00Z"
    assert first.author == "دبیر"  # the first author that has a name
    assert first.categories == ("اجتماعی", "آب‌وهوا")
    assert first.image == "https://agency.example/img/1.jpg"
    assert first.language == "fa"


def test_json_feed_11_english_item() -> None:
    second = parse_json_feed(result(FEED_11), FEED_URL, 100).entries[1]
    assert second.url == "https://other.example/en/harbour"  # external_url when no url
    assert second.content == "The harbour reopened on Monday.\n\nShips are back."
    assert second.summary == ""
    assert second.published_at == "2025-06-01T10:00:00Z"  # date_modified, to the second
    assert second.author == "تحریریه"  # the feed's authors apply to items without their own
    assert second.image == "https://agency.example/img/banner.png"
    assert second.language == "en"


def test_json_feed_10_author_and_numeric_ids() -> None:
    parsed = parse_json_feed(result(FEED_10, "application/json"), FEED_URL, 100)
    first, second = parsed.entries
    assert parsed.language is None and parsed.link == "https://daily.example/"
    assert first.guid == "101" and first.identity == "guid:101"
    assert first.author == "Jane Roe" and second.author == "Feed Desk"
    assert first.published_at == "2025-06-01T14:00:00Z"
    # One text as both summary and content: the entry's content, no summary.
    assert first.content == "The budget passed." and first.summary == ""
    assert second.title == "" and second.content == "Hi"


def test_relative_urls_fall_back_to_feed_url_then_fetch_url() -> None:
    item = {"id": "a", "url": "news/a.html"}
    by_feed_url = feed(item, feed_url="https://agency.example/fa/feed.json")
    assert parse_json_feed(result(by_feed_url), FEED_URL, 10).entries[0].url == (
        "https://agency.example/fa/news/a.html"
    )
    by_fetch = parse_json_feed(result(feed(item)), FEED_URL, 10)
    assert by_fetch.entries[0].url == "https://cdn.agency.example/feeds/news/a.html"
    assert by_fetch.link is None


def test_javascript_and_data_urls_are_dropped() -> None:
    parsed = parse_json_feed(
        result(
            feed(
                {"id": "x", "url": "javascript:alert(1)", "image": "data:image/png;base64,AAAA"},
                {"id": "y", "url": "mailto:desk@agency.example", "title": "Mail"},
            )
        ),
        FEED_URL,
        10,
    )
    first, second = parsed.entries
    assert first.url is None and first.canonical_url is None and first.image is None
    assert first.identity == "guid:x"
    assert second.url is None


def test_repeated_ids_fall_back_to_url_then_hash() -> None:
    parsed = parse_json_feed(
        result(
            feed(
                {"id": "same", "url": "https://a.example/1", "title": "One"},
                {"id": "same", "url": "https://a.example/2", "title": "Two"},
                {"id": "same", "title": "Three", "content_text": "Body"},
                {"id": 5, "url": "https://a.example/5"},
            )
        ),
        FEED_URL,
        10,
    )
    one, two, three, five = parsed.entries
    assert one.identity == "url:https://a.example/1" and one.guid == "same"
    assert two.identity == "url:https://a.example/2"
    assert three.identity == entry_identity(None, None, "Three\n\nBody")
    assert three.identity.startswith("hash:")
    assert five.identity == "guid:5"


def test_missing_or_bad_dates_are_none() -> None:
    parsed = parse_json_feed(
        result(
            feed(
                {"id": "1"},
                {"id": "2", "date_published": "yesterday"},
                {"id": "3", "date_published": 1700000000},
                {"id": "4", "date_published": "2025-06-01t10:00:00z"},
                {"id": "5", "date_published": "2025-06-01T10:00:00"},
                {"id": "6", "date_published": "", "date_modified": "2025-06-02T00:00:00Z"},
            )
        ),
        FEED_URL,
        10,
    )
    dates = [entry.published_at for entry in parsed.entries]
    assert dates == [
        None,
        None,
        None,
        "2025-06-01T10:00:00Z",
        "2025-06-01T10:00:00Z",  # no offset: read as UTC
        "2025-06-02T00:00:00Z",
    ]


def test_items_that_are_not_objects_are_skipped() -> None:
    parsed = parse_json_feed(
        result(feed("text", 3, None, ["x"], {"id": "ok", "title": "Kept"})), FEED_URL, 10
    )
    assert [entry.guid for entry in parsed.entries] == ["ok"]
    assert parsed.total_entries == 1


def test_max_entries_cap() -> None:
    items = [{"id": str(n), "url": f"https://a.example/{n}"} for n in range(10)]
    parsed = parse_json_feed(result(feed(*items)), FEED_URL, 3)
    assert [entry.guid for entry in parsed.entries] == ["0", "1", "2"]
    assert parsed.total_entries == 10 and parsed.min_interval is None


def test_bom_and_http_version_are_accepted() -> None:
    body = (
        b"\xef\xbb\xbf\n "
        + json.dumps(
            {"version": "http://jsonfeed.org/version/1", "items": [{"id": "1", "title": "T"}]}
        ).encode()
    )
    parsed = parse_json_feed(result(body), FEED_URL, 10)
    assert parsed.title is None and parsed.entries[0].title == "T"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html><body>Not here</body></html>", "not JSON"),
        ('{"version": ', "not JSON"),
        ("", "empty body"),
        ("[1, 2, 3]", "no jsonfeed.org version"),
        ('{"name": "package", "version": "1.0.0"}', "no jsonfeed.org version"),
        ('{"items": []}', "no jsonfeed.org version"),
        ('{"version": "https://jsonfeed.org/version/1.1", "items": {"a": 1}}', "items list"),
        ('{"version": "https://jsonfeed.org/version/1.1"}', "items list"),
    ],
)
def test_not_a_json_feed(body: str, message: str) -> None:
    with pytest.raises(NotAFeed, match=message) as info:
        parse_json_feed(result(body), FEED_URL, 10)
    assert info.value.feed_url == FEED_URL


def test_deeply_nested_json_is_not_a_feed() -> None:
    with pytest.raises(NotAFeed, match="not JSON"):
        parse_json_feed(result("[" * 100_000 + "]" * 100_000), FEED_URL, 10)


def test_invalid_utf8_byte_does_not_lose_the_feed() -> None:
    body = b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": "caf\xe9"}]}'
    assert parse_json_feed(result(body), FEED_URL, 10).entries[0].title == "caf\ufffd"


def test_bad_byte_in_a_title_keeps_the_rest_of_the_feed() -> None:
    # A BOM, then a windows-1256 byte (0xC7, alef) and a truncated UTF-8 sequence in one title.
    doc = feed(
        {"id": "1", "url": "https://a.example/1", "title": "@@", "summary": "سلام"},
        {"id": "2", "url": "https://a.example/2", "title": "Second"},
        home_page_url="https://a.example/",
        language="ar",
    )
    raw = json.dumps(doc, ensure_ascii=False).encode()
    body = b"\xef\xbb\xbf" + raw.replace(b"@@", b"x\xc7 y\xd8")
    parsed = parse_json_feed(result(body), FEED_URL, 10)
    assert parsed.title == "Feed" and parsed.link == "https://a.example/"
    assert parsed.language == "ar" and parsed.total_entries == 2
    first, second = parsed.entries
    assert first.title == "x\ufffd y\ufffd"
    assert first.guid == "1" and first.url == "https://a.example/1" and first.summary == "سلام"
    assert second.title == "Second" and second.identity == "guid:2"


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"{}", "application/feed+json", True),
        (b"{}", "application/json; charset=utf-8", True),
        (b"\xef\xbb\xbf \n{}", None, True),
        (b"{}", "text/plain", True),
        (b"", "Application/Feed+JSON", True),
        (b"[]", "text/html", False),
        (b"<?xml version='1.0'?><rss/>", "application/json", False),
        (b"  <rss/>", None, False),
    ],
)
def test_looks_like_json_feed(body: bytes, content_type: str | None, expected: bool) -> None:
    assert looks_like_json_feed(result(body, content_type)) is expected
