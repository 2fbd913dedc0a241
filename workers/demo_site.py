"""A loopback news site for `feedpipe demo` and the integration tests.

Three outlets publish RSS 2.0, Atom 1.0 and RSS 1.0 feeds whose items link to article pages
laid out like real news pages: navigation, breadcrumb, related and most-read boxes, share
buttons, a newsletter form and a footer around the story. trafilatura must take exactly the
story's paragraphs out of that chrome; tests/unit/test_demo_site.py holds the site to it.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import string
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from aiohttp import web
from aiohttp.typedefs import Handler

FeedFormat = Literal["rss2", "atom", "rss1"]

FIXTURE_RELATIVE = Path("..", "shared", "fixtures", "seed-ilna.txt")
FIXTURE_SLUG = "north-korea-kursk-engineers"
RTL_LANGUAGES = frozenset({"fa", "ar", "he", "ur"})
CONTENT_TYPES: dict[FeedFormat, str] = {
    "rss2": "application/rss+xml",
    "atom": "application/atom+xml",
    "rss1": "application/rdf+xml",
}


@dataclass(frozen=True)
class DemoArticle:
    slug: str  # URL path segment, ascii
    title: str
    paragraphs: tuple[str, ...]
    author: str | None
    published: datetime  # tz-aware UTC
    summary: str  # short plain-text summary used in the feed


@dataclass
class DemoFeed:
    path: str  # e.g. "/fa/rss.xml"
    format: FeedFormat
    title: str
    site_name: str  # outlet name (og:site_name on the article pages)
    language: str  # "fa", "en", "ar"
    articles: list[DemoArticle]  # any order: feeds list them newest first
    full_content: bool = False  # entries carry the whole article (content:encoded, Atom content)


class NewsSite:
    """The site's mutable state: its feeds, a request log, and paths forced to fail."""

    def __init__(self, feeds: list[DemoFeed]) -> None:
        self.feeds: dict[str, DemoFeed] = {feed.path: feed for feed in feeds}
        self.requests: Counter[str] = Counter()
        self.fail_paths: dict[str, tuple[int, bytes]] = {}

    def add_article(self, feed_path: str, article: DemoArticle) -> None:
        # Validators are derived from the rendered feed on every request, so appending is
        # enough to change the feed's ETag (and Last-Modified when the article is the newest).
        self.feeds[feed_path].articles.append(article)

    def article_path(self, feed_path: str, slug: str) -> str:
        # Keyed by language, not by feed: a story in two feeds of one outlet has one URL.
        return f"/{self.feeds[feed_path].language}/news/{slug}.html"

    def find_article(self, path: str) -> tuple[DemoFeed, DemoArticle] | None:
        for feed in self.feeds.values():
            for article in feed.articles:
                if self.article_path(feed.path, article.slug) == path:
                    return feed, article
        return None

    def render_feed(self, feed_path: str, origin: str) -> bytes:
        feed = self.feeds[feed_path]
        newest_first = sorted(feed.articles, key=lambda a: a.published, reverse=True)
        items = [(a, origin + self.article_path(feed_path, a.slug)) for a in newest_first]
        return FEED_RENDERERS[feed.format](feed, origin, items).encode("utf-8")

    def render_page(self, feed: DemoFeed, article: DemoArticle, origin: str) -> str:
        related = {
            other.title: self.article_path(f.path, other.slug)
            for f in self.feeds.values()
            if f.language == feed.language
            for other in f.articles
            if other.slug != article.slug
        }
        url = origin + self.article_path(feed.path, article.slug)
        return article_page_html(feed, article, url, related)


# --- feeds ---------------------------------------------------------------------------------

Item = tuple[DemoArticle, str]  # an article and its absolute URL


def _x(text: str) -> str:
    return escape(text, quote=True)  # also right for XML: &#x27; and &quot; are both valid


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _guid(feed: DemoFeed, article: DemoArticle) -> str:
    return f"urn:feedpipe-demo:{feed.language}:{article.slug}"


def _newest(feed: DemoFeed) -> datetime | None:
    return max((a.published for a in feed.articles), default=None)


def _optional(template: str, value: str | None) -> str:
    return template.format(_x(value)) if value else ""


ATOM_CONTENT = '<content type="html">{}</content>'
# The pages' and feeds' markup, one file each: workers/demo/templates/ (string.Template, values
# escaped here before they are put in).
_TEMPLATES = {
    path.name: string.Template(path.read_text("utf-8"))
    for path in (importlib.resources.files("workers") / "demo" / "templates").iterdir()
}


def _full_content(template: str, feed: DemoFeed, article: DemoArticle) -> str:
    """The whole article as escaped HTML in ``template``, for a full-content feed."""
    if not feed.full_content:
        return ""
    return template.format(_x("".join(f"<p>{_x(p)}</p>" for p in article.paragraphs)))


def _rss2(feed: DemoFeed, origin: str, items: list[Item]) -> str:
    entries = "".join(
        _TEMPLATES["rss2_item.xml"].substitute(
            title=_x(a.title),
            link=_x(link),
            guid=_x(_guid(feed, a)),
            published=_rfc822(a.published),
            summary=_x(a.summary),
            content=_full_content("<content:encoded>{}</content:encoded>", feed, a),
            author=_optional("<dc:creator>{}</dc:creator>", a.author),
        )
        for a, link in items
    )
    newest = _newest(feed)
    return _TEMPLATES["rss2.xml"].substitute(
        title=_x(feed.title),
        origin=_x(origin),
        site_name=_x(feed.site_name),
        language=_x(feed.language),
        built=f"<lastBuildDate>{_rfc822(newest)}</lastBuildDate>" if newest else "",
        self_url=_x(origin + feed.path),
        entries=entries,
    )


def _atom(feed: DemoFeed, origin: str, items: list[Item]) -> str:
    entries = "".join(
        _TEMPLATES["atom_entry.xml"].substitute(
            title=_x(a.title),
            guid=_x(_guid(feed, a)),
            link=_x(link),
            published=_iso(a.published),
            summary=_x(a.summary),
            content=_full_content(ATOM_CONTENT, feed, a),
            author=_optional("<author><name>{}</name></author>", a.author),
        )
        for a, link in items
    )
    # Atom requires an author on every entry; the feed-level one covers unsigned stories.
    return _TEMPLATES["atom.xml"].substitute(
        language=_x(feed.language),
        title=_x(feed.title),
        self_url=_x(origin + feed.path),
        origin=_x(origin),
        updated=_iso(_newest(feed) or datetime(2025, 1, 1, tzinfo=UTC)),
        site_name=_x(feed.site_name),
        entries=entries,
    )


def _rss1(feed: DemoFeed, origin: str, items: list[Item]) -> str:
    entries = "".join(
        _TEMPLATES["rss1_item.xml"].substitute(
            link=_x(link),
            title=_x(a.title),
            summary=_x(a.summary),
            published=_iso(a.published),
            author=_optional("<dc:creator>{}</dc:creator>", a.author),
        )
        for a, link in items
    )
    return _TEMPLATES["rss1.xml"].substitute(
        self_url=_x(origin + feed.path),
        title=_x(feed.title),
        origin=_x(origin),
        site_name=_x(feed.site_name),
        language=_x(feed.language),
        sequence="".join(f'<rdf:li rdf:resource="{_x(link)}"/>' for _, link in items),
        entries=entries,
    )


FEED_RENDERERS: dict[FeedFormat, Callable[[DemoFeed, str, list[Item]], str]] = {
    "rss2": _rss2,
    "atom": _atom,
    "rss1": _rss1,
}


# --- article pages -------------------------------------------------------------------------


def article_page_html(
    feed: DemoFeed, article: DemoArticle, url: str, related: dict[str, str]
) -> str:
    """A news page around the story (workers/demo/templates/article.html); ``related`` maps
    headlines to paths on the same site."""
    chrome = CHROME.get(feed.language, CHROME["en"])
    section = zlib.crc32(article.slug.encode()) % len(SECTION_SLUGS)  # stable per story
    return _TEMPLATES["article.html"].substitute(
        lang=_x(feed.language),
        dir="rtl" if feed.language in RTL_LANGUAGES else "ltr",
        **_head(feed, article, url, SECTION_SLUGS[section]),
        **_chrome_fields(feed, chrome, section, related),
        **_story(article, chrome, url),
    )


def _head(feed: DemoFeed, article: DemoArticle, url: str, section: str) -> dict[str, str]:
    return {
        "title": _x(article.title),
        "site_name": _x(feed.site_name),
        "summary": _x(article.summary),
        "author_meta": _optional('<meta name="author" content="{}">\n', article.author),
        "url": _x(url),
        "feed_type": CONTENT_TYPES[feed.format],
        "feed_path": _x(feed.path),
        "published_iso": _iso(article.published),
        "section": section,
        "json_ld": _json_ld(feed, article, url),
        "style": STYLE,
        "analytics": ANALYTICS_STUB,
        "tracked": _script_json({"section": section, "slug": article.slug}),
        "tail_script": TAIL_SCRIPT,
    }


def _json_ld(feed: DemoFeed, article: DemoArticle, url: str) -> str:
    publisher = {"@type": "Organization", "name": feed.site_name}
    author = {"@type": "Person", "name": article.author} if article.author else publisher
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "description": article.summary,
        "inLanguage": feed.language,
        "datePublished": _iso(article.published),
        "mainEntityOfPage": url,
        "author": author,
        "publisher": publisher,
    }
    return f'<script type="application/ld+json">{_script_json(data)}</script>'


def _script_json(data: object) -> str:
    # A "</script>" or "<!--" in a headline would break out of the <script> element; JSON's
    # \u escapes carry the same strings without a single markup character.
    text = json.dumps(data, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _links(pairs: Iterable[tuple[str, str]], css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return "".join(f'<li{cls}><a href="{_x(href)}">{_x(text)}</a></li>' for href, text in pairs)


def _sections(feed: DemoFeed, chrome: Chrome) -> list[tuple[str, str]]:
    return list(
        zip((f"/{feed.language}/{s}/" for s in SECTION_SLUGS), chrome.sections, strict=True)
    )


def _chrome_fields(
    feed: DemoFeed, chrome: Chrome, section: int, related: dict[str, str]
) -> dict[str, str]:
    """Everything on the page around the story: navigation, breadcrumb, sidebar, newsletter,
    footer, in the outlet's language."""
    archive = {h: f"/{feed.language}/news/archive-{n}.html" for n, h in enumerate(chrome.headlines)}
    # The site's other stories first, then filler headlines: always five related links.
    picks = [(href, title) for title, href in {**related, **archive}.items()][:5]
    pages = zip((f"/{feed.language}/{p}.html" for p in FOOTER_PAGES), chrome.footer, strict=True)
    # Breadcrumb links only, never the headline: a plain-text crumb would be one more line
    # that can leak into the extracted text.
    sections = _sections(feed, chrome)
    crumbs = [("/", chrome.home), sections[section]]
    return {
        "home": _x(chrome.home),
        "nav": _links(sections, "nav-item"),
        "crumbs": _links(crumbs),
        "related": _x(chrome.related),
        "related_links": _links(picks),
        "most_read": _x(chrome.most_read),
        "most_read_links": _links([(href, title) for title, href in archive.items()][3:8]),
        "newsletter": _x(chrome.newsletter),
        "newsletter_text": _x(chrome.newsletter_text),
        "email": _x(chrome.email),
        "subscribe": _x(chrome.subscribe),
        "footer_links": _links(pages),
        "footer_sections": _links(sections),
        "rights": _x(chrome.rights),
    }


def _story(article: DemoArticle, chrome: Chrome, url: str) -> dict[str, str]:
    # Title and byline live in the article's <header>, the story alone in its body <div>:
    # trafilatura drops <time> and author-classed elements, so neither date nor name leaks.
    shares = ((f"https://share.invalid/{s}?url={quote(url, safe='')}", s) for s in SHARE_TO)
    return {
        "byline": _optional(f'<span class="author">{_x(chrome.by)} {{}}</span> · ', article.author),
        "published_label": _x(chrome.published),
        "published_text": f"{article.published:%Y-%m-%d %H:%M}",
        "body": "\n".join(f"<p>{_x(paragraph)}</p>" for paragraph in article.paragraphs),
        "share": _x(chrome.share),
        "shares": _links(shares, "share"),
    }


def _index(site: NewsSite) -> str:
    feeds = "".join(
        f'<li><a href="{_x(f.path)}">{_x(f.title)}</a> ({_x(f.site_name)}, {f.format})</li>'
        for f in site.feeds.values()
    )
    return _TEMPLATES["index.html"].substitute(feeds=feeds)


# --- HTTP ----------------------------------------------------------------------------------

SITE = web.AppKey("site", NewsSite)


def make_app(site: NewsSite) -> web.Application:
    app = web.Application(middlewares=[_count_and_fail])
    app[SITE] = site
    app.router.add_get("/", _index_page)
    app.router.add_get("/{lang}/news/{slug}.html", _article_page)
    # Feeds are looked up per request, so feeds added to site.feeds later are served too.
    app.router.add_get("/{path:.*}", _feed)
    return app


@web.middleware
async def _count_and_fail(request: web.Request, handler: Handler) -> web.StreamResponse:
    # A middleware sees every request, unknown paths included, before any route does.
    site = request.app[SITE]
    site.requests[request.path] += 1
    failure = site.fail_paths.get(request.path)
    if failure is not None:
        return web.Response(status=failure[0], body=failure[1])
    return await handler(request)


async def _index_page(request: web.Request) -> web.Response:
    return web.Response(text=_index(request.app[SITE]), content_type="text/html")


async def _article_page(request: web.Request) -> web.Response:
    site = request.app[SITE]
    found = site.find_article(request.path)
    if found is None:
        raise web.HTTPNotFound()
    html = site.render_page(*found, str(request.url.origin()))
    return web.Response(text=html, content_type="text/html")


async def _feed(request: web.Request) -> web.Response:
    site = request.app[SITE]
    feed = site.feeds.get(request.path)
    if feed is None:
        raise web.HTTPNotFound()
    body = site.render_feed(feed.path, str(request.url.origin()))
    etag = hashlib.sha256(body).hexdigest()[:32]
    newest = _newest(feed)
    last_modified = newest.replace(microsecond=0) if newest else None  # HTTP dates: seconds
    if not_modified(request, etag, last_modified):
        response = web.Response(status=304)
    else:
        response = web.Response(body=body, content_type=CONTENT_TYPES[feed.format])
        response.charset = "utf-8"
    response.etag = etag
    if last_modified is not None:
        response.last_modified = last_modified
    return response


def not_modified(request: web.Request, etag: str, last_modified: datetime | None) -> bool:
    # RFC 9110 13.1.3: If-None-Match, when present, decides alone (weak comparison).
    tags = request.if_none_match
    if tags is not None:
        return any(tag.value in (etag, "*") for tag in tags)
    since = request.if_modified_since
    return since is not None and last_modified is not None and since >= last_modified


# --- fixture and demo feeds ----------------------------------------------------------------

_FIXTURE_HEADER = re.compile(r"date\s+(\d{4})-(\d{2})-(\d{2})\b")


def find_fixture(start: Path | None = None) -> Path | None:
    """The shared seed article, looked up relative to `start`, else to the repo root and cwd."""
    bases = [start] if start is not None else [Path(__file__).resolve().parents[1], Path.cwd()]
    for base in bases:
        candidate = (base / FIXTURE_RELATIVE).resolve()
        if candidate.is_file():
            return candidate
    return None


def read_fixture(path: Path) -> DemoArticle:
    """`date YYYY-MM-DD agency`, the title, a blank line, then blank-line separated paragraphs."""
    lines = path.read_text(encoding="utf-8").lstrip("\ufeff \t\r\n").splitlines()
    header = _FIXTURE_HEADER.match(lines[0].strip("\ufeff \t")) if lines else None
    if header is None or len(lines) < 3:
        raise ValueError(f"{path}: expected 'date YYYY-MM-DD <agency>', a title, then paragraphs")
    body = "\n".join(lines[2:])
    paragraphs = tuple(p.strip() for p in re.split(r"\n\s*\n", body) if p.strip())
    if not paragraphs:
        raise ValueError(f"{path}: no paragraphs after the title")
    year, month, day = (int(part) for part in header.groups())
    return DemoArticle(
        slug=FIXTURE_SLUG,
        title=lines[1].strip(),
        paragraphs=paragraphs,
        author=None,
        published=datetime(year, month, day, 9, 30, tzinfo=UTC),
        summary=summarize(paragraphs[0]),
    )


def summarize(text: str, limit: int = 200) -> str:
    """The text cut at the last word boundary within `limit` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0] if " " in text[:limit] else text[:limit]
    return cut.rstrip(" ,،;؛:") + "…"


def demo_feeds(fixture: Path | None) -> list[DemoFeed]:
    """The demo's three outlets; the shared seed article replaces one Persian story if found."""
    persian = [read_fixture(fixture) if fixture else FA_BOOKS, FA_WATER]
    return [
        DemoFeed("/fa/rss.xml", "rss2", FA_FEED, FA_SITE, "fa", persian),
        DemoFeed("/en/atom.xml", "atom", EN_FEED, EN_SITE, "en", [EN_FERRY, EN_LIBRARY]),
        DemoFeed("/ar/rdf.xml", "rss1", AR_FEED, AR_SITE, "ar", [AR_SOLAR, AR_HERITAGE]),
    ]


# --- texts: page chrome and stories, all written for this demo -----------------------------

# `~` marks a zero-width non-joiner (U+200C) in the Persian texts below: the real character is
# invisible in most editors, and Persian spelling needs it ("می‌شود", not "میشود").
ZWNJ = "\u200c"


def _z(text: str) -> str:
    return text.replace("~", ZWNJ)


def _demo_article(
    slug: str, title: str, author: str | None, published: datetime, paragraphs: tuple[str, ...]
) -> DemoArticle:
    body = tuple(_z(p) for p in paragraphs)
    return DemoArticle(slug, _z(title), body, author, published, summarize(body[0]))


@dataclass(frozen=True)
class Chrome:
    """Everything on an outlet's pages that is not the story, in the outlet's language."""

    home: str
    sections: tuple[str, ...]  # labels for SECTION_SLUGS
    by: str
    published: str
    related: str
    most_read: str
    share: str
    newsletter: str
    newsletter_text: str
    email: str
    subscribe: str
    footer: tuple[str, ...]  # labels for FOOTER_PAGES
    rights: str
    headlines: tuple[str, ...]  # filler for the related and most-read boxes


SECTION_SLUGS = (
    "politics",
    "economy",
    "society",
    "world",
    "culture",
    "sport",
    "science",
    "regions",
    "photo",
    "video",
)
FOOTER_PAGES = ("about", "contact", "advertise", "privacy", "terms", "jobs", "archive", "rss")
SHARE_TO = ("telegram", "whatsapp", "x", "facebook", "email")
FA_SITE, FA_FEED = "خبرگزاری نمونه پارس", "نمونه پارس - آخرین اخبار"
EN_SITE, EN_FEED = "Loopback Daily", "Loopback Daily: Top Stories"
AR_SITE, AR_FEED = "وكالة الأنباء التجريبية", "وكالة الأنباء التجريبية - آخر الأخبار"

# The outlets' chrome and stories are package data (workers/demo/), "~" standing for a ZWNJ.
DEMO_DATA = importlib.resources.files("workers") / "demo"


def _data(name: str) -> Any:
    return json.loads((DEMO_DATA / name).read_text("utf-8"))


def _chrome(fields: dict[str, Any]) -> Chrome:
    values: dict[str, Any] = {
        name: tuple(_z(v) for v in value) if isinstance(value, list) else _z(value)
        for name, value in fields.items()
    }
    return Chrome(**values)


CHROME: dict[str, Chrome] = {lang: _chrome(fields) for lang, fields in _data("chrome.json").items()}

ANALYTICS_STUB = (
    "window.dataLayer = window.dataLayer || [];\n"
    "function track() { window.dataLayer.push(arguments); }\n"
)
# Real pages load their trackers late; this stub keeps the markup honest without any network.
TAIL_SCRIPT = (
    "<script>(function () { var s = document.createElement('script'); s.async = true;\n"
    "s.src = '/static/analytics.js'; document.head.appendChild(s); })();</script>"
)

STORIES: dict[str, DemoArticle] = {
    slug: _demo_article(
        slug=slug,
        title=story["title"],
        author=story["author"],
        published=datetime.fromisoformat(story["published"]),
        paragraphs=tuple(story["paragraphs"]),
    )
    for slug, story in _data("stories.json").items()
}
FA_WATER = STORIES["dashtabad-water-pipeline"]
FA_BOOKS = STORIES["tehran-book-fair-opens"]
EN_FERRY = STORIES["harbour-ferry-timetable"]
EN_LIBRARY = STORIES["library-reading-room-reopens"]
AR_SOLAR = STORIES["solar-desalination-plant"]
AR_HERITAGE = STORIES["folk-heritage-festival"]

STYLE = "\n" + (DEMO_DATA / "style.css").read_text("utf-8")
