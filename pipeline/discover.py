"""Feed autodiscovery, pure functions (no I/O): which URLs of a web page may be its feeds.

A page announces its feeds with ``<link rel="alternate" type="application/rss+xml" href=...>``;
a page that announces none may still have one at a well-known path (``candidate_urls``).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from pipeline.normalize import absolute_url

# Media types that mark a rel="alternate" link as a feed. Generic XML is included because older
# CMSs announce RSS as text/xml; an HTML page in another language (hreflang) is text/html.
FEED_TYPES = frozenset(
    [
        "application/rss+xml",
        "application/atom+xml",
        "application/feed+json",
        "application/json",
        "application/rdf+xml",
        "application/rss+rdf",
        "application/xml",
        "text/xml",
    ]
)

# Paths to probe when a page links no feed, most common first: WordPress, generic, Jekyll and
# most static generators, Hugo, Blogger, then the JSON Feed convention.
COMMON_FEED_PATHS = (
    "/feed",
    "/rss",
    "/feed.xml",
    "/rss.xml",
    "/atom.xml",
    "/index.xml",
    "/feed/",
    "/rss/",
    "/feeds/posts/default",
    "/feed.json",
)

HTML_TYPES = frozenset(["text/html", "application/xhtml+xml"])
# The first tag that tells an HTML page from a feed (or a feed served as text/html).
_FIRST_TAG = re.compile(rb"<(!doctype\s+html|html|head|body|rss|feed|rdf:rdf)[\s>/]", re.I)
_HTML_TAGS = (b"!doctype", b"html", b"head", b"body")
_SNIFF_BYTES = 2048
_XML_DECLARATION = re.compile(r"\s*<\?xml[^>]*encoding", re.I)


def feed_links(html: bytes | str, base_url: str) -> list[str]:
    """The feed URLs a page announces, absolute and http(s) only, in page order, no repeats."""
    root = _parse_html(html)
    if root is None:
        return []
    base = _document_base(root, base_url)
    urls = (absolute_url(link.get("href"), base) for link in root.iter("link") if _is_feed(link))
    return list(dict.fromkeys(url for url in urls if url))


def candidate_urls(page_url: str) -> list[str]:
    """``COMMON_FEED_PATHS`` on the page's origin (scheme://host[:port]); [] if not http(s)."""
    parts = urlsplit(page_url.strip())
    host = parts.netloc.rpartition("@")[2].lower()  # never carry credentials along
    if parts.scheme.lower() not in ("http", "https") or not host:
        return []
    origin = f"{parts.scheme.lower()}://{host}"
    return [origin + path for path in COMMON_FEED_PATHS]


# The root element's name, past a UTF-8 BOM, the XML declaration, processing instructions,
# comments and a DOCTYPE (internal subset included). Every alternative is unambiguous, so a
# hostile body cannot make the match backtrack exponentially.
_ROOT_ELEMENT = re.compile(
    rb"(?:\xef\xbb\xbf)?"
    rb"(?:\s|<\?(?:[^?]|\?(?!>))*\?>|<!--(?:[^-]|-(?!->))*-->|<!doctype(?:[^\[>]|\[[^\]]*\])*>)*"
    rb"<([A-Za-z_][\w:.-]*)",
    re.IGNORECASE,
)
# rss, Atom's feed, RSS 1.0's rdf:RDF: local names, whatever prefix the document binds.
_FEED_ROOTS = frozenset({b"rss", b"feed", b"rdf"})
_ROOT_SNIFF_BYTES = 8192


def looks_like_html(content_type: str | None, body: bytes) -> bool:
    """Whether a response is a web page (to look for feed links in) rather than a feed.

    A feed's root element (rss, feed, rdf:RDF) decides first: a DOCTYPE only names the template
    the CMS started from, and many put an XHTML DOCTYPE on top of their RSS. Then the first tag
    decides: servers label feeds as text/html and pages as text/xml. Otherwise the content type.
    """
    root = _ROOT_ELEMENT.match(body[:_ROOT_SNIFF_BYTES])
    if root is not None and root.group(1).rpartition(b":")[2].lower() in _FEED_ROOTS:
        return False
    match = _FIRST_TAG.search(body[:_SNIFF_BYTES])
    if match:
        return match.group(1).lower().startswith(_HTML_TAGS)
    return (content_type or "").split(";", 1)[0].strip().lower() in HTML_TYPES


def _parse_html(html: bytes | str) -> lxml.html.HtmlElement | None:
    if isinstance(html, bytes):
        try:
            # Most pages are UTF-8; bytes would be read as Latin-1 when no <meta charset> says so.
            html = html.decode("utf-8")
        except UnicodeDecodeError:
            return _parse_document(html)  # lxml finds the page's declared charset itself
    if not html.strip():
        return None
    if _XML_DECLARATION.match(html):
        # lxml refuses a str that declares its encoding (XHTML); the str is UTF-8 once encoded.
        # A parser of its own: lxml parsers must not be shared between threads.
        return _parse_document(html.encode("utf-8"), lxml.html.HTMLParser(encoding="utf-8"))
    return _parse_document(html)


def _parse_document(
    html: bytes | str, parser: lxml.html.HTMLParser | None = None
) -> lxml.html.HtmlElement | None:
    try:
        if parser is None:
            return lxml.html.document_fromstring(html)
        return lxml.html.document_fromstring(html, parser=parser)
    except (etree.ParserError, ValueError):  # empty or unreadable document
        return None


def _document_base(root: lxml.html.HtmlElement, page_url: str) -> str:
    """The page URL, or the first ``<base href>`` (itself relative to the page URL)."""
    for base in root.iter("base"):
        href = base.get("href")
        if href:
            return absolute_url(href, page_url) or page_url
    return page_url


def _is_feed(link: lxml.html.HtmlElement) -> bool:
    rel = (link.get("rel") or "").lower().split()
    media_type = (link.get("type") or "").split(";", 1)[0].strip().lower()
    return "alternate" in rel and media_type in FEED_TYPES
