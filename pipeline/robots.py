"""robots.txt (RFC 9309) before an article page is fetched.

A feed is fetched because a user subscribed to it: feeds are not checked, as no feed reader
checks them. An article page is fetched because a feed linked to it, which is crawling, so its
site's robots.txt decides. A page robots.txt disallows is not fetched; the item is made from the
feed's own text, as for a page that failed.

Each fetch process keeps every origin's rules for a day (RFC 9309 caps caching at 24 hours).
The robots.txt request goes through the same guard and politeness as a page, and one request
serves every page of the origin waiting for it. How a fetch that did not give rules counts
(RFC 9309, 2.3.1):

- 4xx, too many redirects: "unavailable", so everything is allowed;
- 5xx, 429, a timeout, a network or TLS error: "unreachable". The rules fetched before, if any,
  still serve; else nothing is allowed. Either way robots.txt is asked again after 10 minutes.

Of a robots.txt larger than 512 KiB, the whole lines within the first 512 KiB are read and the
rest is ignored (RFC 9309, 2.5). Parsing is protego's, Scrapy's robots.txt parser: wildcards,
``$``, the longest match, and groups chosen by product token, as RFC 9309 specifies.

``Crawl-delay`` is not in the RFC, but the crawlers sites write it for read it (Bing, Yandex,
Common Crawl, Apache Nutch): the seconds it asks become the gap before the next request to the
host after each article page, when longer than FEEDPIPE_HOST_MIN_GAP_SECONDS, up to 30 s
(Nutch's default cap, ``fetcher.max.crawl.delay``) so that one site cannot stall its pages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from pipeline.errors import FeedError, HostBusy, TLSError, TransientError
from pipeline.fetch import Fetcher, FetchLimits, Request

ROBOTS_ACCEPT = "text/plain, */*;q=0.5"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RobotsPolicy:
    agent: str  # the product token robots.txt groups are matched against ("feedpipe")
    max_bytes: int = 512 * 1024  # RFC 9309: at least 500 KiB must be parsed
    cache_seconds: float = 86_400.0
    unreachable_seconds: float = 600.0
    max_origins: int = 10_000  # rules kept in a process; the least recently used go first
    max_crawl_delay_seconds: float = 30.0  # a longer Crawl-delay is read as this

    def crawl_gap(self, crawl_delay: float | None) -> float:
        """The gap kept for a Crawl-delay: within the cap, never negative ("-0" parses)."""
        return max(0.0, min(crawl_delay or 0.0, self.max_crawl_delay_seconds))


@dataclass(frozen=True)
class RobotsRules:
    """What one origin's robots.txt allows: its rules, everything, or nothing (``refusal``)."""

    parser: Protego | None = None
    refusal: str | None = None  # why nothing is allowed: robots.txt was unreachable

    def refuses(self, url: str, agent: str) -> str | None:
        """Why ``url`` may not be fetched, or None if it may."""
        if self.refusal is not None:
            return self.refusal
        if self.parser is not None and not self.parser.can_fetch(url, agent):
            return "disallowed by robots.txt"
        return None

    def crawl_delay(self, agent: str) -> float | None:
        """Crawl-delay of ``agent``'s group, in seconds (protego drops negative and NaN ones)."""
        return None if self.parser is None else self.parser.crawl_delay(agent)


@dataclass(frozen=True)
class PageVerdict:
    """What a page's site's robots.txt says of fetching it."""

    refusal: str | None  # why it may not be fetched; None: it may
    crawl_delay: float = 0.0  # seconds the host asks between requests (0: none, capped)


ALLOW_ALL = RobotsRules()


def agent_token(user_agent: str) -> str:
    """The product token of a User-Agent ("feedpipe/0.1 (+https://…)" -> "feedpipe")."""
    token = user_agent.split("/", 1)[0].strip().split(" ", 1)[0]
    return token or "*"


def origin_of(url: str) -> str:
    """scheme://host[:port] of ``url``, without userinfo: robots.txt is per origin."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def rules_from_body(body: bytes) -> RobotsRules:
    # Undecodable bytes stand for themselves; a rule they break matches nothing.
    return RobotsRules(parser=Protego.parse(body.decode("utf-8", "replace")))


def page_verdict(rules: RobotsRules, url: str, policy: RobotsPolicy) -> PageVerdict:
    return PageVerdict(
        rules.refuses(url, policy.agent), policy.crawl_gap(rules.crawl_delay(policy.agent))
    )


def _whole_lines(body: bytes, max_bytes: int) -> bytes:
    """A body cut at the cap without its last, partial line ("Disallow: /private" cut to
    "Disallow: /pri" would refuse other paths)."""
    return body[: body.rfind(b"\n") + 1] if len(body) >= max_bytes else body


def rules_from_error(error: FeedError) -> RobotsRules:
    """RFC 9309, 2.3.1.3-4: "unavailable" allows everything, "unreachable" nothing."""
    if isinstance(error, TransientError | TLSError):
        return RobotsRules(refusal=f"robots.txt unreachable: {error.message}")
    return ALLOW_ALL


@dataclass(frozen=True)
class _Cached:
    rules: RobotsRules
    expires: float


class RobotsCache:
    """Each origin's rules in this process, fetched once and shared by all its pages."""

    def __init__(self, policy: RobotsPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._rules: OrderedDict[str, _Cached] = OrderedDict()
        self._fetching: dict[str, asyncio.Task[RobotsRules]] = {}

    async def check(
        self, fetcher: Fetcher, url: str, *, feed_url: str, limits: FetchLimits, deadline: float
    ) -> PageVerdict:
        """Whether the page ``url`` may be fetched, and the gap its host asks for. Raises
        HostBusy when the host gave no slot for robots.txt before ``deadline`` (the page is
        left for later)."""
        origin = origin_of(url)
        rules = self._fresh(origin)
        if rules is None:
            rules = await self._fetch_once(fetcher, origin, feed_url, limits, deadline)
        return page_verdict(rules, url, self.policy)

    def _fresh(self, origin: str) -> RobotsRules | None:
        cached = self._rules.get(origin)
        if cached is None or cached.expires <= self._clock():
            return None
        self._rules.move_to_end(origin)
        return cached.rules

    async def _fetch_once(
        self, fetcher: Fetcher, origin: str, feed_url: str, limits: FetchLimits, deadline: float
    ) -> RobotsRules:
        task = self._fetching.get(origin)
        if task is None:
            task = asyncio.ensure_future(self._fetch(fetcher, origin, feed_url, limits, deadline))
            self._fetching[origin] = task
            task.add_done_callback(lambda _: self._fetching.pop(origin, None))
        return await asyncio.shield(task)

    async def _fetch(
        self, fetcher: Fetcher, origin: str, feed_url: str, limits: FetchLimits, deadline: float
    ) -> RobotsRules:
        capped = FetchLimits(
            limits.connect_timeout, limits.read_timeout, self.policy.max_bytes, truncate=True
        )
        request = Request(
            f"{origin}/robots.txt", feed_url, capped, {"Accept": ROBOTS_ACCEPT}, deadline
        )
        unreachable = False
        try:
            body = (await fetcher.get(request)).body
            rules = rules_from_body(_whole_lines(body, self.policy.max_bytes))
        except HostBusy:
            raise
        except FeedError as error:
            rules = rules_from_error(error)
            unreachable = rules.refusal is not None
            if unreachable:  # RFC 9309, 2.4: the last rules serve while robots.txt is unreachable
                rules = self._last_rules(origin) or rules
        self._keep(origin, rules, unreachable=unreachable)
        delay = rules.crawl_delay(self.policy.agent)
        if delay:  # at each fetch of the origin's rules: why that site's pages come slowly
            kept = self.policy.crawl_gap(delay)
            log.info(
                "robots.txt asks a crawl delay",
                extra={
                    "stage": "fetch",
                    "feed_url": feed_url,
                    "reason": f"{origin} asks {delay:g} s between requests ({kept:g} s kept)",
                },
            )
        return rules

    def _last_rules(self, origin: str) -> RobotsRules | None:
        cached = self._rules.get(origin)
        return cached.rules if cached is not None and cached.rules.refusal is None else None

    def _keep(self, origin: str, rules: RobotsRules, *, unreachable: bool) -> None:
        policy = self.policy
        ttl = policy.unreachable_seconds if unreachable else policy.cache_seconds
        self._rules[origin] = _Cached(rules, self._clock() + ttl)
        self._rules.move_to_end(origin)
        while len(self._rules) > policy.max_origins:
            self._rules.popitem(last=False)
