"""Feed URLs and intervals as users give them (`feeds add`, feeds files): what is refused and
what the refusal shows (the input named, the URL escaped and without its credentials)."""

from __future__ import annotations

import ipaddress
import random
import unicodedata
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.errors import ConfigError
from pipeline.models import FeedSpec, FeedState
from pipeline.netguard import NetworkPolicy
from pipeline.registry import (
    MAX_FEED_URL_LENGTH,
    FeedPolicy,
    check_feed_url,
    feed_state_from_hash,
    load_feeds_file,
    parse_feeds_yaml,
    parse_opml,
    shown_url,
    validate_feed_spec,
)
from pipeline.schedule import SchedulePolicy
from pipeline.settings import MAX_INTERVAL_SECONDS, Settings
from workers.runtime import feed_policy

STRICT = FeedPolicy(network=NetworkPolicy(), min_interval=120, max_interval=86_400)
BIDI = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def terminal_safe(message: str) -> bool:
    """No character that moves the cursor, ends a line, reorders text or cannot be shown."""
    return not any(
        unicodedata.category(c) in {"Cc", "Cs", "Zl", "Zp", "Co", "Cn"} or c in BIDI
        for c in message
    )


def refusal(url: str, policy: FeedPolicy = STRICT, where: str = "feeds add") -> str:
    with pytest.raises(ConfigError) as info:
        validate_feed_spec(FeedSpec(url=url), where, policy)
    return str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/rss\r\nhttps://forged.example/  [ok]", "\\x0d at character 22"),
        ("https://a.example/r\nss", "\\x0a"),
        ("https://a.example/\trss", "\\x09"),
        ("https://a.example/rss\x00", "\\x00"),
        ("https://a.example/my feed", "\\x20"),
        ("https://a.example/\u2028x", "\\u2028"),
        ("https://a.example/\u202egnp.exe", "\\u202e"),
        ("https://a.example/\udcff", "\\udcff"),  # an undecodable byte on the command line
        ("ftp://a.example/rss", "must be an absolute http(s) URL"),
        ("not-a-url", "must be an absolute http(s) URL"),
        ("javascript:alert(1)", "must be an absolute http(s) URL"),
        ("https:///rss", "has no host"),
        ("http://[::1/rss", "is malformed"),
        ("http://a.example:70000/rss", "is malformed"),
        ("http://a.example:0/rss", "port 0"),
        ("http://256.1.1.1/rss", "numeric but not an IPv4 address"),
        ("http://127.0.0.1:8080/rss", "loopback"),
        ("http://10.1.2.3/rss", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::ffff:127.0.0.1]/rss", "loopback"),
        ("http://0x7f.1/rss", "loopback"),
        ("https://a.example/" + "a" * MAX_FEED_URL_LENGTH, f"more than {MAX_FEED_URL_LENGTH}"),
    ],
)
def test_bad_feed_urls_are_refused_with_one_line_naming_the_input(url: str, expected: str) -> None:
    message = refusal(url)
    assert message.startswith("feeds add: ") and expected in message
    assert terminal_safe(message)  # escaped: no CR, LF, TAB, NUL, bidi control in the message
    assert len(message) < 600


def test_the_ssrf_refusal_says_how_to_allow_it() -> None:
    message = refusal("http://127.0.0.1:8080/rss")
    assert "FEEDPIPE_ALLOW_PRIVATE_NETWORKS" in message and "FEEDPIPE_ALLOWED_NETWORKS" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://a.example/rss",
        "HTTP://A.example/RSS?x=1#top",
        "https://medium.com/feed/@someone",  # an '@' in the path is not a password
        "https://medium.com:443/feed/@someone",
        "https://user:p%2Fss@a.example/feed",  # credentials, percent-encoded
        "https://خبر.example/fa/rss",  # an internationalised name
        "https://a.example/fa/%D8%AE%D8%A8%D8%B1",
        "http://[2606:4700::1111]:8080/rss",
    ],
)
def test_good_feed_urls_pass(url: str) -> None:
    assert validate_feed_spec(FeedSpec(url=url), "feeds add", STRICT).url == url


def test_private_addresses_pass_when_the_settings_open_them() -> None:
    listed = NetworkPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    for url in ("http://10.20.1.5/rss", "http://10.20.1.5:8080/rss"):
        assert validate_feed_spec(FeedSpec(url=url), "x", FeedPolicy(network=listed)).url == url
    with pytest.raises(ConfigError, match="private"):
        validate_feed_spec(FeedSpec(url="http://10.21.0.1/"), "x", FeedPolicy(network=listed))
    everything = FeedPolicy(network=NetworkPolicy(allow_private=True))
    loopback = "http://127.0.0.1:8080/rss"
    assert validate_feed_spec(FeedSpec(url=loopback), "feeds add", everything).url == loopback
    # The default policy leaves the guard to fetch time (where it runs on every request).
    assert validate_feed_spec(FeedSpec(url=loopback), "x", FeedPolicy()).url == loopback


def test_policy_from_settings() -> None:
    settings = Settings(
        min_poll_interval_seconds=60,
        max_poll_interval_seconds=3600,
        allowed_networks=("10.0.0.0/8",),
    )
    policy = feed_policy(settings)
    assert (policy.min_interval, policy.max_interval) == (60, 3600)
    assert validate_feed_spec(FeedSpec(url="http://10.1.1.1/"), "x", policy)
    with pytest.raises(ConfigError, match="loopback"):
        validate_feed_spec(FeedSpec(url="http://127.0.0.1/"), "x", policy)


def test_refused_urls_never_show_their_credentials() -> None:
    cases = {
        "https://user:hunter2secret@10.0.0.1/feed": "https://***@10.0.0.1/feed",
        "https://user:hunter2secret@a.example/feed\r\n": "https://***@a.example/feed\\x0d\\x0a",
        "https://a.example/feed?token=hunter2secret&x=\n": "token=***",
        # Unencoded '/', '?', '#' in a password cut the authority short: all of it is masked.
        "https://user:hun/ter2secret@a.example/feed": "https://***@a.example/feed",
        "https://user:hun?ter2secret@a.example/feed": "https://***@a.example/feed",
        "https://user:hun#ter2secret@a.example/feed": "https://***@a.example/feed",
        "https://user:hunter2secret@[::1/feed": "***",
    }
    for url, shown in cases.items():
        message = refusal(url)
        assert "hunter2" not in message and "ter2secret" not in message, message
        assert shown in message, message


def test_long_urls_are_shown_cut() -> None:
    message = refusal("https://a.example/" + "x" * 100_000)
    assert len(message) < 400 and "(100018 characters)" in message


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (0, "got 0"),
        (-5, "got -5"),
        (119, "got 119"),
        (86_401, "got 86401"),
        (10**30, "a number of 31 digits"),
        (10**400, "a number of 401 digits"),
    ],
)
def test_intervals_are_bounded_by_the_settings(interval: int, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_feed_spec(
            FeedSpec(url="https://a.example/", interval=interval), "feeds add", STRICT
        )
    message = str(info.value)
    assert message.startswith("feeds add: interval must be from 120 to 86400 seconds")
    assert "FEEDPIPE_MIN_POLL_INTERVAL_SECONDS" in message and expected in message
    for ok in (120, 86_400):
        spec = FeedSpec(url="https://a.example/", interval=ok)
        assert validate_feed_spec(spec, "feeds add", STRICT) == spec


def test_without_settings_intervals_are_bounded_by_what_any_setting_allows() -> None:
    spec = FeedSpec(url="https://a.example/", interval=MAX_INTERVAL_SECONDS)
    assert validate_feed_spec(spec, "x", FeedPolicy()) == spec
    with pytest.raises(ConfigError, match="interval"):
        validate_feed_spec(FeedSpec(url="https://a.example/", interval=10**30), "x", FeedPolicy())


@pytest.mark.parametrize(
    "spec",
    [
        FeedSpec(url="https://a.example/", title="A\r\nhttps://forged.example/  [ok]"),
        FeedSpec(url="https://a.example/", tags=("fa", "x\x1b[31m")),
    ],
)
def test_titles_and_tags_hold_no_control_characters(spec: FeedSpec) -> None:
    with pytest.raises(ConfigError) as info:
        validate_feed_spec(spec, "feeds add", STRICT)
    assert str(info.value).isprintable() and "control character" in str(info.value)
    ok = FeedSpec(url="https://a.example/", title="خبرگزاری\u200cها نمونه", tags=("fa",))
    assert validate_feed_spec(ok, "feeds add", STRICT) == ok


def test_feeds_files_name_the_entry_and_apply_the_policy(tmp_path: Path) -> None:
    body = (
        "feeds:\n  - https://a.example/rss\n  - url: https://b.example/rss\n"
        "  - url: http://192.168.1.1/rss\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_feeds_yaml(body, "feeds.yaml", policy=STRICT)
    assert str(info.value).startswith("feeds.yaml: feeds[2]: ") and "private" in str(info.value)
    # Without a policy (a library caller), the guard is left to fetch time.
    assert len(parse_feeds_yaml(body, "feeds.yaml")) == 3

    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - url: https://a.example/rss\n    interval: 30\n")
    with pytest.raises(ConfigError, match=r"feeds\.yaml: feeds\[0\]: interval must be from 120"):
        load_feeds_file(path, policy=STRICT)
    lenient = FeedPolicy(network=NetworkPolicy(), min_interval=10, max_interval=100)
    assert load_feeds_file(path, policy=lenient)[0].interval == 30


def test_opml_refusals_show_the_outline_redacted_and_escaped() -> None:
    opml = (
        b'<opml version="2.0"><body>'
        b'<outline text="A" xmlUrl="https://u:hunter2secret@a.example/rss&#13;&#10;x"/>'
        b"</body></opml>"
    )
    with pytest.raises(ConfigError) as info:
        parse_opml(opml, "subs.opml", policy=STRICT)
    message = str(info.value)
    assert message.startswith("subs.opml: ")
    assert "outline https://***@a.example/rss\\x0d\\x0ax: feed url holds \\x0d" in message
    assert "hunter2" not in message and message.isprintable()


# --- properties -------------------------------------------------------------------------------

# A password with a marker between its characters: any two of them shown leak a marker, and
# the marker appears in no message of ours.
MARK = "§"
PASSWORD = st.text(min_size=1, max_size=30).map(lambda p: MARK + MARK.join(p) + MARK)


@given(st.text(max_size=300))
@example("https://a.example/\r\n")
@example("http://[::1]:99999/")
@example("http://u:p@[/")
def test_any_text_is_a_feed_url_or_a_one_line_config_error(text: str) -> None:
    try:
        assert check_feed_url(text, "feeds add", NetworkPolicy()) == text
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("feeds add: ") and terminal_safe(message)


@given(
    password=PASSWORD,
    host=st.sampled_from(["a.example", "10.0.0.1", "127.0.0.1:8080", "[::1]", "a.example:99999"]),
    path=st.sampled_from(["/feed", "/feed\r\n", "", "/@name", "/x" * 1100]),
)
@example(password="§h§u§n§/§t§e§r§", host="a.example", path="/feed")
@example(password="§h§u§n§\\§t§e§r§", host="10.0.0.1", path="/feed")
@example(password="§h§@§/§t§", host="10.0.0.1", path="/@x")
def test_a_refused_url_never_shows_its_password(password: str, host: str, path: str) -> None:
    url = f"https://user:{password}@{host}{path}"
    try:
        check_feed_url(url, "feeds add", NetworkPolicy())
    except ConfigError as exc:
        assert MARK not in str(exc)
    assert MARK not in shown_url(url)


# --- what scheduling makes of an absurd interval already in Redis ------------------------------


def test_an_absurd_interval_read_back_from_redis_is_clamped_not_raised() -> None:
    policy = SchedulePolicy(600, 120, 86_400, 86_400, 86_400)
    feed = FeedState(id="x", url="https://a.example/", interval=10**400)
    assert policy.next_poll_after_success(feed, 0.0, random.Random(1)) <= 86_400


def test_a_large_but_finite_interval_read_back_is_clamped() -> None:
    policy = SchedulePolicy(600, 120, 86_400, 86_400, 86_400)
    feed = FeedState(id="x", url="https://a.example/", interval=10**30)
    assert policy.interval(feed) == 86_400
    assert policy.next_poll_after_error(feed, 50, 0.0, random.Random(1)) < 2 * 86_400


def test_a_feed_hash_with_unparsable_numbers_loads_with_them_unknown() -> None:
    state = feed_state_from_hash(
        {
            b"id": b"x",
            b"url": b"https://a.example/",
            b"interval": b"9" * 5000,
            b"errors": b"three",
            b"last_poll": b"yesterday",
            b"tags": b'{"not": "a list"}',
            b"items": b"12",
        }
    )
    assert (state.interval, state.errors, state.last_poll, state.tags) == (None, 0, None, ())
    assert state.items == 12
