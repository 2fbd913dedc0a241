"""Find the feed behind a URL a user gave: the feed itself, a feed the page links to
(``<link rel="alternate">``), or one at a common path (/feed, /rss.xml, ...)."""

from __future__ import annotations

import time

from pipeline.discover import candidate_urls, feed_links, looks_like_html
from pipeline.errors import FeedError, NotAFeed
from pipeline.fetch import Fetcher, FetchLimits
from pipeline.models import FetchResult
from pipeline.parse import parse_feed

# Enough to read a feed's first entries; a full parse is not needed to know it is a feed.
_PROBE_ENTRIES = 1


async def locate_feed(fetcher: Fetcher, url: str, limits: FetchLimits, budget: float) -> str:
    """The URL of the feed at or behind ``url``. Raises FeedError (NotAFeed when none found)."""
    deadline = time.monotonic() + budget
    page = await _get(fetcher, url, limits, deadline)
    if not looks_like_html(page.content_type, page.body):
        parse_feed(page, url, _PROBE_ENTRIES)  # raises NotAFeed with the reason
        return url
    linked = feed_links(page.body, page.final_url)
    tried: list[str] = []
    for candidate in [*linked, *candidate_urls(page.final_url)]:
        tried.append(candidate)
        if await _is_feed(fetcher, candidate, url, limits, deadline):
            return candidate
    raise NotAFeed(url, f"no feed linked from the page or at {len(tried)} common paths")


async def _is_feed(
    fetcher: Fetcher, candidate: str, origin: str, limits: FetchLimits, deadline: float
) -> bool:
    try:
        result = await _get(fetcher, candidate, limits, deadline)
        parse_feed(result, origin, _PROBE_ENTRIES)
    except FeedError:
        return False
    return True


async def _get(fetcher: Fetcher, url: str, limits: FetchLimits, deadline: float) -> FetchResult:
    return await fetcher.fetch_page(url, feed_url=url, limits=limits, deadline=deadline)
