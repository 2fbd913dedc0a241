"""The SSRF guard, directly: URLs, addresses, and the resolver wrapper."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.netguard import (
    DestinationRefused,
    GuardedResolver,
    NetworkPolicy,
    literal_address,
    refusal_reason,
)
from pipeline.settings import Settings
from workers.runtime import network_policy

STRICT = NetworkPolicy()
OPEN = NetworkPolicy(allow_private=True)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "non-global"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("::ffff:8.8.8.8", None),
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("64:ff9b::808:808", None),  # NAT64 of 8.8.8.8: a translator reaches it
        ("::0.0.0.2", "private"),  # IPv4-compatible of 0.0.0.0/8
        ("::8.8.8.8", "deprecated IPv4-compatible"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo client 192.0.2.45
        ("2001:0:808:808:8000:63bf:f7f7:f7f7", "Teredo tunnel"),  # both ends public
        ("fd00::1", "private"),
        ("93.184.215.14", None),
        ("2606:4700::6810:85e5", None),
    ],
)
def test_refusal_reasons(address: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/feed", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("http://127.0.0.1:6379/", "loopback"),
        ("http://[::1]/feed", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.1.2.3/feed", "FEEDPIPE_ALLOW_PRIVATE_NETWORKS"),
    ],
)
def test_urls_refused(url: str, message: str) -> None:
    with pytest.raises(DestinationRefused, match=message):
        STRICT.check_url(url)


def test_names_pass_the_url_check_and_are_checked_after_dns() -> None:
    STRICT.check_url("https://news.example.com/rss")  # no exception: checked on resolution


def test_allow_private_and_allowlist() -> None:
    NetworkPolicy(allow_private=True).check_url("http://127.0.0.1/feed")
    intranet = NetworkPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    intranet.check_url("http://10.20.5.6/feed")
    with pytest.raises(DestinationRefused):
        intranet.check_url("http://10.21.0.1/feed")


def test_policy_from_settings() -> None:
    settings = Settings(allowed_networks="10.0.0.0/8, fd00::/8")  # type: ignore[arg-type]
    policy = network_policy(settings)
    assert [str(n) for n in policy.allowed_networks] == ["10.0.0.0/8", "fd00::/8"]
    assert not policy.allow_private


class FixedResolver(AbstractResolver):
    """Answers every name with fixed addresses (a DNS record pointing inside)."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_resolver_refuses_names_pointing_inside() -> None:
    guarded = GuardedResolver(STRICT, FixedResolver("93.184.215.14", "10.0.0.7"))
    with pytest.raises(DestinationRefused, match=r"rebind\.example \(10\.0\.0\.7\) is a private"):
        await guarded.resolve("rebind.example", 80)
    public = GuardedResolver(STRICT, FixedResolver("93.184.215.14"))
    assert [r["host"] for r in await public.resolve("news.example", 80)] == ["93.184.215.14"]


async def test_resolver_refuses_localhost_by_name() -> None:
    with pytest.raises(DestinationRefused, match="loopback"):
        await GuardedResolver(STRICT).resolve("localhost", 80)


# --- legacy IPv4 literals: judged by the address browsers and inet_aton read -------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),  # one decimal part: the whole address
        ("0x7f000001", "127.0.0.1"),  # one hex part
        ("0X7F000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),  # one octal part
        ("0177.0.0.1", "127.0.0.1"),  # octal first byte
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # two parts: the last fills three bytes
        ("127.0.1", "127.0.0.1"),  # three parts: the last fills two bytes
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0x0.0.01", "127.0.0.1"),  # mixed radixes
        ("0177.0x0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),  # trailing dot
        ("0x7f.1.", "127.0.0.1"),
        ("0x7f.0x00.0x00.0x01", "127.0.0.1"),
        ("%31%32%37.0.0.1", "127.0.0.1"),  # browsers percent-decode first
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),  # "0x" alone is 0 to browsers
        ("00", "0.0.0.0"),
        ("0xA9FEA9FE", "169.254.169.254"),
        ("2852039166", "169.254.169.254"),
        ("0251.0376.0251.0376", "169.254.169.254"),
        ("169.254.43518", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("0xa.0x14.0x1e.0x28", "10.20.30.40"),
        ("4294967295", "255.255.255.255"),
        ("0x5db8d70e", "93.184.215.14"),
        ("1572394766", "93.184.215.14"),
        ("93.184.215.14", "93.184.215.14"),
        ("93.184.215.14.", "93.184.215.14"),
        ("0x00000000000000005db8d70e", "93.184.215.14"),  # leading zeros do not overflow
    ],
)
def test_legacy_ipv4_literals_are_read_as_browsers_do(host: str, address: str) -> None:
    assert literal_address(host) == ipaddress.IPv4Address(address)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("2130706433", "loopback"),
        ("0x7f000001", "loopback"),
        ("017700000001", "loopback"),
        ("0177.0.0.1", "loopback"),
        ("127.1", "loopback"),
        ("127.0.1", "loopback"),
        ("0x7f.1", "loopback"),
        ("0x7f.0x0.0.01", "loopback"),
        ("127.0.0.1.", "loopback"),
        ("0x7F.1.", "loopback"),
        ("0xA9FEA9FE", "link-local"),
        ("0251.0376.0251.0376", "link-local"),
        ("169.254.43518", "link-local"),
        ("10.1", "private"),
        ("0xc0.0xa8.1.1", "private"),
        ("0x", "unspecified"),
        ("0", "unspecified"),
        ("4294967295", "reserved"),
        ("0x5db8d70e", None),
        ("1572394766", None),
        ("93.0xb8.0327.14", None),
        ("93.184.215.14.", None),
    ],
)
def test_legacy_ipv4_literals_get_the_verdict_of_their_address(
    host: str, reason: str | None
) -> None:
    url = f"http://{host}:8080/feed"
    if reason is None:
        STRICT.check_url(url)
    else:
        with pytest.raises(
            DestinationRefused, match=rf"^{re.escape(host.lower())} \(\S+\) is a {reason} address"
        ):
            STRICT.check_url(url)
    OPEN.check_url(url)  # FEEDPIPE_ALLOW_PRIVATE_NETWORKS still allows every address


@pytest.mark.parametrize(
    "host",
    [
        "256.256.256.256",  # a byte over 255
        "256.1.1.1",
        "1.2.3.4.5",  # five parts
        "1.2.3.256",  # the last part over what its byte holds
        "1.2.65536",
        "1.16777216",
        "4294967296",  # 2**32
        "0x100000000",
        "040000000000",
        "0x1g",  # not hex
        "0x7f.0x1g",
        "09",  # not octal
        "0178.0.0.1",
        "1..2",  # an empty part
        "1.2.3.4..",  # two trailing dots
        "99999999999999999999999999999",
        "1." + "9" * 5000,  # too long for int(): still a clean refusal
        "1.2.3.%34%35%36",  # 456, percent-encoded
    ],
)
def test_malformed_numeric_hosts_are_refused_whatever_the_policy(host: str) -> None:
    for policy in (STRICT, OPEN):
        with pytest.raises(DestinationRefused, match="malformed host"):
            policy.check_url(f"http://{host}/feed")


@pytest.mark.parametrize(
    "host",
    [
        "news.example.com",
        "news.example.com.",
        "1.2.3.4.nip.io",  # numeric labels are fine where the last one is a name
        "0x7f000001.example",
        "3dprinter",  # a single label starting with a digit, not a number
        "1e2",
        "127.0.0.1x",  # ends in a label that is neither number nor 0x: a (bogus) name
        "xn--bcher-kva.example",
        "xn--zz",  # undecodable punycode: left to DNS, where it fails
    ],
)
def test_names_still_pass_the_url_check(host: str) -> None:
    STRICT.check_url(f"https://{host}/rss")  # checked on resolution, like any name
    assert literal_address(host) is None


# --- IPv6 addresses carrying an IPv4 address: judged by the IPv4 address -----------------

# Each embedding of 127.0.0.1, 10.0.0.1 and 169.254.169.254, and of public 8.8.8.8.
EMBEDDINGS = {
    "IPv4-mapped": ("::ffff:{}", None),
    "6to4": ("2002:{:x}:{:x}::1", None),
    "NAT64": ("64:ff9b::{}", None),
    "local-use NAT64": ("64:ff9b:1::{}", "local-use NAT64"),
    "IPv4-compatible": ("::{}", "deprecated IPv4-compatible"),
    "Teredo client": ("2001:0:808:808:8000:63bf:{:x}:{:x}", "Teredo tunnel"),
    "Teredo server": ("2001:0:{:x}:{:x}:8000:63bf:f7f7:f7f7", "Teredo tunnel"),
}


def embed(kind: str, inner: str) -> str:
    """The IPv6 address (text) that carries IPv4 ``inner`` the way ``kind`` does."""
    template, _ = EMBEDDINGS[kind]
    value = int(ipaddress.IPv4Address(inner))
    if kind == "Teredo client":
        value ^= 0xFFFF_FFFF  # RFC 4380: the client address is stored inverted
    if template.count("{") == 2:
        return template.format(value >> 16, value & 0xFFFF)
    return template.format(inner)


@pytest.mark.parametrize("kind", EMBEDDINGS)
@pytest.mark.parametrize(
    ("inner", "reason"),
    [("127.0.0.1", "loopback"), ("10.0.0.1", "private"), ("169.254.169.254", "link-local")],
)
def test_embedded_non_public_ipv4_is_refused_and_named(kind: str, inner: str, reason: str) -> None:
    address = embed(kind, inner)
    with pytest.raises(DestinationRefused, match=rf"carries {kind} {inner}, a {reason} address"):
        STRICT.check_url(f"http://[{address}]:8080/feed")
    assert refusal_reason(ipaddress.IPv6Address(address)) == reason
    OPEN.check_url(f"http://[{address}]:8080/feed")


@pytest.mark.parametrize("kind", EMBEDDINGS)
def test_embedded_public_ipv4_is_allowed_where_it_is_a_public_destination(kind: str) -> None:
    address = embed(kind, "8.8.8.8")
    refused_as = EMBEDDINGS[kind][1]
    if refused_as is None:  # IPv4-mapped, 6to4, NAT64: traffic reaches 8.8.8.8
        STRICT.check_url(f"http://[{address}]/feed")
    else:  # local-use NAT64, deprecated IPv4-compatible and Teredo: refused anyway
        with pytest.raises(DestinationRefused, match=f"is a {refused_as} address"):
            STRICT.check_url(f"http://[{address}]/feed")
    OPEN.check_url(f"http://[{address}]/feed")


def test_teredo_addresses_decode_as_rfc_4380_says() -> None:
    # RFC 4380 §4's example: server 65.54.227.120, client 192.0.2.45 behind NAT.
    with pytest.raises(DestinationRefused, match=r"carries Teredo client 192\.0\.2\.45"):
        STRICT.check_url("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/")
    with pytest.raises(DestinationRefused, match=r"carries Teredo server 127\.0\.0\.1"):
        STRICT.check_url("http://[2001:0:7f00:1:8000:63bf:f7f7:f7f7]/")


@pytest.mark.parametrize(
    ("address", "reason"),
    [("::", "unspecified"), ("::1", "loopback"), ("::ffff:0:0", "unspecified")],
)
def test_unspecified_and_loopback_keep_their_own_meaning(address: str, reason: str) -> None:
    assert refusal_reason(ipaddress.IPv6Address(address)) == reason


@pytest.mark.parametrize(
    "url",
    ["http://[::1]./", "http://[::ffff:0x7f.1]/", "http://[/", "http://[1:2:3]/"],
)
def test_malformed_ipv6_hosts_are_refused(url: str) -> None:
    with pytest.raises(DestinationRefused, match="malformed"):
        STRICT.check_url(url)


def test_zone_ids_do_not_hide_the_address_class() -> None:
    with pytest.raises(DestinationRefused, match="link-local"):
        STRICT.check_url("http://[fe80::1%25eth0]/")
    with pytest.raises(DestinationRefused, match=r"IPv4-mapped 127\.0\.0\.1"):
        STRICT.check_addresses("zoned.example", ["::ffff:127.0.0.1%lo"])


# --- the same judgement on what DNS answers and on the allowlist --------------------------


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ("::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1"),
        ("64:ff9b::a9fe:a9fe", "NAT64 169.254.169.254"),  # what DNS64 makes of an A record
        ("2002:a00:1::", "6to4 10.0.0.1"),
    ],
)
async def test_resolver_answers_carrying_private_ipv4_are_refused(answer: str, named: str) -> None:
    guarded = GuardedResolver(STRICT, FixedResolver("93.184.215.14", answer))
    with pytest.raises(
        DestinationRefused,
        match=rf"dns64\.example \({ipaddress.ip_address(answer)}\) carries {named}",
    ):
        await guarded.resolve("dns64.example", 80)


async def test_resolver_answers_carrying_public_ipv4_pass() -> None:
    guarded = GuardedResolver(STRICT, FixedResolver("64:ff9b::5db8:d70e", "::ffff:93.184.215.14"))
    assert len(await guarded.resolve("dns64.example", 80)) == 2


def test_resolver_answers_that_are_not_addresses_are_refused() -> None:
    with pytest.raises(DestinationRefused, match="not an address"):
        STRICT.check_addresses("odd.example", ["odd.example"])
    with pytest.raises(DestinationRefused, match="loopback"):
        STRICT.check_addresses("odd.example", ["0x7f.1"])  # read as any other literal


def test_allowlist_matches_the_canonical_and_the_embedded_ipv4() -> None:
    intranet = NetworkPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    for host in ("10.20.5.6", "0xa.0x14.5.6", "10.20.1286", "[::ffff:10.20.5.6]"):
        intranet.check_url(f"http://{host}/feed")
    intranet.check_url(f"http://[{embed('NAT64', '10.20.5.6')}]/feed")
    intranet.check_url(f"http://[{embed('6to4', '10.20.5.6')}]/feed")
    for host in ("10.21.0.1", "0xa.0x15.0.1", "[::ffff:10.21.0.1]"):
        with pytest.raises(DestinationRefused):
            intranet.check_url(f"http://{host}/feed")


def test_allowlisting_a_tunnel_prefix_does_not_open_what_it_carries() -> None:
    nat64 = NetworkPolicy(allowed_networks=(ipaddress.ip_network("64:ff9b:1::/48"),))
    nat64.check_url(f"http://[{embed('local-use NAT64', '8.8.8.8')}]/feed")
    with pytest.raises(DestinationRefused, match=r"carries local-use NAT64 10\.0\.0\.1"):
        nat64.check_url(f"http://[{embed('local-use NAT64', '10.0.0.1')}]/feed")


# --- properties -------------------------------------------------------------------------


@st.composite
def ipv4_spellings(draw: st.DrawFn) -> tuple[int, str]:
    """A 32-bit number and one way of writing it: 1-4 parts, each in any radix."""
    value = draw(st.integers(0, 2**32 - 1))
    count = draw(st.integers(1, 4))
    leading = [(value >> (8 * (3 - i))) & 0xFF for i in range(count - 1)]
    numbers = [*leading, value & ((1 << (8 * (5 - count))) - 1)]
    parts = []
    for number in numbers:
        radix = draw(st.sampled_from(["dec", "hex", "HEX", "oct"]))
        zeros = "0" * draw(st.integers(0, 3)) if radix != "dec" else ""
        parts.append(
            {
                "dec": str(number),
                "hex": f"0x{zeros}{number:x}",
                "HEX": f"0X{zeros}{number:X}",
                "oct": f"0{zeros}{number:o}",
            }[radix]
        )
    trailing_dot = "." if draw(st.booleans()) else ""
    return value, ".".join(parts) + trailing_dot


@settings(deadline=None, max_examples=300)
@given(ipv4_spellings())
def test_every_spelling_of_an_ipv4_address_gets_its_verdict(spelled: tuple[int, str]) -> None:
    value, host = spelled
    address = ipaddress.IPv4Address(value)
    assert literal_address(host) == address
    reason = refusal_reason(address)
    if reason is None:
        STRICT.check_url(f"http://{host}/feed")
    else:
        with pytest.raises(DestinationRefused, match=f"is a {reason} address"):
            STRICT.check_url(f"http://{host}/feed")


HOSTISH = st.text(alphabet="0123456789abcdefxX.%:[]@/?# \\", max_size=40)


@settings(deadline=None, max_examples=300)
@given(st.one_of(st.text(), HOSTISH))
@example("[]@")  # found by this test: yarl raises IndexError on it
@example("xn--zz")  # host (not raw_host) raises UnicodeError on it
@example("[::1].")
def test_check_url_refuses_or_returns_for_any_host(host: str) -> None:
    with contextlib.suppress(DestinationRefused):
        STRICT.check_url(f"http://{host}/feed")


@settings(deadline=None, max_examples=200)
@given(st.one_of(st.text(), HOSTISH))
def test_check_addresses_refuses_or_returns_for_any_answer(answer: str) -> None:
    with contextlib.suppress(DestinationRefused):
        STRICT.check_addresses("any.example", [answer])
