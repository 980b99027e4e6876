"""Which address a request really came from, and the rate-limit keys derived from it.

The peer address of the TCP connection is the only thing the server knows for sure. When
that peer is one of our own reverse proxies (a configured CIDR), the proxy's
``X-Forwarded-For`` is believed one hop at a time, from the right: every proxy appends the
address it saw, so the right-most address that is *not* a trusted proxy is the client. The
left-most entry is whatever the client chose to send, which is why it is never used.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence

__all__ = [
    "IPNetwork",
    "address_key",
    "parse_ip",
    "parse_networks",
    "prefix_key",
    "resolve_client_ip",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a request is attributed to when even the peer address is missing or unreadable (some
# test transports and unix sockets). One shared bucket is the safe choice: it is limited.
UNKNOWN = "0.0.0.0"  # noqa: S104 - a key, not a bind address


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The trusted-proxy CIDR list, parsed once (host bits are allowed and ignored)."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs if c.strip())


def parse_ip(value: str) -> IPAddress | None:
    """An address from a header or peer field, or None if it is not one.

    Accepts what proxies actually write: ``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``,
    ``[2001:db8::1]:443``. IPv4-mapped IPv6 (``::ffff:1.2.3.4``) is folded to IPv4 so one
    client does not get two sets of buckets.
    """
    text = value.strip().strip('"')
    if not text or len(text) > 64:
        return None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def resolve_client_ip(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]
) -> str:
    """The client address of a request, as a normalised string.

    ``forwarded_for`` holds the raw ``X-Forwarded-For`` header values in the order they
    arrived (several headers are read as one comma-separated list).
    """
    peer_address = parse_ip(peer) if peer else None
    if peer_address is None:
        return UNKNOWN
    if not forwarded_for or not _trusted(peer_address, trusted):
        # An untrusted peer's X-Forwarded-For is the client's own claim: ignored entirely.
        return str(peer_address)
    hops = [part for value in forwarded_for for part in value.split(",")]
    nearest = peer_address
    for raw in reversed(hops):
        address = parse_ip(raw)
        if address is None:
            # A trusted proxy never writes garbage, so the chain is broken here; stop at the
            # last hop we could vouch for rather than guess further left.
            return str(nearest)
        if not _trusted(address, trusted):
            return str(address)
        nearest = address
    # Every hop is one of ours: the request came from inside the trusted network.
    return str(nearest)


@functools.lru_cache(maxsize=65536)
def address_key(ip: str) -> str:
    """The per-address bucket: the IPv4 address, or the IPv6 /64 (one subscriber's LAN)."""
    address = parse_ip(ip)
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@functools.lru_cache(maxsize=65536)
def prefix_key(ip: str) -> str:
    """The per-network bucket for fan-out over neighbouring addresses: IPv4 /24, IPv6 /48."""
    address = parse_ip(ip)
    if address is None:
        return UNKNOWN + "/24"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 48), strict=False))
    return str(ipaddress.IPv4Network((address, 24), strict=False))
