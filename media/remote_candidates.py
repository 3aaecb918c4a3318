"""Which of a page's ICE candidates the server's peer may send connectivity checks to.

A page's audio offer lists its candidates, and aioice sends STUN binding requests to every one
of them: left alone, any page could make the server probe any address and port, inside its own
network too. Only these are kept:

- the address the page's WebSocket came from (for IPv6, the same /64);
- when that address is loopback (the page runs on this machine: tests, local use), loopback
  and this machine's own addresses;
- the addresses of the configured TURN servers (a page's relay candidates).

mDNS names (`*.local`, whose answer anyone on the LAN could give) and TCP candidates are
dropped. A browser that hides its addresses is still reached: its own checks to the server's
candidates make aioice learn it as a peer-reflexive candidate. For that, an offer that lost
candidates also loses its `a=end-of-candidates`: with it, aioice would give up at once on an
empty (or failing) check list, before the browser's first check arrives.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_EVERY_S = 300.0


def _address(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def turn_hosts(ice_servers: Iterable[dict[str, Any]]) -> list[str]:
    """The host names or addresses of the TURN servers among RTCIceServer dicts."""
    hosts: list[str] = []
    for server in ice_servers:
        urls = server.get("urls", [])
        for url in urls if isinstance(urls, list) else [urls]:
            text = str(url)
            if not text.startswith(("turn:", "turns:")):
                continue
            # turn:host:port?transport=udp has no "//": give urlsplit one to find the host.
            host = urlsplit("//" + text.split(":", 1)[1].split("?", 1)[0]).hostname
            if host:
                hosts.append(host)
    return hosts


@functools.cache
def _own_addresses() -> frozenset[IpAddress]:
    """This machine's interface addresses, as aioice gathers its host candidates from them."""
    from aioice.ice import get_host_addresses

    found = {_address(a) for a in get_host_addresses(use_ipv4=True, use_ipv6=True)}
    return frozenset(a for a in found if a is not None)


class RemoteCandidatePolicy:
    """Filters the candidates of a page's SDP down to the addresses it may legitimately name."""

    def __init__(self, relay_hosts: Iterable[str] = ()) -> None:
        self.relay_hosts = list(relay_hosts)
        self._relays: frozenset[IpAddress] = frozenset()
        self._resolved_at = float("-inf")

    async def relays(self) -> frozenset[IpAddress]:
        """The TURN servers' addresses, resolved again every few minutes."""
        if time.monotonic() - self._resolved_at < RESOLVE_EVERY_S:
            return self._relays
        loop = asyncio.get_running_loop()
        found: set[IpAddress] = set()
        for host in self.relay_hosts:
            literal = _address(host)
            if literal is not None:
                found.add(literal)
                continue
            try:
                infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
            except OSError as exc:
                log.warning("could not resolve the TURN server %s: %s", host, exc)
                continue
            found.update(a for a in (_address(str(info[4][0])) for info in infos) if a)
        self._relays, self._resolved_at = frozenset(found), time.monotonic()
        return self._relays

    @staticmethod
    def allows(address: IpAddress, client: IpAddress | None, relays: frozenset[IpAddress]) -> bool:
        """Whether a check may go to `address` for a page whose WebSocket came from `client`."""
        if address.is_multicast or address.is_unspecified:
            return False
        if address in relays:
            return True
        if client is None:
            return False
        if client.is_loopback and (address.is_loopback or address in _own_addresses()):
            return True
        if isinstance(address, ipaddress.IPv6Address) and isinstance(client, ipaddress.IPv6Address):
            return address in ipaddress.ip_network(f"{client}/64", strict=False)
        return address == client

    async def filter(self, sdp: str, client_address: str) -> tuple[str, int]:
        """The SDP without the candidates the server must not check; and how many went."""
        client = _address(client_address)
        relays = await self.relays()
        kept: list[str] = []
        dropped = 0
        for line in sdp.splitlines(keepends=True):
            if line.startswith("a=candidate:"):
                parts = line.split()
                address = _address(parts[4]) if len(parts) >= 8 else None
                if (
                    address is None
                    or parts[2].lower() != "udp"
                    or not self.allows(address, client, relays)
                ):
                    dropped += 1
                    continue
            kept.append(line)
        if dropped:
            kept = [line for line in kept if not line.startswith("a=end-of-candidates")]
        return "".join(kept), dropped
