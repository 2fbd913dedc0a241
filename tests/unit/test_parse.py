"""The feedparser adapter: RSS 2.0, Atom and RSS 1.0 into Entry values."""

from __future__ import annotations

import re
import time

import pytest

from pipeline.entries import entry_identity
from pipeline.errors import NotAFeed
from pipeline.models import FetchResult
from pipeline.parse import parse_feed

FEED_URL = "https://agency.example/fa/rss.xml"


def result(body: str, content_type: str = "application/rss+xml; charset=utf-8") -> FetchResult:
    return FetchResult(
        url=FEED_URL, final_url=FEED_URL, status=200, body=body.encode(), content_type=content_type
    )


RSS2 = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>خبرگزاری نمونه</title><link>https://agency.example/</link><language>fa</language>
<item><title>عنوان &lt;b&gt;اول&lt;/b&gt;</title><link>/fa/news/1?utm_source=rss</link>
 <guid isPermaLink="false">n-1</guid><pubDate>Sat, 13 Dec 2025 09:30:00 +0330</pubDate>
 <dc:creator>دبیر</dc:creator><category>سیاسی</category><category>سیاسی</category>
 <description>&lt;p&gt;خلاصه&lt;/p&gt;</description>
 <content:encoded><![CDATA[<p>بند یک</p><p>بند دو</p>]]></content:encoded>
 <enclosure url="/img/1.jpg" type="image/jpeg" length="1"/></item>
<item><title>No link</title><description>Only text here.</description></item>
<item><title>Bad link</title><link>javascript:alert(1)</link><guid>n-3</guid></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Loopback Daily</title>
<link href="https://daily.example/"/><id>urn:daily</id><updated>2025-06-01T10:00:00Z</updated>
<entry><title>Harbour reopens</title><id>urn:daily:1</id>
 <link rel="alternate" href="https://daily.example/en/news/harbour.html"/>
 <updated>2025-06-01T10:00:00Z</updated><author><name>Jane Roe</name></author>
 <summary>The harbour reopened.</summary></entry>
</feed>"""

RSS1 = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://ar.example/"><title>وكالة</title><link>https://ar.example/</link>
 <items><rdf:Seq><rdf:li resource="https://ar.example/ar/news/1.html"/></rdf:Seq></items></channel>
<item rdf:about="https://ar.example/ar/news/1.html"><title>خبر</title>
 <link>https://ar.example/ar/news/1.html</link><description>نص</description>
 <dc:date>2025-07-21T08:00:00Z</dc:date></item>
</rdf:RDF>"""


def test_rss2_entry_fields() -> None:
    feed = parse_feed(result(RSS2), FEED_URL, 100)
    assert feed.title == "خبرگزاری نمونه" and feed.language == "fa" and feed.problem is None
    first = feed.entries[0]
    assert first.title == "عنوان اول"
    assert first.url == "https://agency.example/fa/news/1?utm_source=rss"
    assert first.canonical_url == "https://agency.example/fa/news/1"
    assert first.identity == "guid:n-1"
    assert first.published_at == "2025-12-13T06:00:00Z"
    assert first.author == "دبیر"
    assert first.categories == ("سیاسی",)
    assert first.summary == "خلاصه"
    assert first.content == "بند یک\n\nبند دو"
    assert first.image == "https://agency.example/img/1.jpg"
    assert first.language == "fa"


def test_entries_without_usable_links_fall_back_to_content_identity() -> None:
    entries = parse_feed(result(RSS2), FEED_URL, 100).entries
    assert entries[1].url is None and entries[1].identity.startswith("hash:")
    # feedparser resolves a permalink GUID against the feed URL, like a link.
    assert entries[2].url is None and entries[2].identity == "guid:https://agency.example/fa/n-3"


def test_atom_and_rss1() -> None:
    atom = parse_feed(result(ATOM, "application/atom+xml"), FEED_URL, 100)
    assert [e.title for e in atom.entries] == ["Harbour reopens"]
    assert atom.entries[0].author == "Jane Roe"
    assert atom.entries[0].published_at == "2025-06-01T10:00:00Z"
    rdf = parse_feed(result(RSS1, "application/rdf+xml"), FEED_URL, 100)
    assert rdf.entries[0].url == "https://ar.example/ar/news/1.html"
    assert rdf.entries[0].identity == "guid:https://ar.example/ar/news/1.html"
    assert rdf.entries[0].published_at == "2025-07-21T08:00:00Z"


ATOM_FULL_TEXT = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Loopback Daily</title><id>urn:daily</id>
<updated>2025-06-01T10:00:00Z</updated>
<entry><title>Harbour reopens</title><id>urn:daily:1</id>
 <link href="https://daily.example/en/news/harbour.html"/><updated>2025-06-01T10:00:00Z</updated>
 <content type="html"><![CDATA[<p>The harbour reopened.</p><p>Ships came in.</p>]]></content>
</entry>
<entry><title>No link</title><updated>2025-06-01T10:00:00Z</updated>
 <content type="html"><![CDATA[<p>A story known only by its text.</p>]]></content>
</entry></feed>"""


def test_an_atom_entrys_only_content_is_its_content_not_a_summary() -> None:
    """feedparser copies an Atom entry's only <content> into its summary: the text is still
    the entry's content (a full-text feed is read as one), and it has no summary."""
    first, second = parse_feed(result(ATOM_FULL_TEXT, "application/atom+xml"), FEED_URL, 9).entries
    assert first.content == "The harbour reopened.\n\nShips came in." and first.summary == ""
    # An entry known by its text keeps the identity it had when the text stood as summary.
    text = "A story known only by its text."
    assert second.identity == entry_identity(None, None, f"No link\n{text}\n")


def test_repeated_guids_fall_back_to_urls() -> None:
    body = RSS2.replace("<guid>n-3</guid>", '<guid isPermaLink="false">n-1</guid>')
    entries = parse_feed(result(body), FEED_URL, 100).entries
    assert entries[0].identity == "url:https://agency.example/fa/news/1"


def test_entry_cap_per_poll() -> None:
    assert len(parse_feed(result(RSS2), FEED_URL, 2).entries) == 2


def test_malformed_but_readable_feed_keeps_entries_and_reports() -> None:
    broken = RSS2.replace("<title>No link</title>", "<title>Fish & chips</title>")
    feed = parse_feed(result(broken), FEED_URL, 100)
    assert len(feed.entries) == 3
    assert feed.problem is not None


@pytest.mark.parametrize("body", ["<html><body><p>Just a page</p></body></html>", "", '{"a": 1}'])
def test_not_a_feed(body: str) -> None:
    with pytest.raises(NotAFeed) as info:
        parse_feed(result(body, "text/html"), FEED_URL, 100)
    assert FEED_URL in str(info.value)


def test_entry_identity_chain() -> None:
    assert entry_identity("g", "https://x/1", "t") == "guid:g"
    assert entry_identity(None, "https://x/1", "t") == "url:https://x/1"
    assert entry_identity(None, None, "t").startswith("hash:")


XHTML_DOCTYPE = (
    '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">'
)


@pytest.mark.parametrize("content_type", ["application/rss+xml", "text/html", None])
@pytest.mark.parametrize(
    "head",
    [
        f'<?xml version="1.0" encoding="utf-8"?>\n{XHTML_DOCTYPE}\n',
        f"{XHTML_DOCTYPE}\n",
        f'\ufeff<?xml version="1.0"?>\n<!-- generated by CMS --><?xml-stylesheet href="/s.xsl"?>\n'
        f"{XHTML_DOCTYPE}\n",
        '<?xml version="1.0"?><!DOCTYPE html [<!ENTITY nbsp "&#160;"> <!ENTITY copy "&#169;">]>',
    ],
    ids=["prolog-xhtml-doctype", "xhtml-doctype", "bom-comment-pi-doctype", "internal-subset"],
)
def test_rss_under_an_html_doctype_is_a_feed(head: str, content_type: str | None) -> None:
    # Many CMS templates put an XHTML DOCTYPE on top of their RSS: the root element decides.
    body = head + RSS2[RSS2.index("<rss") :]
    fetched = FetchResult(
        url=FEED_URL,
        final_url=FEED_URL,
        status=200,
        body=body.encode("utf-8"),
        content_type=content_type,
    )

    feed = parse_feed(fetched, FEED_URL, 100)

    assert feed.title == "خبرگزاری نمونه"
    assert [e.title for e in feed.entries] == ["عنوان اول", "No link", "Bad link"]


@pytest.mark.parametrize(
    ("root", "doc"),
    [
        ("feed", ATOM[ATOM.index("<feed") :]),
        ("rdf:RDF", RSS1[RSS1.index("<rdf:RDF") :]),
    ],
)
def test_atom_and_rss1_under_an_html_doctype_are_feeds(root: str, doc: str) -> None:
    body = '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN">\n' + doc
    assert doc.startswith(f"<{root}")

    feed = parse_feed(result(body, "text/html"), FEED_URL, 100)

    assert len(feed.entries) == 1


def test_xhtml_page_is_still_an_html_page() -> None:
    page = (
        f'<?xml version="1.0" encoding="utf-8"?>\n{XHTML_DOCTYPE}\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Agency</title>'
        '<link rel="alternate" type="application/rss+xml" href="/fa/rss.xml"/></head>'
        "<body><p>News</p></body></html>"
    )
    with pytest.raises(NotAFeed, match=re.escape("links to the feed https://agency.example/fa/")):
        parse_feed(result(page, "application/xhtml+xml"), FEED_URL, 100)


@pytest.mark.parametrize(
    "body",
    [
        "<?a?>" * 2_000 + "!",
        "<!---->" * 1_200 + "!",
        "<!DOCTYPE" + "[" * 8_000,
        " " * 8_000 + "!",
        "<?" * 4_000,
    ],
)
def test_root_element_sniffing_does_not_backtrack(body: str) -> None:
    started = time.perf_counter()
    with pytest.raises(NotAFeed):
        parse_feed(result(body, "text/html"), FEED_URL, 100)
    assert time.perf_counter() - started < 2


def test_utf8_feed_with_a_stray_latin1_byte_keeps_its_accents() -> None:
    item = (
        "<item><title>Le tramway approuvé à l'unanimité</title>"
        "<description>Les travaux débuteront au printemps près de l'hôpital.</description></item>"
    )
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Région</title>'
        f"{item * 10}<item><title>Réunion au caf@@ du théâtre</title></item></channel></rss>"
    )
    fetched = FetchResult(
        url=FEED_URL,
        final_url=FEED_URL,
        status=200,
        body=document.encode().replace(b"@@", b"\xe9"),  # one latin-1 "é" in a UTF-8 feed
        content_type="application/rss+xml",
        charset="utf-8",
    )

    feed = parse_feed(fetched, FEED_URL, 100)

    assert feed.title == "Région"
    assert feed.entries[0].title == "Le tramway approuvé à l'unanimité"
    assert feed.entries[-1].title == "Réunion au caf\ufffd du théâtre"
