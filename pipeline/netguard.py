"""SSRF guard: which destinations feedpipe may connect to.

Feed URLs come from users and, through redirects and article links, from any server on the
internet. Without a guard, a feed (or a redirect) pointing at ``http://169.254.169.254/`` or
``http://127.0.0.1:6379/`` makes the workers read cloud credentials or talk to internal
services. The guard runs twice per request hop: on the URL (scheme, literal IP) before the
request, and on every address DNS returns (so a public name resolving to 10.0.0.1 is refused
too, and the address checked is the address connected to: no re-resolution in between).

An address is judged by where traffic to it ends up, whatever its spelling: legacy IPv4
literals (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``) are read the way browsers and
``inet_aton`` read them, and IPv6 addresses that carry an IPv4 address (IPv4-mapped, 6to4,
NAT64, Teredo, IPv4-compatible) are judged by the IPv4 address inside. The guard decides this
itself rather than rely on what a given aiohttp/yarl version does with such hosts.

Hand-written because no maintained library covers aiohttp (``advocate`` wraps requests only);
the address classes themselves come from the standard ``ipaddress`` module.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})

# The digits of each radix an IPv4 literal part may use (not str.isdigit: that takes "²").
RADIX_DIGITS = {
    8: frozenset("01234567"),
    10: frozenset("0123456789"),
    16: frozenset("0123456789abcdefABCDEF"),
}

# IPv6 prefixes whose last 32 bits are an IPv4 address. The local-use NAT64 prefix may put it
# elsewhere (RFC 6052 §2.2 layouts), which is one reason it is refused even when public below.
LAST32_PREFIXES = (
    (ipaddress.IPv6Network("64:ff9b::/96"), "NAT64"),  # RFC 6052 well-known prefix
    (ipaddress.IPv6Network("64:ff9b:1::/48"), "local-use NAT64"),  # RFC 8215
    (ipaddress.IPv6Network("::/96"), "IPv4-compatible"),  # RFC 4291 §2.5.5.1, deprecated
)

# What an IPv6 address that carries only public IPv4 addresses is: None allows it, a string
# is the refusal reason. IPv4-mapped: a dual-stack socket connects to the IPv4 address itself.
# 6to4 and NAT64 (64:ff9b::/96): a relay or translator delivers to the IPv4 address over the
# internet, so a public one is a public destination. Local-use NAT64: the translator is the
# operator's, and where its prefix puts the IPv4 address depends on a prefix length we cannot
# know (RFC 6052 §2.2), so it is never a public destination. Teredo and IPv4-compatible are
# deprecated and no feed is served from them: refused even when what they carry is public.
TUNNELS_WHEN_PUBLIC: dict[str, str | None] = {
    "IPv4-mapped": None,
    "6to4": None,
    "NAT64": None,
    "local-use NAT64": "local-use NAT64",
    "Teredo": "Teredo tunnel",
    "IPv4-compatible": "deprecated IPv4-compatible",
}


class DestinationRefused(Exception):
    """Raised by the guard; ``pipeline.fetch`` turns it into ``BlockedDestination``."""


class Refusal(NamedTuple):
    """Why an address is refused; ``inside`` names the IPv4 address judged in its stead."""

    reason: str
    inside: str = ""


class Tunnel(NamedTuple):
    """An IPv6 address carrying IPv4 addresses: the mechanism and (role, address) pairs."""

    kind: str
    carried: tuple[tuple[str, ipaddress.IPv4Address], ...]


@dataclass(frozen=True)
class NetworkPolicy:
    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    def check_url(self, url: str) -> None:
        """Refuse non-http(s) schemes, malformed hosts and literal IPs outside the policy."""
        try:  # raw_host, not host: aiohttp connects to it (and host may fail IDNA decoding)
            parsed = URL(url)
            host = parsed.raw_host
        except Exception as exc:  # noqa: BLE001 - a URL we cannot read is one we cannot judge
            # ValueError mostly ("Invalid IPv6 URL"), but yarl also has IndexError on
            # "http://[]@/": whatever the parser trips on, fail closed.
            raise DestinationRefused(f"malformed URL {url!r}: {exc!r}") from None
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise DestinationRefused(f"only http and https URLs are fetched, not {url!r}")
        if not host:
            raise DestinationRefused(f"URL without a host: {url!r}")
        address = literal_address(host)
        if address is None:
            return  # a name: its addresses are checked after DNS resolution
        self.check_address(address, host)

    def check_address(self, address: IPAddress, host: str) -> None:
        refused = refusal(address)
        if refused is None or self.allow_private or self.allowed(address):
            return
        shown = host if host == str(address) else f"{host} ({address})"
        what = (
            f"{shown} carries {refused.inside}, a {refused.reason} address"
            if refused.inside
            else f"{shown} is a {refused.reason} address"
        )
        raise DestinationRefused(
            f"{what}; set FEEDPIPE_ALLOW_PRIVATE_NETWORKS=true or "
            "list its network in FEEDPIPE_ALLOWED_NETWORKS to fetch it"
        )

    def allowed(self, address: IPAddress) -> bool:
        """Whether FEEDPIPE_ALLOWED_NETWORKS lists what makes the address refused.

        When that is IPv4 carried inside an IPv6 address, the IPv4 address is matched:
        ``::ffff:10.0.0.5`` and ``64:ff9b::10.0.0.5`` reach 10.0.0.5, so listing 10.0.0.0/8
        allows them. Otherwise the address itself is matched, so listing a tunnel prefix
        (64:ff9b:1::/48 for a local NAT64) allows the public addresses it carries but not a
        private one smuggled inside it."""
        tunnel = carried_ipv4(address)
        inside = [inner for _, inner in tunnel.carried if class_reason(inner)] if tunnel else []
        if inside:
            return all(self.listed(inner) for inner in inside)
        return self.listed(address)

    def listed(self, address: IPAddress) -> bool:
        return any(address in network for network in self.allowed_networks)

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        for raw in addresses:
            address = literal_address(raw)
            if address is None:
                raise DestinationRefused(f"{host} resolved to {raw!r}, which is not an address")
            self.check_address(address, host)


def literal_address(host: str) -> IPAddress | None:
    """The address a host denotes, None for a name; malformed numeric hosts are refused.

    A host whose last label is a number (or starts 0x) is an IPv4 literal to browsers and to
    ``inet_aton``; if it does not parse as one (``256.1.1.1``, ``1.2.3.4.5``, ``0x1g``) it
    denotes no address, and letting a resolver guess what it means is how filters get
    bypassed, so it is refused whatever the policy."""
    if ":" in host:  # only IPv6 literals have colons (yarl has removed the brackets)
        try:  # the zone (fe80::1%eth0) does not change the address class
            return ipaddress.IPv6Address(host.strip("[]").split("%", 1)[0])
        except ValueError:
            raise DestinationRefused(f"malformed IPv6 address {host!r}") from None
    name = unquote(host)  # browsers percent-decode a host before reading numbers from it
    if not looks_numeric(name):
        return None
    address = parse_ipv4(name)
    if address is None:
        raise DestinationRefused(f"malformed host {host!r}: numeric but not an IPv4 address")
    return address


def looks_numeric(host: str) -> bool:
    """Whether a host is meant as an IPv4 literal: WHATWG's "ends in a number", widened to
    any last label starting 0x (no top-level domain starts with a digit) and to any number
    of trailing dots (``1.2.3.4..`` is a broken literal, not a name)."""
    last = host.rstrip(".").rsplit(".", 1)[-1]
    return (last.isascii() and last.isdigit()) or last[:2].lower() == "0x"


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address an IPv4 literal in any legacy form denotes, or None (WHATWG "IPv4 parser").

    1 to 4 dot-separated parts, each decimal, octal (leading 0) or hex (0x); the last part
    fills the remaining bytes (``127.1`` is 127.0.0.1, ``2130706433`` too); one trailing dot
    is allowed; a part too big for its bytes makes the whole invalid."""
    parts = host.split(".")
    if len(parts) > 1 and not parts[-1]:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = ipv4_number(part)
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for position, number in enumerate(leading):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def ipv4_number(part: str) -> int | None:
    """One part of an IPv4 literal: ``0x`` hex, leading-``0`` octal or decimal; None if not."""
    if part[:2].lower() == "0x":
        digits, radix = part[2:], 16
    elif len(part) > 1 and part.startswith("0"):
        digits, radix = part[1:], 8
    else:
        digits, radix = part, 10
    if not digits:
        return 0 if radix == 16 else None  # "0x" alone is 0 to browsers; "" is no number
    if not set(digits) <= RADIX_DIGITS[radix]:
        return None
    if len(digits.lstrip("0")) > 11:
        return None  # ≥ 2**32 in any radix; also keeps int() off huge strings
    return int(digits, radix)


def carried_ipv4(address: IPAddress) -> Tunnel | None:
    """The IPv4 addresses an IPv6 address carries, where traffic to it is delivered."""
    if isinstance(address, ipaddress.IPv4Address) or int(address) <= 1:
        return None  # :: and ::1 (in ::/96 below) keep their own meaning
    if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        return Tunnel("IPv4-mapped", (("IPv4-mapped", address.ipv4_mapped),))
    if address.teredo is not None:  # 2001::/32: server in bits 32-63, client inverted at the end
        server, client = address.teredo
        return Tunnel("Teredo", (("Teredo server", server), ("Teredo client", client)))
    if address.sixtofour is not None:  # 2002:AABB:CCDD::/48
        return Tunnel("6to4", (("6to4", address.sixtofour),))
    kind = next((kind for prefix, kind in LAST32_PREFIXES if address in prefix), None)
    last32 = ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None if kind is None else Tunnel(kind, ((kind, last32),))


def refusal(address: IPAddress) -> Refusal | None:
    """Why an address is not on the public internet, or None when it is."""
    tunnel = carried_ipv4(address)
    if tunnel is None:
        reason = class_reason(address)
        return None if reason is None else Refusal(reason)
    for role, inner in tunnel.carried:
        reason = class_reason(inner)
        if reason is not None:
            return Refusal(reason, f"{role} {inner}")
    # Decided here, not by the IPv6 classes: the IPv4 inside is what is reached, and
    # ipaddress's verdicts on these prefixes vary (64:ff9b::/96 lies in the "reserved" ::/8;
    # the 2024 registry update made 2002::/16 non-global in newer Pythons).
    reason = TUNNELS_WHEN_PUBLIC[tunnel.kind]
    return None if reason is None else Refusal(reason)


def refusal_reason(address: IPAddress) -> str | None:
    """The reason word of ``refusal`` ("loopback", "private", ...), or None."""
    refused = refusal(address)
    return None if refused is None else refused.reason


def class_reason(address: IPAddress) -> str | None:
    """The first non-public class an address is in, by ``ipaddress`` alone."""
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
