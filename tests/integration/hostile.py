"""A hostile and broken feed server on 127.0.0.1: one path per case.

Each ``Case`` says what a poll of its feed must leave behind: the error recorded on the feed
(``error``: substrings of ``last_error``) or the items it must still publish (``titles``).
The cases are written here, in our own words; nothing is copied from real feeds.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import brotli
from aiohttp import web

from tests.integration.test_pipeline import WORDS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PERSIAN_WORDS = [
    "خبرگزاری",
    "گزارش",
    "شورای",
    "شهر",
    "تهران",
    "طرح",
    "تازه\u200cای",
    "حمل\u200cونقل",
    "عمومی",
    "تصویب",
    "مسئولان",
    "سال",
    "آینده",
    "اجرا",
    "می\u200cشود",
    "ایستگاه",
    "مترو",
    "جنوب",
    "پایتخت",
    "کارشناسان",
    "می\u200cگویند",
    "ترافیک",
    "چالش",
    "پروژه",
    "نیمه\u200cکاره",
    "بودجه",
    "گسترش",
    "ژرف",
    "پژوهش",
    "گفت\u200cوگو",
    "نمایندگان",
    "مجلس",
    "کشاورزان",
    "بازار",
]
RUSSIAN = (
    "Городской совет утвердил новый план развития общественного транспорта. По словам "
    "чиновников, работы начнутся весной, а несколько новых станций метро появятся на юге."
)
MAX_FEED_BYTES = 1024 * 1024  # the hostile run's FEEDPIPE_MAX_FEED_BYTES
MAX_ENTRIES = 5  # the hostile run's FEEDPIPE_MAX_ENTRIES_PER_POLL


def text(seed: str, words: int = 60) -> str:
    """Long enough to be published from the feed alone, and unlike any other case's text
    (made-up words: texts drawn from a small vocabulary would be near-duplicates)."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3))

    return " ".join(rng.choice(WORDS) if i % 4 == 0 else word() for i in range(words)) + "."


def persian(seed: str, words: int = 60) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(PERSIAN_WORDS) for _ in range(words)) + "."


# windows-1256 has no Persian yeh (U+06CC): feeds in it use the Arabic yeh, as here.
CP1256_TITLE = "خبر فوري از تهران"


def cp1256_text() -> str:
    return persian("cp1256").replace("ی", "ي")


def rss(title: str, items: list[str], *, prolog: str = '<?xml version="1.0"?>') -> str:
    return (
        f'{prolog}<rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://example.invalid/</link>{''.join(items)}</channel></rss>"
    )


def rss_item(
    title: str, body: str, *, link: str | None = None, guid: str | None = None, extra: str = ""
) -> str:
    parts = [f"<title>{title}</title>", f"<description>{body}</description>", extra]
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    return f"<item>{''.join(parts)}</item>"


def one_item_feed(case: str) -> str:
    return rss(case, [rss_item(f"{case} story", text(case), link=f"/{case}/story")])


@dataclass(frozen=True)
class Case:
    name: str
    handler: Handler
    error: tuple[str, ...] = ()  # substrings of the feed's recorded last_error
    titles: tuple[str, ...] = ()  # titles that must be published from this feed
    path_suffix: str = ""  # appended to /<name>, e.g. a query string
    server: str = "http"  # "https": untrusted certificate; "raw": answers garbage, not HTTP

    @property
    def path(self) -> str:
        return f"/{self.name}{self.path_suffix}"


def xml(body: str | bytes, content_type: str = "application/rss+xml", **headers: str) -> Handler:
    raw = body.encode() if isinstance(body, str) else body

    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=raw, headers={"Content-Type": content_type, **headers})

    return handler


def status(code: int, **headers: str) -> Handler:
    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text="nope", headers=headers)

    return handler


def redirect(code: int, location: str | Callable[[web.Request], str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        target = location(request) if callable(location) else location
        return web.Response(status=code, headers={"Location": target} if target else {})

    return handler


async def hang(_request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3600)  # never answers: the read timeout must fire
    raise AssertionError("unreachable")


async def slowloris(request: web.Request) -> web.StreamResponse:
    """Headers at once, then a byte every 0.3 s forever: each read succeeds, the total can't."""
    response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
    await response.prepare(request)
    await response.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
    while True:
        await asyncio.sleep(0.3)
        await response.write(b" ")


def bomb(encoding: str) -> Handler:
    """A few KB on the wire that inflate to 50 MB: the cap must apply after decompression."""
    inflated = b"<rss>" + b" " * (50 * 1024 * 1024)
    packed = {
        "gzip": lambda: gzip.compress(inflated, 9),
        "deflate": lambda: zlib.compress(inflated, 9),
        "br": lambda: brotli.compress(inflated, quality=5),
    }[encoding]()

    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=packed,
            headers={"Content-Type": "application/rss+xml", "Content-Encoding": encoding},
        )

    return handler


async def endless(request: web.Request) -> web.StreamResponse:
    """Chunked, no Content-Length, never ends on its own: the cap while streaming stops it."""
    response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
    await response.prepare(request)
    await response.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>')
    chunk = b"x" * 8192
    for _ in range(10_000):
        await response.write(chunk)
    return response


async def declared_huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "application/rss+xml", "Content-Length": str(10**9)}
    )
    await response.prepare(request)
    await response.write(b"<rss>")
    return response


async def cut_short(request: web.Request) -> web.StreamResponse:
    """Promises 5,000 bytes, sends 100, closes: a broken body, not a parse error."""
    response = web.StreamResponse(
        headers={"Content-Type": "application/rss+xml", "Content-Length": "5000"}
    )
    await response.prepare(request)
    await response.write(b'<?xml version="1.0"?><rss version="2.0"><channel>' + b" " * 50)
    assert request.transport is not None
    request.transport.close()
    return response


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE rss ['
    '<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + ']><rss version="2.0"><channel><title>laughs</title>'
    f"<item><title>laughs story</title><link>/laughs/1</link><description>&j; {text('laughs')}"
    "</description></item></channel></rss>"
)

XXE = (
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<rss version="2.0"><channel><title>xxe</title>'
    + rss_item("xxe story &xxe;", "&xxe; " + text("xxe"), link="/xxe/story")
    + "</channel></rss>"
)

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + b"\0" * 64


def thousands_of_entries() -> str:
    # Only the first MAX_ENTRIES are read: they alone need a text long enough to publish.
    items = [
        rss_item(
            f"bulk story {i}", text(f"bulk{i}", 60 if i < MAX_ENTRIES else 3), link=f"/bulk/{i}"
        )
        for i in range(3000)
    ]
    return rss("bulk", items)


def json_feed() -> bytes:
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "json feed",
            "home_page_url": "http://example.invalid/",
            "items": [
                {
                    "id": "jf-1",
                    "url": "/jsonfeed/story",
                    "title": "json feed story",
                    "content_text": text("jsonfeed"),
                    "date_published": "2026-11-20T10:00:00Z",
                }
            ],
        }
    ).encode()


def cases() -> list[Case]:
    relative = rss(
        "relative",
        [rss_item("relative story", text("relative"), link="../relative-story?id=1")],
    )
    return [
        # --- timeouts ---------------------------------------------------------------------
        Case("hang", hang, error=("FetchTimeout",)),
        Case("slowloris", slowloris, error=("FetchTimeout",)),
        # --- size caps ------------------------------------------------------------------
        Case("gzip-bomb", bomb("gzip"), error=("ResponseTooLarge", "after decompression")),
        Case("deflate-bomb", bomb("deflate"), error=("ResponseTooLarge",)),
        Case("brotli-bomb", bomb("br"), error=("ResponseTooLarge",)),
        Case("endless", endless, error=("ResponseTooLarge",)),
        Case("declared-huge", declared_huge, error=("ResponseTooLarge",)),
        # --- broken transport -----------------------------------------------------------
        Case("cut-short", cut_short, error=("NetworkError", "broken response body")),
        # --- redirects ------------------------------------------------------------------
        Case("loop", redirect(302, "/loop-b"), error=("RedirectError", "redirect loop")),
        Case("loop-b", redirect(302, "/loop"), error=("RedirectError", "redirect loop")),
        Case(
            "chain",
            redirect(302, lambda r: f"/chain?n={int(r.query.get('n', '0')) + 1}"),
            error=("RedirectError", "more than 5 redirects"),
        ),
        Case("no-location", redirect(301, ""), error=("RedirectError", "without a Location")),
        Case(
            "to-file",
            redirect(302, "file:///etc/passwd"),
            error=("BlockedDestination", "only http and https"),
        ),
        Case(
            "to-metadata",
            redirect(302, "http://169.254.169.254/latest/meta-data/"),
            error=("BlockedDestination", "link-local"),
        ),
        Case(
            "to-private",
            redirect(302, "http://10.1.2.3/feed"),
            error=("BlockedDestination", "private", "FEEDPIPE_ALLOW_PRIVATE_NETWORKS"),
        ),
        Case(
            "to-other-loopback",
            redirect(302, lambda r: f"http://127.0.0.2:{r.url.port}/moved"),
            error=("BlockedDestination", "loopback"),
        ),
        # --- TLS and HTTP itself ----------------------------------------------------------
        Case("tls", xml(one_item_feed("tls")), error=("TLSError",), server="https"),
        Case("garbage-http", xml(""), error=("NetworkError",), server="raw"),
        # --- statuses -------------------------------------------------------------------
        Case("gone", status(410), error=("ClientError", "HTTP 410")),
        Case("missing", status(404), error=("ClientError", "HTTP 404")),
        Case("server-error", status(500), error=("ServerError", "HTTP 500")),
        Case(
            "rate-limited",
            status(429, **{"Retry-After": "7200"}),
            error=("ServerError", "HTTP 429", "Retry-After 7200s"),
        ),
        Case(
            "unavailable",
            status(503, **{"Retry-After": "Fri, 01 Jan 2100 00:00:00 GMT"}),
            error=("ServerError", "HTTP 503", "Retry-After"),
        ),
        # --- not feeds ------------------------------------------------------------------
        Case(
            "html-page",
            xml(
                '<!doctype html><html><head><link rel="alternate" '
                'type="application/rss+xml" href="/real/feed.xml"></head><body>hi</body></html>',
                "text/html",
            ),
            error=("NotAFeed", "HTML page", "/real/feed.xml"),
        ),
        Case("image", xml(PNG, "image/png"), error=("NotAFeed",)),
        Case(
            "plain-json",
            xml(b'{"status": "ok", "items": [1, 2]}', "application/json"),
            error=("NotAFeed", "JSON"),
        ),
        Case("empty", xml(b""), error=("NotAFeed", "empty")),
        Case("binary", xml(bytes(range(256)) * 8, "application/octet-stream"), error=("NotAFeed",)),
        # --- XML attacks: refused or defused, never expanded --------------------------------
        Case("laughs", xml(BILLION_LAUGHS), titles=("laughs story",)),
        Case("xxe", xml(XXE), titles=("xxe story",)),
        # --- broken but readable: the news still gets out -----------------------------------
        Case(
            "malformed",
            xml(
                rss(
                    "malformed",
                    [rss_item("malformed story & more", text("malformed"), link="/m/1")],
                )
            ),
            titles=("malformed story & more",),
            error=("malformed feed (entries kept)",),
        ),
        Case(
            "cp1256-undeclared",
            xml(rss("fa", [rss_item(CP1256_TITLE, cp1256_text(), link="/fa/1")]).encode("cp1256")),
            titles=(CP1256_TITLE,),
        ),
        Case(
            "cp1251-prolog",
            xml(
                rss(
                    "ru",
                    [rss_item("Новости города", RUSSIAN + " " + RUSSIAN, link="/ru/1")],
                    prolog='<?xml version="1.0" encoding="windows-1251"?>',
                ).encode("cp1251"),
                "text/xml",
            ),
            titles=("Новости города",),
        ),
        Case(
            "utf8-bom",
            xml(
                b"\xef\xbb\xbf"
                + rss("bom", [rss_item("بیانیه‌ی تازه", persian("bom"), link="/b/1")]).encode()
            ),
            titles=("بیانیه‌ی تازه",),
        ),
        Case(
            "utf8-as-latin1",
            xml(
                rss("mis", [rss_item("گزارش ویژه", persian("latin"), link="/l/1")]).encode(),
                "application/rss+xml; charset=iso-8859-1",
            ),
            titles=("گزارش ویژه",),
        ),
        Case(
            "same-guid",
            xml(
                rss(
                    "same-guid",
                    [
                        rss_item(f"same guid {i}", text(f"sg{i}"), link=f"/sg/{i}", guid="x")
                        for i in range(3)
                    ],
                )
            ),
            titles=("same guid 0", "same guid 1", "same guid 2"),
        ),
        Case(
            "no-guid",
            xml(rss("no-guid", [rss_item("no guid story", text("ng"), link="/ng/1")])),
            titles=("no guid story",),
        ),
        Case("relative", xml(relative), titles=("relative story",)),
        Case(
            "bulk",
            xml(thousands_of_entries()),
            titles=tuple(f"bulk story {i}" for i in range(MAX_ENTRIES)),
        ),
        Case(
            "no-links",
            xml(rss("no-links", [rss_item("story without a link", text("nolink"))])),
            titles=("story without a link",),
        ),
        Case(
            "script-links",
            xml(
                rss(
                    "script-links",
                    [
                        rss_item("javascript link", text("js"), link="javascript:alert(1)"),
                        rss_item("data link", text("data"), link="data:text/html,hi"),
                    ],
                )
            ),
            titles=("javascript link", "data link"),
        ),
        Case(
            "jsonfeed",
            xml(json_feed(), "application/feed+json"),
            titles=("json feed story",),
        ),
        Case(
            "moved",
            redirect(301, "/moved-here"),
            titles=("moved story",),
        ),
    ]


async def garbage_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers any request with something that is not HTTP."""
    await reader.read(1024)
    writer.write(b"HELLO THIS IS NOT HTTP\r\n\x00\x01\x02\r\n\r\n")
    await writer.drain()
    writer.close()


def make_app(all_cases: list[Case]) -> web.Application:
    app = web.Application()
    for case in all_cases:
        app.router.add_get(f"/{case.name}", case.handler)
    app.router.add_get("/moved-here", xml(one_item_feed("moved")))
    return app
