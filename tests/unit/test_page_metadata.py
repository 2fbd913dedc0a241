"""pipeline.article_text.page_metadata: what an article page says about itself in its <head>."""

from __future__ import annotations

import lxml.html

from pipeline.article_text import page_metadata


def meta_of(html: str):  # type: ignore[no-untyped-def]
    return page_metadata(lxml.html.document_fromstring(html))


def test_open_graph_and_article_tags_are_read() -> None:
    meta = meta_of(
        "<html><head><title>Ignored - Site</title>"
        '<meta property="og:title" content="  سه کشته در  سیل  ">'
        '<meta property="og:site_name" content="خبرگزاری نمونه">'
        '<meta name="author" content="مریم صالحی">'
        '<meta property="article:published_time" content="2025-12-13T09:30:00Z">'
        '<meta property="og:image" content="https://example.org/a.jpg">'
        "</head><body><h1>سه کشته در سیل</h1><p>متن</p></body></html>"
    )
    assert meta.title == "سه کشته در سیل"
    assert meta.heading == "سه کشته در سیل"
    assert meta.site_name == "خبرگزاری نمونه"
    assert meta.author == "مریم صالحی"
    assert meta.date == "2025-12-13T09:30:00Z"
    assert meta.image == "https://example.org/a.jpg"


def test_zwnj_in_metadata_is_kept() -> None:
    meta = meta_of('<html><head><meta property="og:title" content="می\u200cشود"></head></html>')
    assert meta.title == "می\u200cشود"


def test_the_first_of_several_names_wins_and_author_urls_are_not_names() -> None:
    meta = meta_of(
        "<html><head>"
        '<meta property="article:author" content="https://example.org/people/7">'
        '<meta name="twitter:image" content="https://example.org/t.jpg">'
        '<meta property="og:image" content="https://example.org/og.jpg">'
        "</head><body></body></html>"
    )
    assert meta.author == ""
    assert meta.image == "https://example.org/og.jpg"


def test_a_page_without_meta_tags_falls_back_to_title_and_h1() -> None:
    meta = meta_of("<html><head><title> A  headline </title></head><body><h1>Other</h1></body></html>")
    assert (meta.title, meta.heading, meta.site_name, meta.date, meta.image) == (
        "A headline",
        "Other",
        "",
        "",
        None,
    )
    assert meta_of("<html><body><p>no head at all</p></body></html>").title == ""
