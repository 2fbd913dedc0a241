"""pipeline/robots.py's pure parts: whose rules apply, which origin, how a failed fetch counts."""

from __future__ import annotations

import pytest

from pipeline.errors import (
    ClientError,
    FeedError,
    FetchTimeout,
    RedirectError,
    ServerError,
    TLSError,
)
from pipeline.robots import (
    ALLOW_ALL,
    PageVerdict,
    RobotsPolicy,
    agent_token,
    origin_of,
    page_verdict,
    rules_from_body,
    rules_from_error,
)

FEED = "https://agency.example/rss"


@pytest.mark.parametrize(
    ("user_agent", "token"),
    [
        ("feedpipe/0.1 (+https://github.com/feedpipe/feedpipe)", "feedpipe"),
        ("NewsDesk Bot/2.0", "NewsDesk"),
        ("  ", "*"),
    ],
)
def test_agent_token_is_the_product_token(user_agent: str, token: str) -> None:
    assert agent_token(user_agent) == token


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://user:pw@agency.example/a/1?x=1", "https://agency.example"),
        ("http://agency.example:8080/a", "http://agency.example:8080"),
        ("http://[::1]:9000/a", "http://[::1]:9000"),
    ],
)
def test_origin_of_drops_userinfo_path_and_query(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_the_most_specific_group_and_the_longest_rule_decide() -> None:
    rules = rules_from_body(
        b"User-agent: *\nDisallow: /\n\n"
        b"User-agent: feedpipe\nDisallow: /news/\nAllow: /news/public/\nDisallow: /*.pdf$\n"
    )
    assert rules.refuses("https://a.example/about", "feedpipe") is None
    assert rules.refuses("https://a.example/news/1", "feedpipe") == "disallowed by robots.txt"
    assert rules.refuses("https://a.example/news/public/1", "feedpipe") is None
    assert rules.refuses("https://a.example/report.pdf", "feedpipe") is not None
    assert rules.refuses("https://a.example/about", "otherbot") is not None


@pytest.mark.parametrize(
    ("value", "delay"), [("2.5", 2.5), ("-3", None), ("nan", None), ("inf", None), ("soon", None)]
)
def test_crawl_delay_is_read_from_the_agents_group(value: str, delay: float | None) -> None:
    rules = rules_from_body(
        f"User-agent: *\nCrawl-delay: 9\n\nUser-agent: feedpipe\nCrawl-delay: {value}\n".encode()
    )
    assert rules.crawl_delay("feedpipe") == delay
    assert rules.crawl_delay("otherbot") == 9.0
    assert ALLOW_ALL.crawl_delay("feedpipe") is None


@pytest.mark.parametrize(("value", "gap"), [("3600", 30.0), ("-0", 0.0), ("1.5", 1.5)])
def test_a_pages_gap_is_its_crawl_delay_within_the_cap(value: str, gap: float) -> None:
    rules = rules_from_body(f"User-agent: *\nCrawl-delay: {value}\nDisallow: /x\n".encode())
    policy = RobotsPolicy(agent="feedpipe")
    assert page_verdict(rules, "https://a.example/news/1", policy) == PageVerdict(None, gap)
    assert page_verdict(rules, "https://a.example/x", policy).refusal is not None
    assert page_verdict(ALLOW_ALL, "https://a.example/x", policy) == PageVerdict(None, 0.0)


def test_undecodable_robots_txt_is_read_as_far_as_it_goes() -> None:
    rules = rules_from_body(b"\xff\xfe\x00garbage\nUser-agent: *\nDisallow: /private\n")
    assert rules.refuses("https://a.example/private/1", "feedpipe") is not None
    assert rules.refuses("https://a.example/open", "feedpipe") is None


@pytest.mark.parametrize(
    "error",
    [
        ClientError(FEED, "HTTP 404", status=404),
        ClientError(FEED, "HTTP 403", status=403),
        RedirectError(FEED, "more than 5 redirects"),
    ],
)
def test_an_unavailable_robots_txt_allows_everything(error: FeedError) -> None:
    assert rules_from_error(error) is ALLOW_ALL


@pytest.mark.parametrize(
    "error",
    [
        ServerError(FEED, "HTTP 503", status=503),
        ServerError(FEED, "HTTP 429", status=429),
        FetchTimeout(FEED, "timed out"),
        TLSError(FEED, "certificate verify failed"),
    ],
)
def test_an_unreachable_robots_txt_allows_nothing(error: FeedError) -> None:
    rules = rules_from_error(error)
    refusal = rules.refuses("https://a.example/anything", "feedpipe")
    assert refusal is not None and refusal.startswith("robots.txt unreachable: ")
