"""Feed autodiscovery: <link rel="alternate"> in pages, common feed paths, HTML sniffing."""

from __future__ import annotations

import pytest

from pipeline.discover import COMMON_FEED_PATHS, candidate_urls, feed_links, looks_like_html

PAGE = "https://agency.example/fa/news/index.html"


def test_relative_and_absolute_links_in_page_order() -> None:
    html = """<!doctype html><html><head><title>خبر</title>
    <link rel="stylesheet" href="/s.css">
    <link rel="alternate" type="application/rss+xml" title="RSS" href="/fa/rss.xml">
    <link rel="alternate" type="application/atom+xml" href="atom.xml">
    <link rel="alternate" type="application/feed+json" href="https://cdn.example/feed.json">
    <link rel="alternate" type="application/rss+xml" href="https://agency.example/fa/rss.xml">
    </head><body></body></html>"""
    assert feed_links(html, PAGE) == [
        "https://agency.example/fa/rss.xml",
        "https://agency.example/fa/news/atom.xml",
        "https://cdn.example/feed.json",
    ]


def test_base_href_is_honoured() -> None:
    html = """<html><head><base href="/blog/"><base href="https://ignored.example/">
    <link rel="alternate" type="application/rss+xml" href="feed.xml"></head></html>"""
    assert feed_links(html, PAGE) == ["https://agency.example/blog/feed.xml"]


def test_rel_tokens_case_and_type_parameters() -> None:
    html = """<HTML><HEAD>
    <LINK REL="Alternate Feed" TYPE="Application/RSS+XML; charset=utf-8" HREF="/a.xml">
    <link rel=" home  alternate " type="text/xml" href="/b.xml">
    <link rel="alternate stylesheet" type="text/css" href="/c.css">
    </HEAD></HTML>"""
    assert feed_links(html, PAGE) == [
        "https://agency.example/a.xml",
        "https://agency.example/b.xml",
    ]


def test_non_feed_alternates_and_bad_hrefs_are_ignored() -> None:
    html = """<html><head>
    <link rel="alternate" hreflang="en" href="https://agency.example/en/">
    <link rel="alternate" hreflang="ar" type="text/html" href="/ar/">
    <link rel="alternate" media="only screen" href="https://m.agency.example/">
    <link rel="alternate" type="application/rss+xml" href="javascript:void(0)">
    <link rel="alternate" type="application/rss+xml" href="ftp://agency.example/rss">
    <link rel="alternate" type="application/rss+xml">
    <link rel="alternate" type="application/rss+xml" href="">
    <link rel="feed" type="application/rss+xml" href="/not-alternate.xml">
    </head></html>"""
    assert feed_links(html, PAGE) == []


def test_broken_html_and_links_in_body() -> None:
    html = """<html><head><title>t</title></span><div><p>unclosed <b>
    <link rel=alternate type=application/rss+xml href=/feed/?lang=fa&amp;x=1>
    <table><tr><td><link rel="alternate" type="application/atom+xml" href="//cdn.example/a">
    <p>the page is cut off here, no closing tags"""
    assert feed_links(html, PAGE) == [
        "https://agency.example/feed/?lang=fa&x=1",
        "https://cdn.example/a",
    ]


def test_bytes_utf8_and_declared_charset() -> None:
    persian = '<link rel="alternate" type="application/rss+xml" href="/فید/خبر.xml">'
    assert feed_links(persian.encode(), PAGE) == ["https://agency.example/فید/خبر.xml"]
    latin = b'<meta charset="windows-1252"><link rel="alternate" type="text/xml" href="/caf\xe9">'
    assert feed_links(latin, PAGE) == ["https://agency.example/café"]


def test_xhtml_string_with_encoding_declaration() -> None:
    xhtml = """<?xml version="1.0" encoding="utf-8"?>
    <html xmlns="http://www.w3.org/1999/xhtml"><head>
    <link rel="alternate" type="application/atom+xml" href="/atom.xml"/></head></html>"""
    assert feed_links(xhtml, PAGE) == ["https://agency.example/atom.xml"]


@pytest.mark.parametrize("html", ["", "   ", b"", "<html><head></head><body>x</body></html>"])
def test_no_links(html: str | bytes) -> None:
    assert feed_links(html, PAGE) == []


def test_candidate_urls_use_the_origin() -> None:
    urls = candidate_urls("HTTP://User:pw@Blog.Example:8080/2025/06/post.html?x=1#top")
    assert urls[0] == "http://blog.example:8080/feed"
    assert urls == ["http://blog.example:8080" + path for path in COMMON_FEED_PATHS]
    assert candidate_urls("https://agency.example")[1] == "https://agency.example/rss"


def test_candidate_urls_not_http() -> None:
    assert candidate_urls("ftp://agency.example/") == []
    assert candidate_urls("/relative/page") == []
    assert candidate_urls("") == []


def test_common_feed_paths() -> None:
    assert 8 <= len(COMMON_FEED_PATHS) <= 12
    assert len(set(COMMON_FEED_PATHS)) == len(COMMON_FEED_PATHS)
    assert all(path.startswith("/") for path in COMMON_FEED_PATHS)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/html; charset=utf-8", b"<!DOCTYPE html><html><head>", True),
        (None, b"\n\n<!doctype html>\n<html lang='fa'>", True),
        ("application/xhtml+xml", b"<?xml version='1.0'?><html xmlns='...'>", True),
        ("text/xml", b"<html><body>oops</body></html>", True),
        ("text/html", b"<?xml version='1.0'?><rss version='2.0'><channel>", False),
        ("text/html", b"<feed xmlns='http://www.w3.org/2005/Atom'>", False),
        (None, b"<rdf:RDF xmlns:rdf='...'>", False),
        ("application/rss+xml", b"<?xml version='1.0'?><!-- <header> --><rss>", False),
        ("text/html", b"", True),
        ("Text/HTML", b"<div>fragment</div>", True),
        (None, b"<div>fragment</div>", False),
        ("application/json", b'{"version": "https://jsonfeed.org/version/1.1"}', False),
    ],
)
def test_looks_like_html(content_type: str | None, body: bytes, expected: bool) -> None:
    assert looks_like_html(content_type, body) is expected


def test_a_feed_under_an_xhtml_doctype_is_not_a_page() -> None:
    """`feeds add` of such a feed adds it, instead of looking for feed links in it."""
    body = (
        b'<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n<rss version="2.0"><channel>'
    )
    assert not looks_like_html("text/html", body)
    assert looks_like_html("text/html", b"<!DOCTYPE html><html><head>")
