"""HTTP for feeds and article pages: guarded, polite, capped, with clear errors.

Every request hop (redirects are followed here, one by one) is checked by the SSRF guard
(``pipeline.netguard``), waits for a per-host politeness slot (``pipeline.politeness``), and
reads at most ``max_bytes`` of decompressed body. Every failure becomes a ``FeedError`` naming
the feed (and the page, for article fetches), so callers never catch aiohttp's own types.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from pipeline import page_store
from pipeline.errors import (
    BlockedDestination,
    ClientError,
    FeedError,
    FetchTimeout,
    HostBusy,
    NetworkError,
    PermanentError,
    RedirectError,
    ResponseTooLarge,
    ServerError,
    TLSError,
)
from pipeline.models import FeedState, FetchResult
from pipeline.netguard import DestinationRefused, GuardedResolver, NetworkPolicy
from pipeline.politeness import HostGate, NoSlot

_CHUNK = 64 * 1024
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})


# Request.before_hop: a hop's URL -> the gap its host asks for, or a FeedError.
HopCheck = Callable[[str], Awaitable[float]]


@dataclass(frozen=True)
class FetchLimits:
    """Timeouts and a body cap for one kind of request (feed, page, robots.txt)."""

    connect_timeout: float
    read_timeout: float
    max_bytes: int
    # A body past the cap fails (ResponseTooLarge), or, truncated, gives its first max_bytes:
    # robots.txt (RFC 9309, 2.5: parse at least the first 500 KiB, ignore the rest).
    truncate: bool = False

    @property
    def timeout(self) -> aiohttp.ClientTimeout:
        # total bounds a slow trickle too: sock_read alone restarts on every byte received.
        return aiohttp.ClientTimeout(
            total=self.connect_timeout + self.read_timeout,
            connect=self.connect_timeout,
            sock_read=self.read_timeout,
        )


def new_session(user_agent: str, network: NetworkPolicy) -> aiohttp.ClientSession:
    """One session per worker process, created inside its event loop (never before a fork)."""
    connector = aiohttp.TCPConnector(
        limit=100, limit_per_host=4, ttl_dns_cache=300, resolver=GuardedResolver(network)
    )
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": user_agent},
        # Cookies from one feed host must never leak into requests to another.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Proxies come from settings only, never from whatever environment a worker has.
        trust_env=False,
    )


@dataclass(frozen=True)
class Request:
    url: str
    feed_url: str  # the feed this request is for, named in every error
    limits: FetchLimits
    headers: Mapping[str, str]
    deadline: float  # monotonic; waiting for a politeness slot never goes past it
    form: Mapping[str, str] | None = None  # POSTed form-encoded when given (WebSub hubs)
    # The body as sent (Content-Encoding not undone, ``FetchResult.content_encoding``); the
    # cap then counts bytes as received, and whoever decodes it caps what it inflates to.
    encoded: bool = False
    # Called with each hop's URL before it is requested, redirects included (an article page's
    # robots.txt, like httpx's request hooks): it raises a FeedError to refuse the hop, or gives
    # the seconds the hop's host asks between requests (Crawl-delay; 0: the configured gap).
    before_hop: HopCheck | None = None


@dataclass(frozen=True)
class Fetcher:
    session: aiohttp.ClientSession
    network: NetworkPolicy
    gate: HostGate | None  # None only where no Redis is involved (unit tools)
    max_redirects: int
    # Requests in flight in this process, taken once the host's slot is granted: waiting for
    # a host's turn holds nothing another host could use.
    in_flight: asyncio.Semaphore

    async def fetch_feed(
        self, state: FeedState, limits: FetchLimits, deadline: float, *, conditional: bool
    ) -> FetchResult:
        """GET a feed (with its stored validators when ``conditional``); a 304 is a result."""
        headers = conditional_headers(state) if conditional else {"Accept": FEED_ACCEPT}
        return await self.get(Request(state.fetch_target, state.url, limits, headers, deadline))

    async def fetch_page(
        self,
        url: str,
        *,
        feed_url: str,
        limits: FetchLimits,
        deadline: float,
        encoded: bool = False,
        before_hop: HopCheck | None = None,
    ) -> FetchResult:
        """GET an HTML page. ``encoded``: keep the body as the server sent it, for storage (only
        the codings pipeline/page_store.py decodes are asked for). ``before_hop``: see
        ``Request``."""
        headers = {"Accept": PAGE_ACCEPT}
        if encoded:
            headers["Accept-Encoding"] = page_store.ACCEPT_ENCODING
        request = Request(
            url,
            feed_url,
            limits,
            headers,
            deadline,
            encoded=encoded,
            before_hop=before_hop,
        )
        return await self.get(request)

    async def post_form(
        self, url: str, form: Mapping[str, str], *, feed_url: str, limits: FetchLimits
    ) -> int:
        """POST a form (a WebSub hub request): guarded and polite like a GET, no redirect
        followed; the response's status."""
        deadline = time.monotonic() + (limits.timeout.total or 60.0)
        request = Request(url, feed_url, limits, {}, deadline, form=dict(form))
        async with self._response(request, url) as response:
            await response.content.read(limits.max_bytes)  # the hub's few words, drained
            return response.status

    async def get(self, request: Request) -> FetchResult:
        """Follow redirects hop by hop, each hop guarded and polite."""
        url, hops = request.url, list[tuple[int, str]]()
        for _ in range(self.max_redirects + 1):
            gap = 0.0 if request.before_hop is None else await request.before_hop(url)
            async with self._response(request, url, gap) as response:
                location = _redirect_target(response, request, url)
                if location is None:
                    return await _result(response, request, url, hops)
            if location in {request.url, *(target for _, target in hops)}:
                raise RedirectError(request.feed_url, f"redirect loop at {location}", url=url)
            hops.append((response.status, location))
            url = location
        raise RedirectError(
            request.feed_url, f"more than {self.max_redirects} redirects", url=request.url
        )

    @contextlib.asynccontextmanager
    async def _response(
        self, request: Request, url: str, gap: float = 0.0
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        feed_url = request.feed_url
        try:
            self.network.check_url(url)
            async with (
                self._slot(url, request.deadline, gap),
                self.in_flight,
                self.session.request(
                    "GET" if request.form is None else "POST",
                    url,
                    headers=request.headers,
                    data=request.form,
                    timeout=request.limits.timeout,
                    allow_redirects=False,
                    auto_decompress=not request.encoded,
                ) as response,
            ):
                yield response
        except FeedError:
            raise
        except DestinationRefused as exc:
            raise BlockedDestination(feed_url, str(exc), url=url) from exc
        except NoSlot as exc:
            raise HostBusy(feed_url, str(exc), url=url) from exc
        except TimeoutError as exc:
            limits = request.limits
            message = (
                f"timed out (connect {limits.connect_timeout:g}s, total {limits.timeout.total:g}s)"
            )
            raise FetchTimeout(feed_url, message, url=url) from exc
        except (aiohttp.ClientError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
            raise _classify(exc, feed_url, url) from exc

    def _slot(
        self, url: str, deadline: float, gap: float
    ) -> contextlib.AbstractAsyncContextManager[None]:
        if self.gate is None:
            return contextlib.nullcontext()
        return self.gate.slot(url, deadline, min_gap_seconds=gap)


def conditional_headers(state: FeedState) -> dict[str, str]:
    headers = {"Accept": FEED_ACCEPT}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _redirect_target(response: aiohttp.ClientResponse, request: Request, url: str) -> str | None:
    if response.status not in REDIRECTS:
        return None
    location = response.headers.get("Location")
    if not location:
        raise RedirectError(
            request.feed_url, f"HTTP {response.status} without a Location header", url=url
        )
    try:
        return str(response.url.join(URL(location)))
    except ValueError as exc:
        raise RedirectError(request.feed_url, f"bad Location {location!r}", url=url) from exc


async def _result(
    response: aiohttp.ClientResponse, request: Request, url: str, hops: list[tuple[int, str]]
) -> FetchResult:
    _raise_for_status(response, request.feed_url, url)
    body = b"" if response.status == 304 else await _read_capped(response, request, url)
    return FetchResult(
        url=request.url,
        final_url=str(response.url),
        status=response.status,
        body=body,
        etag=response.headers.get("ETag"),
        last_modified=response.headers.get("Last-Modified"),
        content_type=response.headers.get("Content-Type"),
        charset=response.charset,
        permanent_url=_permanent_target(hops),
        fresh_for=freshness_seconds(response.headers),
        hub_link=_link_header(response, "hub"),
        self_link=_link_header(response, "self"),
        content_encoding=response.headers.get("Content-Encoding") if request.encoded else None,
    )


def _link_header(response: aiohttp.ClientResponse, rel: str) -> str | None:
    """A ``Link: <url>; rel="..."`` target, made absolute (WebSub discovery)."""
    try:
        link = response.links.get(rel)
    except ValueError:  # a malformed header is no link
        return None
    url = link.get("url") if link else None
    return str(url) if url else None


def _permanent_target(hops: list[tuple[int, str]]) -> str | None:
    """The target of the leading run of permanent redirects: a 301 followed by a 302 means
    the feed moved to the 302's source, which is what a client should request from now on."""
    target = None
    for status, location in hops:
        if status not in PERMANENT_REDIRECTS:
            break
        target = location
    return target


def _raise_for_status(response: aiohttp.ClientResponse, feed_url: str, url: str) -> None:
    status = response.status
    if status < 400:
        return
    message = f"HTTP {status} {response.reason or ''}".strip()
    if status == 429 or status >= 500:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"), time.time())
        if retry_after is not None:
            message += f" (Retry-After {retry_after:g}s)"
        raise ServerError(feed_url, message, url=url, retry_after=retry_after, status=status)
    raise ClientError(feed_url, message, url=url, status=status)


async def _read_capped(response: aiohttp.ClientResponse, request: Request, url: str) -> bytes:
    """Read the body as aiohttp decompresses it, refusing to hold more than ``max_bytes``.

    Counting decompressed bytes is what stops a gzip/deflate/brotli bomb: a 10 KB response
    that inflates to gigabytes fails at the cap, after at most one chunk past it. An
    ``encoded`` request's body is counted as received; page_store.decode caps the rest."""
    limit = request.limits.max_bytes
    declared = response.content_length
    as_received = request.encoded or not response.headers.get("Content-Encoding")
    truncate = request.limits.truncate
    if declared is not None and declared > limit and as_received and not truncate:
        message = f"Content-Length {declared} exceeds the {limit}-byte cap"
        raise ResponseTooLarge(request.feed_url, message, url=url)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit and truncate:  # the rest is left unread: the connection is closed
            chunks.append(chunk[: len(chunk) - (size - limit)])
            break
        if size > limit:
            stage = "as received" if request.encoded else "after decompression"
            message = f"response larger than {limit} bytes ({stage})"
            raise ResponseTooLarge(request.feed_url, message, url=url)
        chunks.append(chunk)
    return b"".join(chunks)


def _response_message(exc: BaseException) -> str:
    return exc.message if isinstance(exc, aiohttp.ClientResponseError) else str(exc)


# aiohttp's and the OS's exceptions as feedpipe errors: the first row whose types match wins, so
# the most specific come first (aiohttp's ClientSSLError is a ClientConnectorError is an OSError;
# ContentTypeError is a ClientResponseError). A TLS failure is never retried unverified: a bad
# certificate is the server's to fix.
EXCEPTION_MAP: tuple[
    tuple[tuple[type[BaseException], ...], type[FeedError], Callable[[BaseException], str]], ...
] = (
    ((aiohttp.InvalidURL,), PermanentError, lambda e: f"invalid URL: {e}"),
    ((aiohttp.ClientSSLError, ssl.SSLError), TLSError, lambda e: f"TLS error: {e}"),
    (
        (aiohttp.ContentTypeError, aiohttp.ClientPayloadError),
        NetworkError,
        lambda e: f"broken response body: {e}",
    ),
    # aiohttp could not parse the response itself (bad headers, bad chunking).
    (
        (aiohttp.ClientResponseError,),
        NetworkError,
        lambda e: f"malformed HTTP response: {_response_message(e)}",
    ),
    (
        (aiohttp.ClientError, OSError, asyncio.IncompleteReadError),
        NetworkError,
        lambda e: f"connection failed: {type(e).__name__}: {e}",
    ),
)


def _classify(exc: BaseException, feed_url: str, url: str) -> FeedError:
    for types, error, message in EXCEPTION_MAP:
        if isinstance(exc, types):
            return error(feed_url, message(exc), url=url)
    return PermanentError(feed_url, f"bad request: {type(exc).__name__}: {exc}", url=url)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from ``now``: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def freshness_seconds(headers: CIMultiDictProxy[str]) -> float | None:
    """How long the server says this response stays fresh: Cache-Control max-age, else
    Expires minus Date. None when it says nothing (or no-store/no-cache: no promise)."""
    cache_control = headers.get("Cache-Control", "").lower()
    directives = dict(_directive(part) for part in cache_control.split(",") if part.strip())
    if "no-store" in directives or "no-cache" in directives:
        return None
    for name in ("s-maxage", "max-age"):
        if directives.get(name, "").isdigit():
            return float(directives[name])
    return _expires_minus_date(headers)


def _directive(part: str) -> tuple[str, str]:
    name, _, value = part.strip().partition("=")
    return name.strip(), value.strip().strip('"')


def _expires_minus_date(headers: CIMultiDictProxy[str]) -> float | None:
    try:
        expires = email.utils.parsedate_to_datetime(headers.get("Expires", ""))
        date = email.utils.parsedate_to_datetime(headers.get("Date", ""))
    except (TypeError, ValueError):
        return None  # "Expires: 0" and other invalid dates mean "already expired"
    return max(0.0, (expires - date).total_seconds())
