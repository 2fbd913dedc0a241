"""Routes: the feeds file's ``routes:`` section validated where it enters, and matching."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.models import Cluster, FeedInfo, Item
from pipeline.registry import load_feeds_document
from pipeline.routes import Route, RouteTable, RoutingTable, parse_routes


def item(
    language: str | None = "fa",
    tags: tuple[str, ...] = (),
    feed_url: str = "https://irna.example/rss",
    source: str | None = "IRNA",
    title: str = "T",
    text: str = "body",
) -> Item:
    return Item(
        id="i1",
        url="https://irna.example/1",
        canonical_url=None,
        feed=FeedInfo(url=feed_url, title="IRNA", tags=tags),
        source=source,
        title=title,
        author=None,
        published_at=None,
        fetched_at="2026-12-03T00:00:00Z",
        language=language,
        text=text,
        summary="",
        categories=(),
        image=None,
        extraction="trafilatura",
        content_hash="h",
        cluster=Cluster(id="i1"),
    )


def names(routes: list[dict[str, Any]], it: Item, feed_id: str = "f1") -> list[str]:
    table = RoutingTable(RouteTable(routes=parse_routes(routes, "test")))
    return [r.name for r in table.matching(it, feed_id)]


def test_every_condition_must_hold_and_any_listed_value_does() -> None:
    routes = [
        {"name": "persian", "languages": ["fa"]},
        {"name": "watch", "tags": ["monitoring", "gov"]},
        {"name": "by-feed", "feeds": ["https://irna.example/rss"]},
        {"name": "by-id", "feeds": ["f1"]},
        {"name": "irna-fa", "sources": ["IRNA"], "languages": ["fa", "ar"]},
        {"name": "oil", "match": "نفت|(?i)oil"},
        {"name": "everything"},
    ]
    assert names(routes, item()) == ["persian", "by-feed", "by-id", "irna-fa", "everything"]
    tagged = item(language="ar", tags=("gov",), feed_url="https://x.example/", text="OIL price")
    assert names(routes, tagged, "f2") == ["watch", "irna-fa", "oil", "everything"]
    assert names(routes, item(language=None, source=None, title="بازار نفت")) == [
        "by-feed",
        "by-id",
        "oil",
        "everything",
    ]


def test_a_regional_language_tag_matches_its_language() -> None:
    assert names([{"name": "persian", "languages": ["FA"]}], item(language="fa-IR")) == ["persian"]


def test_feed_urls_are_compared_without_credentials() -> None:
    routes = [{"name": "private", "feeds": ["https://user:secret@irna.example/rss"]}]
    [route] = parse_routes(routes, "test")
    assert route.feeds == ("https://irna.example/rss",)
    assert "secret" not in route.describe()
    assert names(routes, item()) == ["private"]


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"name": "x"}, "'routes:' must be a list"),
        (["x"], "routes[0]: expected a mapping"),
        ([{"name": "Bad Name"}], "routes[0].name: 'Bad Name' is not a route name"),
        ([{"name": "x", "language": ["fa"]}], "routes[0]: unknown field(s) language"),
        ([{"name": "x", "languages": ["farsi"]}], "'farsi' is not a language code"),
        ([{"name": "x", "tags": [1]}], "routes[0].tags: expected a list of non-empty strings"),
        ([{"name": "x", "match": "(?=a)b"}], "routes[0].match: not a valid RE2 pattern"),
        ([{"name": "x", "match": "(a)\\1"}], "routes[0].match: not a valid RE2 pattern"),
        ([{"name": "x", "match": "(\nx"}], "routes[0].match: not a valid RE2 pattern: 'missing"),
        ([{"name": "x", "match": "a" * 1001}], "routes[0].match: expected a pattern of 1 to"),
        ([{"name": "x"}, {"name": "x"}], "route name 'x' is given twice"),
        ([{"name": f"r{i}"} for i in range(65)], "65 routes, at most 64"),
    ],
)
def test_bad_routes_are_refused_naming_the_entry(routes: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^test: ") as raised:
        parse_routes(routes, "test")
    assert message in str(raised.value)


def test_a_pattern_that_backtracks_forever_elsewhere_runs_in_linear_time() -> None:
    hostile = item(text="a" * 200_000 + "!")
    start = time.monotonic()
    assert names([{"name": "x", "match": "(a+)+$"}], hostile) == []
    assert time.monotonic() - start < 5  # Python's re would not return for hours


def test_the_feeds_file_carries_routes(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(
        "feeds:\n  - url: https://a.example/rss\n"
        "routes:\n  - name: persian\n    languages: fa\n  - name: oil\n    match: نفت\n"
    )
    document = load_feeds_document(path)
    assert [s.url for s in document.specs] == ["https://a.example/rss"]
    assert document.routes == (
        Route(name="persian", languages=("fa",)),
        Route(name="oil", match="نفت"),
    )
    path.write_text("feeds:\n  - url: https://a.example/rss\n")
    assert load_feeds_document(path).routes is None  # the stored routes stay
    path.write_text("routes:\nfeeds:\n  - url: https://a.example/rss\n")
    assert load_feeds_document(path).routes == ()  # an empty section clears them
    path.write_text("feeds: []\nroutes:\n  - name: x\n    match: '(?<=a)'\n")
    with pytest.raises(ConfigError, match=r"feeds.yaml: routes\[0\].match: not a valid RE2"):
        load_feeds_document(path)
    path.write_text("feeds: []\nroutes: []\nroutes: []\n")
    with pytest.raises(ConfigError, match="'routes:' is given twice"):
        load_feeds_document(path)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
_route_like = st.fixed_dictionaries(
    {"name": st.text(max_size=10)},
    optional={
        "languages": _values,
        "tags": _values,
        "feeds": _values,
        "sources": _values,
        "match": st.text(max_size=30) | _values,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_route_like, max_size=4) | _values, st.text(max_size=200))
def test_any_routes_section_is_accepted_or_refused_with_config_error(raw: Any, text: str) -> None:
    try:
        routes = parse_routes(raw, "test")
    except ConfigError as exc:
        assert str(exc).startswith("test:") and "\n" not in str(exc)
        return
    table = RoutingTable(RouteTable(routes=routes))
    table.matching(item(text=text, title=text), "f1")  # matching never raises
