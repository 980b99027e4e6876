"""The client address comes from the peer, or from X-Forwarded-For only through our own
proxies, read from the right."""

from __future__ import annotations

import pytest

from fairslot.guard.client_ip import (
    address_key,
    parse_networks,
    prefix_key,
    resolve_client_ip,
)

TRUSTED = parse_networks(["10.0.0.0/8", "fd00::/8"])


def test_an_untrusted_peers_forwarded_for_is_ignored() -> None:
    assert resolve_client_ip("203.0.113.7", ["1.2.3.4"], TRUSTED) == "203.0.113.7"


def test_a_trusted_proxy_chain_resolves_to_the_right_most_untrusted_address() -> None:
    chain = ["6.6.6.6, 198.51.100.9", "10.0.0.7"]
    assert resolve_client_ip("10.0.0.5", chain, TRUSTED) == "198.51.100.9"


def test_the_left_most_address_is_never_taken_from_a_spoofed_chain() -> None:
    # The client sent "1.1.1.1" itself; our proxy appended the real peer 198.51.100.9.
    assert resolve_client_ip("10.0.0.5", ["1.1.1.1, 198.51.100.9"], TRUSTED) == "198.51.100.9"


def test_a_trusted_peer_without_forwarded_for_is_the_client() -> None:
    assert resolve_client_ip("10.0.0.5", [], TRUSTED) == "10.0.0.5"


@pytest.mark.parametrize("garbage", ["unknown", "999.1.1.1", "", "a" * 100, "[::1"])
def test_a_malformed_hop_stops_the_walk_at_the_nearest_trusted_hop(garbage: str) -> None:
    assert resolve_client_ip("10.0.0.5", [f"{garbage}, 10.0.0.9"], TRUSTED) == "10.0.0.9"


def test_a_malformed_hop_left_of_the_client_does_not_matter() -> None:
    assert resolve_client_ip("10.0.0.5", ["junk, 198.51.100.9"], TRUSTED) == "198.51.100.9"


def test_ports_and_brackets_written_by_proxies_are_understood() -> None:
    assert resolve_client_ip("10.0.0.5", ["198.51.100.9:5555"], TRUSTED) == "198.51.100.9"
    assert resolve_client_ip("10.0.0.5", ["[2001:db8::5]:443"], TRUSTED) == "2001:db8::5"


def test_ipv6_peers_and_chains_are_supported() -> None:
    assert resolve_client_ip("2001:db8::1", ["fd00::1"], TRUSTED) == "2001:db8::1"
    assert resolve_client_ip("fd00::2", ["2001:db8::7, fd00::3"], TRUSTED) == "2001:db8::7"


def test_ipv4_mapped_ipv6_is_folded_to_ipv4() -> None:
    assert resolve_client_ip("::ffff:203.0.113.7", [], TRUSTED) == "203.0.113.7"


def test_a_missing_or_unreadable_peer_shares_one_limited_bucket() -> None:
    assert resolve_client_ip(None, ["1.2.3.4"], TRUSTED) == "0.0.0.0"
    assert resolve_client_ip("not-an-ip", [], TRUSTED) == "0.0.0.0"


def test_rate_limit_keys_group_ipv4_by_24_and_ipv6_by_64_and_48() -> None:
    assert address_key("203.0.113.7") == "203.0.113.7"
    assert prefix_key("203.0.113.7") == "203.0.113.0/24"
    assert address_key("2001:db8:1:2:3::9") == "2001:db8:1:2::/64"
    assert prefix_key("2001:db8:1:2:3::9") == "2001:db8:1::/48"
