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
import socket
from collections.abc import Iterable, Sequence

__all__ = [
    "IPNetwork",
    "address_key",
    "came_over_https",
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


def _dotted_quad(text: str) -> int | None:
    """``text`` as a 32-bit number if it is an IPv4 address in canonical dotted form (the
    form every proxy writes), else None. The C parser refuses leading zeros and other
    spellings, which then take the general path."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=64)
def _v4_ranges(trusted: tuple[IPNetwork, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(
        (int(net.network_address), int(net.netmask)) for net in trusted if net.version == 4
    )


def _classify(text: str, trusted: tuple[IPNetwork, ...]) -> tuple[str, bool] | None:
    """An address as its normalised string and whether a trusted proxy has it."""
    number = _dotted_quad(text)
    if number is not None:
        return text, any(number & mask == net for net, mask in _v4_ranges(trusted))
    address = parse_ip(text)
    if address is None:
        return None
    return str(address), _trusted(address, trusted)


def resolve_client_ip(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]
) -> str:
    """The client address of a request, as a normalised string.

    ``forwarded_for`` holds the raw ``X-Forwarded-For`` header values in the order they
    arrived (several headers are read as one comma-separated list).
    """
    trusted = tuple(trusted)
    peer_seen = _classify(peer, trusted) if peer else None
    if peer_seen is None:
        return UNKNOWN
    if not forwarded_for or not peer_seen[1]:
        # An untrusted peer's X-Forwarded-For is the client's own claim: ignored entirely.
        return peer_seen[0]
    hops = [part for value in forwarded_for for part in value.split(",")]
    nearest = peer_seen[0]
    for raw in reversed(hops):
        seen = _classify(raw.strip(), trusted)
        if seen is None:
            # A trusted proxy never writes garbage, so the chain is broken here; stop at the
            # last hop we could vouch for rather than guess further left.
            return nearest
        if not seen[1]:
            return seen[0]
        nearest = seen[0]
    # Every hop is one of ours: the request came from inside the trusted network.
    return nearest


@functools.lru_cache(maxsize=65536)
def address_key(ip: str) -> str:
    """The per-address bucket: the IPv4 address, or the IPv6 /64 (one subscriber's LAN)."""
    if _dotted_quad(ip) is not None:
        return ip
    address = parse_ip(ip)
    if address is None:
        return UNKNOWN
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@functools.lru_cache(maxsize=65536)
def prefix_key(ip: str) -> str:
    """The per-network bucket for fan-out over neighbouring addresses: IPv4 /24, IPv6 /48."""
    if _dotted_quad(ip) is not None:
        return ip[:ip.rindex(".")] + ".0/24"
    address = parse_ip(ip)
    if address is None:
        return UNKNOWN + "/24"
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 48), strict=False))
    return str(ipaddress.IPv4Network((address, 24), strict=False))


def came_over_https(scheme: str, peer: str | None, forwarded_proto: Sequence[str],
                    trusted: Sequence[IPNetwork]) -> bool:
    """Whether the client's request reached us over HTTPS, as far as the server can tell:
    its own TLS (``scheme``), or, from one of our proxies only, the proxy's
    ``X-Forwarded-Proto`` (the right-most value: the one the nearest proxy wrote)."""
    if scheme == "https":
        return True
    if not forwarded_proto or not peer:
        return False
    seen = _classify(peer, tuple(trusted))
    if seen is None or not seen[1]:
        return False
    nearest = forwarded_proto[-1].split(",")[-1].strip().lower()
    return nearest == "https"
