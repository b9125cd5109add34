"""Where webhooks may be sent: http(s) URLs without credentials whose host resolves only to
public addresses (no private, loopback, link-local, multicast, reserved or unspecified ones),
so a subscription cannot turn the worker into a probe of its own network (SSRF).

The check runs when a subscription is created and again before every attempt (DNS answers
change). Between that check and the connection the name is resolved once more; the
:class:`PublicOnlyResolver` used by the dispatcher's connections refuses private answers there
too, which closes the DNS-rebinding window. `WEBHOOKS_ALLOW_PRIVATE=true` lifts all of this for
local development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


class DestinationRefusedError(Exception):
    """The URL is malformed, or its host is not (only) on public addresses."""


@dataclass(frozen=True, slots=True)
class Destination:
    host: str
    port: int


def parse(url: str) -> Destination:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        msg = "the URL is malformed"
        raise DestinationRefusedError(msg) from None
    if parts.scheme not in DEFAULT_PORTS:
        msg = "only http and https URLs are allowed"
        raise DestinationRefusedError(msg)
    if parts.username is not None or parts.password is not None:
        msg = "credentials in the URL are not allowed (authenticate with the signature)"
        raise DestinationRefusedError(msg)
    if not parts.hostname:
        msg = "the URL has no host"
        raise DestinationRefusedError(msg)
    return Destination(host=parts.hostname, port=port or DEFAULT_PORTS[parts.scheme])


def refusal(address: IPAddress) -> str | None:
    """Why an address is not a public destination, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:
        return "not-global"  # e.g. shared address space (100.64.0.0/10)
    return None


def check_addresses(host: str, addresses: list[str]) -> None:
    for raw in addresses:
        reason = refusal(ipaddress.ip_address(raw.split("%", 1)[0]))
        if reason is not None:
            msg = f"{host} resolves to a {reason} address ({raw}), which is not allowed"
            raise DestinationRefusedError(msg)


async def resolve(destination: Destination, *, timeout: float) -> list[str]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(
                destination.host, destination.port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError):
        msg = f"the host {destination.host} does not resolve"
        raise DestinationRefusedError(msg) from None
    return sorted({str(info[4][0]) for info in infos})


async def check(url: str, *, allow_private: bool, timeout: float) -> None:
    """Raise DestinationRefusedError unless webhooks may be sent to `url` now."""
    destination = parse(url)
    if allow_private:
        return
    check_addresses(destination.host, await resolve(destination, timeout=timeout))


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, refusing a name whose answers include a non-public address."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        try:
            check_addresses(host, [result["host"] for result in results])
        except DestinationRefusedError as exc:
            raise OSError(str(exc)) from None
        return results

    async def close(self) -> None:
        await self._inner.close()
