"""WebSub's pure parts: signatures (hostile headers), discovery, the base URL setting."""

from __future__ import annotations

import hashlib
import hmac

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipeline.models import FetchResult
from pipeline.parse import parse_feed
from pipeline.settings import Settings
from pipeline.websub import HubLink, check_signature, hub_link

SECRET = "ab" * 32
BODY = b"<feed>new entries</feed>"


def signed(method: str, secret: str = SECRET, body: bytes = BODY) -> str:
    return f"{method}=" + hmac.new(secret.encode(), body, getattr(hashlib, method)).hexdigest()


@pytest.mark.parametrize("method", ["sha256", "sha384", "sha512"])
def test_a_body_signed_with_the_secret_passes(method: str) -> None:
    assert check_signature(SECRET, BODY, signed(method)) is None
    assert check_signature(SECRET, BODY, signed(method).upper().replace("SHA", "sha")) is None


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (None, "no X-Hub-Signature"),
        ("", "no X-Hub-Signature"),
        (signed("sha1"), "signature method 'sha1' not accepted"),
        (signed("sha256", secret="other"), "signature does not match"),
        (signed("sha256", body=b"another body"), "signature does not match"),
        ("sha256", "signature does not match"),
        ("md5=abc", "signature method 'md5' not accepted"),
    ],
)
def test_anything_else_is_refused_with_its_reason(header: str | None, why: str) -> None:
    assert check_signature(SECRET, BODY, header) == why


@given(st.text(max_size=300), st.binary(max_size=300))
def test_any_header_is_checked_without_an_error(header: str, body: bytes) -> None:
    assert check_signature(SECRET, body, header) is not None or header.startswith("sha")


ATOM = (
    '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
    '<link rel="hub" href="/hub"/><link rel="self" href="https://agency.example/feed"/>'
    "<entry><title>E</title><id>e</id></entry></feed>"
)
RSS = (
    '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>T</title>'
    '<atom:link rel="hub" href="https://hub.example/"/><item><title>E</title></item>'
    "</channel></rss>"
)


def result(body: str, **links: str) -> FetchResult:
    url = "https://agency.example/rss"
    return FetchResult(url=url, final_url=url, status=200, body=body.encode(), **links)


def test_the_hub_is_found_in_atom_and_rss_and_the_header_wins() -> None:
    atom = result(ATOM)
    assert hub_link(parse_feed(atom, atom.url, 10), atom) == HubLink(
        hub="https://agency.example/hub", topic="https://agency.example/feed"
    )
    rss = result(RSS)  # no rel=self: the URL fetched is the topic
    assert hub_link(parse_feed(rss, rss.url, 10), rss) == HubLink(
        hub="https://hub.example/", topic="https://agency.example/rss"
    )
    headed = result(RSS, hub_link="https://other-hub.example/", self_link="https://t.example/")
    assert hub_link(parse_feed(headed, headed.url, 10), headed) == HubLink(
        hub="https://other-hub.example/", topic="https://t.example/"
    )
    plain = result(RSS.replace("atom:link", "atom:nolink"))
    assert hub_link(parse_feed(plain, plain.url, 10), plain) is None


def test_a_hub_that_is_not_http_is_ignored() -> None:
    bad = result(RSS, hub_link="javascript:alert(1)")
    assert hub_link(parse_feed(bad, bad.url, 10), bad) is None


@pytest.mark.parametrize(
    "url", ["ftp://feeds.example", "https://u:p@feeds.example", "feeds.example", "https://x/?a=1"]
)
def test_a_bad_websub_base_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="websub_base_url"):
        Settings(websub_base_url=url)
    assert Settings(websub_base_url="https://feeds.example/").websub_base_url == (
        "https://feeds.example"
    )


def test_a_pushed_feed_is_polled_at_the_safety_interval_until_its_lease_ends() -> None:
    from types import SimpleNamespace
    from typing import Any

    from pipeline.models import FeedState
    from pipeline.poll import _pushed_or
    from pipeline.websub import WebSubPolicy

    policy = WebSubPolicy(
        base_url="https://feeds.example", lease_seconds=864_000, poll_seconds=3600
    )
    ctx: Any = SimpleNamespace(websub=policy)
    now = 1_000_000.0
    leased = FeedState(id="f", url="https://a.example/rss", push_until=now + 600)
    assert _pushed_or(ctx, leased, now + 120, now) == now + 3600  # pushed: poll rarely
    assert _pushed_or(ctx, leased, now + 7200, now) == now + 7200  # never more often
    lapsed = FeedState(id="f", url="https://a.example/rss", push_until=now - 1)
    assert _pushed_or(ctx, lapsed, now + 120, now) == now + 120  # the hub stopped renewing
    assert _pushed_or(SimpleNamespace(websub=None), leased, now + 120, now) == now + 120


def test_a_removed_feed_is_unsubscribed_only_while_its_hub_may_still_push() -> None:
    from pipeline.websub import Subscription, _may_still_push

    now = 1_000_000.0
    base = Subscription("f", "https://hub.example/", "https://a.example/rss", "ab", "active", now)
    leased = msgspec.structs.replace(base, lease_until=now + 10)
    assert _may_still_push(leased, now)
    assert not _may_still_push(msgspec.structs.replace(base, lease_until=now - 10), now)
    asked = msgspec.structs.replace(base, state="requested", changed_at=now - 3600)
    assert _may_still_push(asked, now)
    assert not _may_still_push(msgspec.structs.replace(asked, changed_at=now - 2 * 86_400), now)
    assert not _may_still_push(msgspec.structs.replace(base, state="denied"), now)
