"""SSRF guard: which destinations feedpipe may connect to.

Feed URLs come from users and, through redirects and article links, from any server on the
internet. Without a guard, a feed (or a redirect) pointing at ``http://169.254.169.254/`` or
``http://127.0.0.1:6379/`` makes the workers read cloud credentials or talk to internal
services. The guard runs twice per request hop: on the URL (scheme, literal IP) before the
request, and on every address DNS returns (so a public name resolving to 10.0.0.1 is refused
too, and the address checked is the address connected to: no re-resolution in between).

Hand-written because no maintained library covers aiohttp (``advocate`` wraps requests only);
the address classes themselves come from the standard ``ipaddress`` module.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from pipeline.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})


class DestinationRefused(Exception):
    """Raised by the guard; ``pipeline.fetch`` turns it into ``BlockedDestination``."""


@dataclass(frozen=True)
class NetworkPolicy:
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> NetworkPolicy:
        return cls(
            allow_private=settings.allow_private_networks,
            allowed_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks
            ),
        )

    def check_url(self, url: str) -> None:
        """Refuse non-http(s) schemes and literal IP hosts outside the policy."""
        parsed = URL(url)
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise DestinationRefused(f"only http and https URLs are fetched, not {url!r}")
        if not parsed.host:
            raise DestinationRefused(f"URL without a host: {url!r}")
        try:
            address = ipaddress.ip_address(parsed.host.strip("[]"))
        except ValueError:
            return  # a name: its addresses are checked after DNS resolution
        self.check_address(address, parsed.host)

    def check_address(self, address: IPAddress, host: str) -> None:
        refused = refusal_reason(address)
        if refused is None or self.allow_private:
            return
        if any(address in network for network in self.allowed_networks):
            return
        shown = host if host == str(address) else f"{host} ({address})"
        raise DestinationRefused(
            f"{shown} is a {refused} address; set FEEDPIPE_ALLOW_PRIVATE_NETWORKS=true or "
            "list its network in FEEDPIPE_ALLOWED_NETWORKS to fetch it"
        )

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        for raw in addresses:
            self.check_address(ipaddress.ip_address(raw.split("%", 1)[0]), host)


def refusal_reason(address: IPAddress) -> str | None:
    """Why an address is not on the public internet, or None when it is."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
        return refusal_reason(mapped)
    checks = (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_unspecified, "unspecified"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "non-global"),
    )
    return next((name for hit, name in checks if hit), None)


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that refuses a host when any of its addresses is refused.

    All of them, not just the first: a name resolving to one public and one private address
    would otherwise let the connector fall through to the private one."""

    def __init__(self, policy: NetworkPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self._policy.check_addresses(host.rstrip("."), (r["host"] for r in results))
        return results

    async def close(self) -> None:
        await self._inner.close()
