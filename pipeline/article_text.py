"""Article page -> Article with trafilatura; the feed's own text when the page gives too little."""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass

import html5lib
import lxml.html
import trafilatura
from html5lib.constants import DataLossWarning
from lxml import etree
from trafilatura.settings import Document, Extractor

from pipeline.decode import codec_for_label
from pipeline.models import Article, Entry
from pipeline.normalize import clean_line, clean_text
from pipeline.page_store import DEFAULT_MAX_PAGE_BYTES

log = logging.getLogger(__name__)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/xml"})

# trafilatura deletes every character that is not str.isprintable(), and ZWNJ/ZWJ (category Cf)
# are not: "می‌نوشتند" would come out as "مینوشتند". We swap them for printable stand-ins that
# never occur in news text (Linear B syllables) before extraction and swap them back after.
_PROTECTED = {"\u200c": "\U00010000", "\u200d": "\U00010001"}
_PROTECT = str.maketrans(_PROTECTED)
_RESTORE = str.maketrans({v: k for k, v in _PROTECTED.items()})

# As trafilatura's own loader parses: without comments, which on some pages made it take the
# navigation for the article, and from bytes, since lxml refuses a str that starts with an XML
# declaration naming an encoding (<?xml version="1.0" encoding="ISO-8859-1"?>).
_PARSER = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, encoding="utf-8")


@dataclass(frozen=True)
class ExtractionPolicy:
    """When an extraction counts as good enough, and trafilatura's options (built once)."""

    min_text_chars: int
    max_page_bytes: int  # a stored page inflating past this is not read (page_store.decode)
    options: Extractor
    fallback: Extractor  # a second attempt when ``options`` give too little

    @classmethod
    def create(
        cls, min_text_chars: int, max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
    ) -> ExtractionPolicy:
        # Precision over recall and no comments: measured best F1 on real news pages
        # (research/extraction.md: 0.964 vs 0.953 for the defaults). No metadata: trafilatura
        # spent as long on it as on the text (its byline search deep-copies and prunes the
        # tree when a page has no author <meta>); page_metadata() reads what we use from the
        # <meta> tags instead (docs/performance.md: profile, before and after).
        options = Extractor(
            output_format="python",
            precision=True,
            comments=False,
            with_metadata=False,
            tables=False,
        )
        # Only for pages the precise setting fails (_extract_page): trafilatura's balanced setting,
        # which itself retries in recall mode when its result covers little of the page.
        fallback = Extractor(output_format="python", comments=False, with_metadata=False)
        return cls(min_text_chars, max_page_bytes, options=options, fallback=fallback)


def is_html(content_type: str | None) -> bool:
    """Whether a page's Content-Type can hold an article (absent: assume it can)."""
    if not content_type:
        return True
    kind = content_type.split(";")[0].strip().lower()
    return kind in _HTML_TYPES or kind.startswith("text/")


def extract_article(
    html: bytes | None, charset: str | None, entry: Entry, policy: ExtractionPolicy
) -> Article:
    """Main text and metadata of a page, or the feed entry's content if the page falls short."""
    if html:
        required = _required_chars(entry, policy)
        try:
            article = _page_article(_decode(html, charset), entry, policy, required)
        # trafilatura and lxml run on whatever a server sent; any failure of theirs on one page
        # must cost that page only: the feed's own text stands in, and the failure is logged.
        except Exception as exc:  # noqa: BLE001
            log.warning(
                "extraction failed, using the feed's text",
                extra={
                    "stage": "extract",
                    "entry_url": entry.url,
                    "reason": f"{type(exc).__name__}: {exc}",
                },
            )
            article = None
        if article is not None and len(article.text) >= required:
            return article
    return article_from_feed(entry)


def article_from_feed(entry: Entry) -> Article:
    """The item as the feed itself tells it: its full content if any, else its summary."""
    return Article(
        title=entry.title,
        text=clean_text(entry.content or entry.summary),
        extraction="feed",
        author=entry.author,
        published_at=entry.published_at,
        language=entry.language,
        image=entry.image,
    )


def _required_chars(entry: Entry, policy: ExtractionPolicy) -> int:
    # A page shorter than the feed's own full text lost something: prefer the feed then.
    return max(policy.min_text_chars, min(len(entry.content), 2 * policy.min_text_chars))


def _page_article(
    html: str, entry: Entry, policy: ExtractionPolicy, required: int
) -> Article | None:
    """The page's article as libxml2 reads the page, or, when that gives too little, as an
    HTML5 parser (the browsers' algorithm) does: libxml2 loses the article of some damaged
    pages that browsers show whole (docs/extraction.md)."""
    article = _extract_page(html, entry, policy, required)
    if article is not None and len(article.text) >= required:
        return article
    again = _extract_page(_as_browsers_read(html), entry, policy, required)
    if again is not None and (article is None or len(again.text) > len(article.text)):
        return again
    return article


def _as_browsers_read(html: str) -> str:
    """The page parsed by html5lib and written back out: markup libxml2 can follow."""
    with warnings.catch_warnings():  # what it coerces to fit XML names is no news in a log
        warnings.simplefilter("ignore", DataLossWarning)
        document = html5lib.parse(html, treebuilder="lxml", namespaceHTMLElements=False)
    return str(etree.tostring(document, encoding="unicode", method="html"))


def _extract_page(
    html: str, entry: Entry, policy: ExtractionPolicy, required: int
) -> Article | None:
    try:
        tree = lxml.html.document_fromstring(html.encode("utf-8", "replace"), parser=_PARSER)
    except (etree.ParserError, ValueError):
        return None
    language = _page_language(tree)
    meta = page_metadata(tree)  # before _protect_joiners: titles are compared unprotected
    if "\u200c" in html or "\u200d" in html:  # a walk over every node: only when needed
        _protect_joiners(tree)
    titles = {meta.title, meta.heading, entry.title}
    text = _main_text(tree, policy.options, titles)
    if len(text) < required:
        text = _fallback_text(tree, policy, titles, required)
    if not text:
        return None
    # The feed's title is what the publisher chose for syndication; the page's is a fallback.
    return Article(
        title=entry.title or meta.title or meta.heading,
        text=text,
        extraction="trafilatura",
        author=meta.author or entry.author,
        published_at=entry.published_at or _iso_day(meta.date[:10] if meta.date else None),
        language=language or entry.language,
        site_name=meta.site_name or None,
        image=meta.image or entry.image,
    )


def _fallback_text(
    tree: lxml.html.HtmlElement, policy: ExtractionPolicy, titles: set[str], required: int
) -> str:
    """Pages the precise setting leaves, mostly laid out in tables (which it drops whole): the
    balanced setting with tables read as blocks, which beats tables kept as tables ("| cell |"
    rows, a cell's paragraphs run together) and favor_recall (docs/extraction.md); still too
    short, with tables kept. bare_extraction works on a copy of the tree it is given."""
    blocks = copy.deepcopy(tree)
    _tables_to_blocks(blocks)
    text = _main_text(blocks, policy.fallback, titles)
    if len(text) >= required:
        return text
    kept = _main_text(tree, policy.fallback, titles)
    return kept if len(kept) > len(text) else text


def _main_text(tree: lxml.html.HtmlElement, options: Extractor, titles: set[str]) -> str:
    document = trafilatura.bare_extraction(tree, options=options)
    if not isinstance(document, Document) or not document.text:
        return ""
    text = clean_text(document.text.translate(_RESTORE))
    for title in titles:
        text = _drop_leading_title(text, title)
    return text


def _tables_to_blocks(tree: lxml.html.HtmlElement) -> None:
    for element in list(tree.iter("table", "thead", "tbody", "tfoot", "tr", "td", "th")):
        element.tag = "div"


@dataclass(frozen=True)
class PageMeta:
    """What an article page says about itself in its <head> (empty strings when absent)."""

    title: str
    heading: str  # the first <h1>
    author: str
    date: str
    site_name: str
    image: str | None


# The names publishers use, most specific first (Open Graph, article:, Dublin Core, schema.org
# itemprop, the plain HTML names).
_META_NAMES = {
    "title": ("og:title", "twitter:title", "dc.title"),
    "author": ("author", "article:author", "dc.creator", "byl", "sailthru.author"),
    "date": (
        "article:published_time",
        "og:published_time",
        "datepublished",
        "dc.date",
        "date",
        "pubdate",
    ),
    "site_name": ("og:site_name", "application-name"),
    "image": ("og:image", "og:image:url", "twitter:image"),
}


def page_metadata(tree: lxml.html.HtmlElement) -> PageMeta:
    found: dict[str, str] = {}
    for meta in tree.iter("meta"):
        key = meta.get("property") or meta.get("name") or meta.get("itemprop") or ""
        content = (meta.get("content") or "").strip()
        if key and content:
            found.setdefault(key.strip().lower(), content)

    def first(field: str) -> str:
        return next((found[name] for name in _META_NAMES[field] if name in found), "")

    author = first("author")
    heading = tree.find(".//h1")
    title_element = tree.find(".//title")
    return PageMeta(
        title=clean_line(first("title") or _text(title_element)),
        heading=clean_line(_text(heading)),
        # article:author is often the author's profile URL, not a name.
        author="" if "://" in author else clean_line(author),
        date=first("date"),
        site_name=clean_line(first("site_name")),
        image=first("image") or None,
    )


def _protect_joiners(tree: lxml.html.HtmlElement) -> None:
    for element in tree.iter():
        if element.text and ("\u200c" in element.text or "\u200d" in element.text):
            element.text = element.text.translate(_PROTECT)
        if element.tail and ("\u200c" in element.tail or "\u200d" in element.tail):
            element.tail = element.tail.translate(_PROTECT)
        for name, value in element.attrib.items():  # <meta content="..."> titles, site names
            if "\u200c" in value or "\u200d" in value:
                element.set(name, value.translate(_PROTECT))


def _text(element: lxml.html.HtmlElement | None) -> str:
    return element.text_content() if element is not None else ""


def _decode(html: bytes, charset: str | None) -> str:
    # The header's label read as browsers read it (iso-8859-1 is windows-1252, gb2312 is
    # gb18030, ...); an unknown or untrusted label: trafilatura's detection decides.
    codec = codec_for_label(charset)
    if codec is not None:
        return html.decode(codec, errors="replace")
    return trafilatura.utils.decode_file(html)


def _drop_leading_title(text: str, title: str) -> str:
    """trafilatura keeps the page's <h1> as the first line; the item has it as its title."""
    first, _, rest = text.partition("\n\n")
    return rest if title and rest and first == title else text


def _page_language(tree: lxml.html.HtmlElement) -> str | None:
    lang = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    return lang.strip().split("-")[0].lower() if lang and lang.strip() else None


def _iso_day(date: str | None) -> str | None:
    return f"{date}T00:00:00Z" if date and len(date) == 10 else None
