"""Property targets over the pure edges that take hostile input: any input gives a typed result
or a feedpipe error (``FeedpipeError``), never another exception.

Each target is a hypothesis strategy and a check. ``tests/unit/test_properties.py`` runs every
target at hypothesis' default size on each test run; ``bench/fuzz.py`` runs them far longer
and reports how many cases each ran.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec
from hypothesis import strategies as st

from pipeline.dead_letters import StoredLetter, decode_letter
from pipeline.decode import decode_xml_body
from pipeline.errors import FeedpipeError
from pipeline.extract_stage import read_job
from pipeline.jsonfeed import parse_json_feed
from pipeline.keys import Keys
from pipeline.models import DeadLetter, Entry, ExtractJob, FeedRef, FetchResult, ParsedFeed
from pipeline.normalize import (
    absolute_url,
    canonical_url,
    clean_line,
    clean_text,
    html_to_text,
    normalize_for_matching,
)
from pipeline.parse import parse_feed
from pipeline.registry import parse_feeds_yaml, parse_opml
from pipeline.robots import RobotsPolicy, page_verdict, rules_from_body

FEED_URL = "https://agency.example/fa/rss"
MAX_ENTRIES = 50
KEYS = Keys()


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]


# --------------------------------------------------------------------------------- strategies

# Text as feeds carry it: any Unicode, with a bias to the scripts and marks this project serves.
_scripts = st.sampled_from(
    ["خبرگزاری", "می\u200cشود", "الرياض", "اردو", "Zürich", "<b>", "&amp;", "&#x200c;", "]]>"]
)
hostile_text = st.one_of(st.text(), st.lists(st.one_of(_scripts, st.text(max_size=8))).map("".join))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(hostile_text, inner, max_size=5),
    max_leaves=30,
)
content_types = st.sampled_from(
    [None, "application/rss+xml", "application/atom+xml", "text/xml", "text/html",
     "application/json", "application/feed+json", "application/octet-stream"]
)  # fmt: skip
charsets = st.sampled_from([None, "utf-8", "windows-1256", "iso-8859-1", "gb2312", "x-bogus"])


@st.composite
def rss_documents(draw: st.DrawFn) -> bytes:
    """RSS 2.0 / Atom skeletons with hostile text in every slot."""

    def slot() -> str:
        return str(draw(hostile_text))

    items = "".join(
        f"<item><title>{slot()}</title><link>{slot()}</link><guid>{slot()}</guid>"
        f"<description>{slot()}</description><pubDate>{slot()}</pubDate></item>"
        for _ in range(draw(st.integers(0, 4)))
    )
    rss = f'<?xml version="1.0" encoding="{slot()}"?><rss version="2.0"><channel>'
    rss += f"<title>{slot()}</title><link>{slot()}</link>{items}</channel></rss>"
    atom = f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{slot()}</title>'
    atom += f'<entry><id>{slot()}</id><link href="{slot()}"/><content type="html">{slot()}'
    atom += "</content></entry></feed>"
    document = draw(st.sampled_from([rss, atom]))
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "cp1256"]))
    return document.encode(encoding, errors="replace")


@st.composite
def fetch_results(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> FetchResult:
    return FetchResult(
        url=FEED_URL,
        final_url=FEED_URL,
        status=200,
        body=draw(bodies),
        content_type=draw(content_types),
        charset=draw(charsets),
    )


_json_item_fields = st.sampled_from(
    ["id", "url", "title", "content_html", "content_text", "date_published", "tags", "authors"]
)
_json_feed_fields = st.sampled_from(["title", "home_page_url", "language", "authors"])
json_feed_bodies = st.one_of(
    st.binary(),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda items, extra: json.dumps(
            {"version": "https://jsonfeed.org/version/1.1", "items": items} | extra
        ).encode(),
        st.lists(st.dictionaries(_json_item_fields, json_values), max_size=4),
        st.dictionaries(_json_feed_fields, json_values),
    ),
)
url_texts = st.one_of(
    st.text(),
    st.builds(
        lambda scheme, rest: f"{scheme}{rest}",
        st.sampled_from(["http://", "https://", "HTTP://", "javascript:", "//", "", "ftp://"]),
        st.text(),
    ),
)
feeds_files = st.one_of(
    st.binary(),
    hostile_text.map(lambda t: f"feeds:\n  - url: {t}\n".encode()),
    json_values.map(lambda v: json.dumps({"feeds": v}).encode()),  # YAML is a JSON superset
)
opml_files = st.one_of(
    st.binary(),
    st.builds(
        lambda title, url, depth: (
            "<opml><body>" + '<outline text="f">' * depth
            + f'<outline title="{title}" xmlUrl="{url}"/>' + "</outline>" * depth
            + "</body></opml>"
        ).encode(),
        hostile_text, hostile_text, st.integers(0, 30),
    ),
)  # fmt: skip

_GOOD_JOB = msgspec.to_builtins(
    ExtractJob(
        item_id="a" * 24,
        feed=FeedRef(id="f" * 16, url=FEED_URL, title=None),
        entry=Entry(identity="guid:1", title="t"),
        fetched_at="-",
        html_key=KEYS.html("a" * 24),
    )
)
# Extract messages: anything at all, and a good job with one field replaced by anything.
extract_messages = st.one_of(
    json_values,
    st.builds(
        lambda field, value: _GOOD_JOB | {field: value},
        st.sampled_from([*_GOOD_JOB, "unknown"]),
        json_values,
    ),
)

_GOOD_LETTER = msgspec.to_builtins(
    DeadLetter(item_id="a" * 24, attempts=3, reason="r", feed_id="f" * 16, identity="guid:1")
)
# Dead-letter stream entries: written by feedpipe, another version, another program or by hand.
dead_letter_fields = st.dictionaries(
    st.one_of(st.just(b"dead"), st.just("dead"), st.binary(max_size=8)),
    st.one_of(
        st.binary(),
        json_values.map(msgspec.json.encode),
        st.builds(
            lambda field, value: msgspec.json.encode(_GOOD_LETTER | {field: value}),
            st.sampled_from([*_GOOD_LETTER, "unknown"]),
            json_values,
        ),
    ),
    max_size=3,
)

# robots.txt as sites serve it: anything, and directive lines with hostile values.
robots_bodies = st.one_of(
    st.binary(),
    st.lists(
        st.tuples(
            st.sampled_from(["User-agent", "Disallow", "Allow", "Sitemap", "Crawl-delay", "x"]),
            hostile_text,
        ).map(lambda line: f"{line[0]}: {line[1]}"),
        max_size=12,
    ).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass")),
)

# -------------------------------------------------------------------------------------- checks


def _typed_or_feedpipe_error(call: Callable[[], Any], kind: type | tuple[type, ...]) -> None:
    try:
        result = call()
    except FeedpipeError:
        return
    assert isinstance(result, kind), type(result)


def check_parse_feed(result: FetchResult) -> None:
    _typed_or_feedpipe_error(lambda: parse_feed(result, FEED_URL, MAX_ENTRIES), ParsedFeed)


def check_parse_json_feed(result: FetchResult) -> None:
    _typed_or_feedpipe_error(lambda: parse_json_feed(result, FEED_URL, MAX_ENTRIES), ParsedFeed)


def check_urls(text: str) -> None:
    for url in (canonical_url(text), canonical_url(text, FEED_URL), absolute_url(text, FEED_URL)):
        assert url is None or urlsplit(url).scheme in ("http", "https")
    once = canonical_url(text, FEED_URL)
    if once is not None:  # the identity of an article does not move when taken again
        assert canonical_url(once) is not None


def check_text(text: str) -> None:
    for cleaned in (clean_text(text), clean_line(text), html_to_text(text)):
        assert isinstance(cleaned, str)
        assert "\x00" not in cleaned
    assert isinstance(normalize_for_matching(text), str)


def check_decode(body: bytes) -> None:
    decoded = decode_xml_body(body, None)
    decoded.text_bytes.decode("utf-8")  # always valid UTF-8


def check_feeds_yaml(raw: bytes) -> None:
    _typed_or_feedpipe_error(lambda: parse_feeds_yaml(raw, "fuzz.yaml"), list)


def check_opml(raw: bytes) -> None:
    _typed_or_feedpipe_error(lambda: parse_opml(raw, "fuzz.opml"), list)


def check_read_job(payload: Any) -> None:
    _typed_or_feedpipe_error(lambda: read_job(payload, KEYS), ExtractJob)


def check_decode_letter(fields: dict[Any, Any]) -> None:
    stored = decode_letter("1-0", fields)
    assert isinstance(stored, StoredLetter) and (stored.letter is None) == bool(stored.problem)


def check_robots(body: bytes) -> None:
    rules, policy = rules_from_body(body), RobotsPolicy(agent="feedpipe")
    for path in ("/", "/news/1", "/%E2%80%8C?a=1", "/*$"):
        verdict = page_verdict(rules, f"https://agency.example{path}", policy)
        assert verdict.refusal is None or isinstance(verdict.refusal, str)
        # The gap goes to Redis in whole milliseconds: finite, never negative, within the cap.
        assert 0.0 <= verdict.crawl_delay <= policy.max_crawl_delay_seconds


TARGETS = (
    Target("parse_feed", fetch_results(st.one_of(st.binary(), rss_documents())), check_parse_feed),
    Target("parse_json_feed", fetch_results(json_feed_bodies), check_parse_json_feed),
    Target("canonical_url", url_texts, check_urls),
    Target("clean_text", hostile_text, check_text),
    Target("decode_xml_body", st.one_of(st.binary(), rss_documents()), check_decode),
    Target("parse_feeds_yaml", feeds_files, check_feeds_yaml),
    Target("parse_opml", opml_files, check_opml),
    Target("read_job", extract_messages, check_read_job),
    Target("decode_letter", dead_letter_fields, check_decode_letter),
    Target("robots_txt", robots_bodies, check_robots),
)
