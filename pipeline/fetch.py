"""HTTP for feeds and article pages: conditional GET, size caps, clear errors.

Every failure becomes a ``FeedError`` naming the feed (and the page, for article fetches),
classified transient (retry later) or permanent, so callers never catch aiohttp's own types.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from pipeline.errors import (
    ClientError,
    FeedError,
    FetchTimeout,
    PermanentError,
    ResponseTooLarge,
    ServerError,
)
from pipeline.models import FeedState, FetchResult
from pipeline.settings import Settings

_CHUNK = 64 * 1024
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"
MAX_REDIRECTS = 10


@dataclass(frozen=True)
class FetchLimits:
    """Timeouts and a body cap for one kind of request (feed or page)."""

    connect_timeout: float
    read_timeout: float
    max_bytes: int

    @classmethod
    def for_feeds(cls, settings: Settings) -> FetchLimits:
        return cls(
            settings.connect_timeout_seconds, settings.read_timeout_seconds, settings.max_feed_bytes
        )

    @classmethod
    def for_pages(cls, settings: Settings) -> FetchLimits:
        return cls(
            settings.connect_timeout_seconds, settings.read_timeout_seconds, settings.max_page_bytes
        )

    @property
    def timeout(self) -> aiohttp.ClientTimeout:
        # total bounds a slow trickle too: sock_read alone restarts on every byte received.
        return aiohttp.ClientTimeout(
            total=self.connect_timeout + self.read_timeout,
            connect=self.connect_timeout,
            sock_read=self.read_timeout,
        )


def new_session(settings: Settings) -> aiohttp.ClientSession:
    """One session per worker process, created inside its event loop (never before a fork)."""
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=4, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": settings.user_agent},
        # Cookies from one feed host must never leak into requests to another.
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def conditional_headers(state: FeedState) -> dict[str, str]:
    headers = {"Accept": FEED_ACCEPT}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


async def fetch_feed(
    session: aiohttp.ClientSession, state: FeedState, limits: FetchLimits
) -> FetchResult:
    """GET a feed with its stored validators; a 304 comes back as a result, not an error."""
    return await fetch_url(
        session, state.url, feed_url=state.url, limits=limits, headers=conditional_headers(state)
    )


async def fetch_page(
    session: aiohttp.ClientSession, url: str, *, feed_url: str, limits: FetchLimits
) -> FetchResult:
    headers = {"Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"}
    return await fetch_url(session, url, feed_url=feed_url, limits=limits, headers=headers)


async def fetch_url(
    session: aiohttp.ClientSession,
    url: str,
    *,
    feed_url: str,
    limits: FetchLimits,
    headers: Mapping[str, str],
) -> FetchResult:
    try:
        async with session.get(
            url, headers=headers, timeout=limits.timeout, max_redirects=MAX_REDIRECTS
        ) as response:
            _raise_for_status(response, feed_url, url)
            body = b""
            if response.status != 304:
                body = await _read_capped(response, limits, feed_url, url)
            return FetchResult(
                url=url,
                final_url=str(response.url),
                status=response.status,
                body=body,
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
                content_type=response.headers.get("Content-Type"),
                charset=response.charset,
            )
    except FeedError:
        raise
    except TimeoutError as exc:
        raise FetchTimeout(feed_url, f"timed out after {limits.read_timeout:g}s", url=url) from exc
    except (aiohttp.ClientError, OSError, ValueError, asyncio.IncompleteReadError) as exc:
        raise _classify(exc, feed_url, url) from exc


def _raise_for_status(response: aiohttp.ClientResponse, feed_url: str, url: str) -> None:
    status = response.status
    if status < 400:
        return
    message = f"HTTP {status} {response.reason or ''}".strip()
    if status == 429 or status >= 500:
        raise ServerError(feed_url, message, url=url)
    raise ClientError(feed_url, message, url=url)


async def _read_capped(
    response: aiohttp.ClientResponse, limits: FetchLimits, feed_url: str, url: str
) -> bytes:
    """Read the (already decompressed) body, refusing to hold more than ``max_bytes``."""
    declared = response.content_length
    if declared is not None and declared > limits.max_bytes:
        raise ResponseTooLarge(feed_url, _too_large(declared, limits), url=url)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limits.max_bytes:
            raise ResponseTooLarge(feed_url, _too_large(size, limits), url=url)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limits: FetchLimits) -> str:
    return f"response larger than {limits.max_bytes} bytes (at least {size})"


def _classify(exc: BaseException, feed_url: str, url: str) -> FeedError:
    if isinstance(exc, aiohttp.TooManyRedirects):
        return PermanentError(feed_url, f"more than {MAX_REDIRECTS} redirects", url=url)
    if isinstance(exc, aiohttp.InvalidURL):
        return PermanentError(feed_url, f"invalid URL: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | ssl.SSLError):
        # Never retried without verification: a bad certificate is the server's to fix.
        return PermanentError(feed_url, f"TLS error: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ServerError(feed_url, f"broken response body: {exc}", url=url)
    if isinstance(exc, aiohttp.ClientError | OSError | asyncio.IncompleteReadError):
        return ServerError(feed_url, f"connection failed: {type(exc).__name__}: {exc}", url=url)
    return PermanentError(feed_url, f"bad request: {type(exc).__name__}: {exc}", url=url)
