"""The SSRF guard, directly: URLs, addresses, and the resolver wrapper."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from pipeline.netguard import DestinationRefused, GuardedResolver, NetworkPolicy, refusal_reason
from pipeline.settings import Settings

STRICT = NetworkPolicy()


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
    policy = NetworkPolicy.from_settings(settings)
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
