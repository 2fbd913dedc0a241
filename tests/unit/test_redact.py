"""Every URL shown or published goes through pipeline.redact: no password, token or
userinfo survives, whatever the URL looks like."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.redact import redact_text, redact_url, without_credentials

SECRET = "s3cretPW"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cretPW@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
        ("redis://user:s3cretPW@[::1]:6379/0", "redis://***@[::1]:6379/0"),
        (
            "rediss://default:s3cretPW@host/0?ssl_cert_reqs=none",
            "rediss://***@host/0?ssl_cert_reqs=none",
        ),
        ("redis://host:6379/0?password=s3cretPW", "redis://host:6379/0?password=***"),
        ("https://u:s3cretPW@feeds.example/rss?page=2", "https://***@feeds.example/rss?page=2"),
        (
            "https://feeds.example/rss?api-key=s3cretPW&lang=fa",
            "https://feeds.example/rss?api-key=***&lang=fa",
        ),
        ("https://feeds.example/rss?Token=s3cretPW", "https://feeds.example/rss?Token=***"),
        ("https://feeds.example/rss", "https://feeds.example/rss"),
        ("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2"),
        ("http://[::1", "***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_published_feed_urls_carry_no_userinfo() -> None:
    url = "https://reader:s3cretPW@agency.example/fa/rss?key=s3cretPW&section=1"
    assert without_credentials(url) == "https://agency.example/fa/rss?key=***&section=1"
    assert without_credentials("https://agency.example/fa/rss") == "https://agency.example/fa/rss"


def test_urls_inside_text_and_tracebacks() -> None:
    text = (
        "Error 111 connecting to redis://:s3cretPW@10.0.0.5:6379/0. Connection refused; "
        "feed 'http://bob:s3cretPW@h.example/feed' failed"
    )
    shown = redact_text(text)
    assert SECRET not in shown
    assert "redis://***@10.0.0.5:6379/0." in shown and "http://***@h.example/feed'" in shown


_userinfo = st.text(
    st.characters(codec="utf-8", exclude_characters="@/?#\\", exclude_categories=("Z", "Cc")),
    max_size=12,
)


@given(
    scheme=st.sampled_from(["redis", "rediss", "http", "https", "unix"]),
    user=_userinfo,
    host=st.from_regex(r"[a-z0-9.-]{1,20}", fullmatch=True),
    rest=st.text(max_size=30),
)
def test_no_password_survives_any_url(scheme: str, user: str, host: str, rest: str) -> None:
    url = f"{scheme}://{user}:{SECRET}@{host}/{rest}"
    for shown in (redact_url(url), without_credentials(url), redact_text(f"at {url} now")):
        assert SECRET not in shown


@given(st.text())
def test_any_text_is_safe_to_redact(text: str) -> None:
    assert isinstance(redact_url(text), str)
    assert isinstance(without_credentials(text), str)
    assert isinstance(redact_text(text), str)
