"""RFC 3263 resolution of SIP URIs outside the installation, against a real DNS server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from sipline.sip.headers import parse_uri
from sipline.sipserver.resolve import Destination, Resolver

ZONE = {
    ("_sip._udp.example.test.", "SRV"): ["10 60 5070 sip1.example.test.", "20 0 5080 sip2.example.test."],
    ("_sips._tcp.secure.test.", "SRV"): ["0 0 5061 tls.secure.test."],
    ("sip1.example.test.", "A"): ["127.0.0.11"],
    ("sip2.example.test.", "A"): ["127.0.0.12"],
    ("tls.secure.test.", "A"): ["127.0.0.13"],
    ("plain.test.", "A"): ["127.0.0.14"],
}


class _Dns(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        question = query.question[0]
        answers = ZONE.get((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)), [])
        if answers:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, question.rdtype, answers)
            )
        self.transport.sendto(response.to_wire(), addr)  # type: ignore[attr-defined]


@pytest.fixture
async def resolver() -> AsyncIterator[Resolver]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_Dns, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    found = Resolver(["127.0.0.1"])
    found._resolver.port = port  # the test server listens on a port of its own
    try:
        yield found
    finally:
        transport.close()


async def test_an_ip_literal_is_used_as_it_is(resolver: Resolver):
    assert await resolver.resolve(parse_uri("sip:bob@127.0.0.1:5090")) == [
        Destination("udp", "127.0.0.1", 5090, "127.0.0.1")
    ]
    assert await resolver.resolve(parse_uri("sip:bob@127.0.0.1;transport=tcp")) == [
        Destination("tcp", "127.0.0.1", 5060, "127.0.0.1")
    ]
    assert await resolver.resolve(parse_uri("sips:bob@127.0.0.1")) == [
        Destination("tls", "127.0.0.1", 5061, "127.0.0.1")
    ]


async def test_a_name_without_port_is_found_by_srv_in_priority_order(resolver: Resolver):
    found = await resolver.resolve(parse_uri("sip:bob@example.test"))
    assert found == [
        Destination("udp", "127.0.0.11", 5070, "sip1.example.test"),
        Destination("udp", "127.0.0.12", 5080, "sip2.example.test"),
    ]


async def test_a_tls_uri_uses_the_sips_service_and_keeps_the_name_for_the_certificate(resolver: Resolver):
    found = await resolver.resolve(parse_uri("sip:bob@secure.test;transport=tls"))
    assert found == [Destination("tls", "127.0.0.13", 5061, "tls.secure.test")]


async def test_without_srv_the_host_is_used_on_the_default_port(resolver: Resolver):
    assert await resolver.resolve(parse_uri("sip:bob@plain.test")) == [
        Destination("udp", "127.0.0.14", 5060, "plain.test")
    ]
    assert await resolver.resolve(parse_uri("sip:bob@plain.test:5099;transport=tcp")) == [
        Destination("tcp", "127.0.0.14", 5099, "plain.test")
    ]


async def test_names_that_do_not_resolve_and_foreign_transports_give_nothing(resolver: Resolver):
    assert await resolver.resolve(parse_uri("sip:bob@nowhere.invalid")) == []
    assert await resolver.resolve(parse_uri("sip:bob@127.0.0.1;transport=sctp")) == []
