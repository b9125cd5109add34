"""The client address behind rate limits: the peer, or X-Forwarded-For only via trusted proxies."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.client_ip import client_ip
from gateway.rates import parse_networks

PROXIES = parse_networks("10.0.0.0/8,fd00::/8")


def _scope(peer: str | None, *forwarded_for: str) -> dict[str, Any]:
    return {
        "type": "http",
        "client": (peer, 5000) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded_for],
    }


def test_the_peer_is_the_client_without_trusted_proxies() -> None:
    assert client_ip(_scope("10.1.2.3", "198.51.100.7"), ()) == "10.1.2.3"


def test_an_untrusted_peer_cannot_claim_another_address() -> None:
    assert client_ip(_scope("203.0.113.9", "198.51.100.7"), PROXIES) == "203.0.113.9"


def test_a_trusted_proxy_names_the_client() -> None:
    assert client_ip(_scope("10.1.2.3", "198.51.100.7"), PROXIES) == "198.51.100.7"


def test_addresses_a_client_prepended_are_not_believed() -> None:
    # The client sent "6.6.6.6"; the trusted proxy appended the address it saw.
    scope = _scope("10.1.2.3", "6.6.6.6, 198.51.100.7")
    assert client_ip(scope, PROXIES) == "198.51.100.7"


def test_chained_trusted_proxies_are_skipped() -> None:
    scope = _scope("10.1.2.3", "198.51.100.7, 10.9.9.9", "fd00::1")
    assert client_ip(scope, PROXIES) == "198.51.100.7"


def test_only_trusted_hops_means_the_left_most_is_the_client() -> None:
    assert client_ip(_scope("10.1.2.3", "10.4.4.4, 10.5.5.5"), PROXIES) == "10.4.4.4"


@pytest.mark.parametrize("header", ["", "not-an-ip", "198.51.100.7, garbage"])
def test_garbage_forwarded_for_never_yields_a_client_chosen_address(header: str) -> None:
    assert client_ip(_scope("10.1.2.3", header), PROXIES) == "10.1.2.3"


def test_ipv6_peer_is_normalised() -> None:
    assert client_ip(_scope("2001:DB8::0001"), ()) == "2001:db8::1"


def test_missing_peer_is_unknown() -> None:
    assert client_ip(_scope(None), PROXIES) == "unknown"
