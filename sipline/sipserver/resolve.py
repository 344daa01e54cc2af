"""Where a SIP URI outside this installation is reached (RFC 3263 §4): transport, address, port.

An IP literal is used as it is; a name with a port is looked up (A/AAAA); a name without one is
looked up by DNS SRV (`_sip._udp`, `_sip._tcp`, `_sips._tcp`, in the order of the transports
allowed), then as a plain host on 5060. NAPTR is not consulted: SRV for each transport we speak
gives the same answers for the servers people run, and one query less. A `;transport=` parameter
(or a sips: URI, TLS) fixes the transport.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception

from sipline.sip.headers import SipUri

log = logging.getLogger("sipline.sip.resolve")

DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
_SRV = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}
TIMEOUT = 2.0


@dataclass(frozen=True)
class Destination:
    transport: str  # udp, tcp, tls
    address: str  # an IP address
    port: int
    server_name: str  # the host name to check a TLS certificate against


class Resolver:
    def __init__(self, nameservers: Sequence[str] = ()) -> None:
        self._resolver = dns.asyncresolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = [str(server) for server in nameservers]
        self._resolver.lifetime = TIMEOUT

    async def resolve(self, uri: SipUri) -> list[Destination]:
        """Destinations in the order to try; [] when the name does not resolve."""
        forced = (uri.params.get("transport") or "").lower() or ("tls" if uri.scheme == "sips" else None)
        transports = [forced] if forced in DEFAULT_PORTS else (["udp", "tcp", "tls"] if forced is None else [])
        if not transports:
            return []  # a transport sipline does not speak (sctp, ws...)
        host = uri.host.strip("[]").removesuffix(".")
        if _is_ip(host):
            transport = transports[0]
            return [Destination(transport, host, uri.port or DEFAULT_PORTS[transport], host)]
        if uri.port is not None:
            transport = transports[0]
            return [Destination(transport, a, uri.port, host) for a in await self._addresses(host)]
        for transport in transports:
            found = await self._srv(host, transport)
            if found:
                return found
        transport = transports[0]
        return [Destination(transport, a, DEFAULT_PORTS[transport], host) for a in await self._addresses(host)]

    async def _srv(self, host: str, transport: str) -> list[Destination]:
        try:
            answer = await self._resolver.resolve(f"{_SRV[transport]}.{host}", "SRV")
        except (dns.exception.DNSException, OSError) as exc:
            log.debug("SRV %s.%s: %s", _SRV[transport], host, exc)
            return []
        records = sorted(answer, key=lambda r: (r.priority, -r.weight * random.random()))
        found = []
        for record in records:
            target = record.target.to_text().removesuffix(".")
            for address in await self._addresses(target):
                found.append(Destination(transport, address, record.port, target))
        return found

    async def _addresses(self, host: str) -> list[str]:
        """A and AAAA records from DNS, else what the system knows (/etc/hosts: localhost)."""
        if _is_ip(host):
            return [host]
        found: list[str] = []
        for kind in ("A", "AAAA"):
            try:
                found += [record.to_text() for record in await self._resolver.resolve(host, kind)]
            except (dns.exception.DNSException, OSError) as exc:
                log.debug("%s %s: %s", kind, host, exc)
        if found:
            return found
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        except OSError as exc:
            log.debug("address of %s: %s", host, exc)
            return []
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
