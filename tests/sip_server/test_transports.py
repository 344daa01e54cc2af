"""The asyncio transports on real loopback sockets: answers arrive, and abuse never stops the server."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import socket
import sqlite3
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sipline.net import StartupError
from sipline.runtime import Runtime
from sipline.sip.message import parse_message
from sipline.sipserver import shedding
from sipline.sipserver.server import SipServer
from sipline.sipserver.transports import udp as udp_transport
from tests.conftest import new_project, until
from tests.scrape import moved, scrape
from tests.sip_server.sip_phone import Phone, challenges, digest_authorization

IDLE = 0.5


def options(port: int, transport: str = "UDP", branch: str = "z9hG4bKopt1", via_port: int | None = None) -> bytes:
    return (
        f"OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:{via_port or port};rport;branch={branch}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
        f"Call-ID: {branch}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _runtime_on_free_ports(runtime: Runtime, data_dir: Path) -> Runtime:
    settings = runtime.settings.model_copy(
        update={"sip_udp_port": 0, "sip_tcp_port": 0, "sip_tls_port": 0, "data_dir": data_dir}
    )
    return dataclasses.replace(runtime, settings=settings)


@pytest.fixture
async def server(runtime: Runtime, tmp_path: Path) -> AsyncIterator[SipServer]:
    sip = SipServer(_runtime_on_free_ports(runtime, tmp_path), idle_timeout=IDLE)
    await sip.start()
    yield sip
    await sip.stop()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)


async def test_udp_answers_after_a_flood_of_garbage(server: SipServer):
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Udp, remote_addr=("127.0.0.1", server.ports["udp"]))
    try:
        for i in range(3000):
            transport.sendto(bytes([i % 256]) * (i % 1400 + 1))
        port = transport.get_extra_info("sockname")[1]
        answer = b""
        for _ in range(25):  # retransmit like a client would: the kernel may drop datagrams in a flood
            transport.sendto(options(port))
            try:
                answer = await asyncio.wait_for(client.received.get(), 0.2)
                break
            except TimeoutError:
                continue
        assert answer.startswith(b"SIP/2.0 200 OK")
        # One more request, answered after everything sent before it: then nothing else is on its way.
        transport.sendto(options(port, branch="z9hG4bKlast"))
        answers = [answer]
        while b"z9hG4bKlast" not in answers[-1]:
            answers.append(await asyncio.wait_for(client.received.get(), 5))
        assert all(a.startswith(b"SIP/2.0 200") for a in answers)
    finally:
        transport.close()


async def test_udp_answer_goes_to_the_source_port_when_rport_is_asked(server: SipServer):
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Udp, remote_addr=("127.0.0.1", server.ports["udp"]))
    try:
        port = transport.get_extra_info("sockname")[1]
        transport.sendto(options(port, via_port=9))  # the Via lies about the port; rport wins
        answer = await asyncio.wait_for(client.received.get(), 5)
        assert f"rport={port}".encode() in answer and b"received=127.0.0.1" in answer
    finally:
        transport.close()


async def test_a_retransmitted_udp_request_gets_the_same_answer_from_what_is_kept_of_it(server: SipServer):
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Udp, remote_addr=("127.0.0.1", server.ports["udp"]))
    try:
        port = transport.get_extra_info("sockname")[1]
        request = options(port, branch="z9hG4bKretransmitted")
        transport.sendto(request)
        first = await asyncio.wait_for(client.received.get(), 5)
        transport.sendto(request)
        assert await asyncio.wait_for(client.received.get(), 5) == first
        # What answers it until Timer J is kept as plain values, which the cyclic collector does
        # not traverse: a registrar keeps tens of thousands (their full passes took over 100 ms).
        kept = server.service.transactions._server_echoes._items
        assert kept
        for _ in range(3):  # each pass untracks the tuples it finds holding only untracked values
            gc.collect()
        assert not any(gc.is_tracked(entry) for entry in kept.values())
    finally:
        transport.close()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return head


async def test_tcp_answers_each_message_on_the_same_connection(server: SipServer):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
    try:
        # Two messages in one segment, then one split across two writes.
        writer.write(options(1, "TCP", "z9hG4bKa") + options(1, "TCP", "z9hG4bKb"))
        msg = options(1, "TCP", "z9hG4bKc")
        writer.write(msg[:20])
        await writer.drain()
        # Once the server holds the first part, send the rest: the message arrives in two reads.
        await until(lambda: any(c.framer.buffered == 20 for c in server._connections))
        writer.write(msg[20:])
        answers = [await _read_response(reader) for _ in range(3)]
        assert all(a.startswith(b"SIP/2.0 200 OK") for a in answers)
        assert sorted(a.split(b"branch=")[1][:8] for a in answers) == [b"z9hG4bKa", b"z9hG4bKb", b"z9hG4bKc"]
    finally:
        writer.close()


async def test_tcp_keepalive_ping_gets_a_pong(server: SipServer):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
    try:
        writer.write(b"\r\n\r\n")
        assert await asyncio.wait_for(reader.readexactly(2), 5) == b"\r\n"
    finally:
        writer.close()


async def test_silent_tcp_client_neither_blocks_others_nor_stays_connected(server: SipServer):
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
    silent_writer.write(b"REGISTER sip:half")  # a message that never completes
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
    try:
        writer.write(options(1, "TCP"))
        assert (await _read_response(reader)).startswith(b"SIP/2.0 200 OK")
        # Closed by the server once idle, without ever answering.
        assert await asyncio.wait_for(silent_reader.read(), IDLE * 6) == b""
    finally:
        writer.close()
        silent_writer.close()


async def test_a_stream_that_cannot_be_framed_is_closed_and_others_keep_working(server: SipServer):
    bad_reader, bad_writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
    bad_writer.write(b"X" * 70_000)  # a header section beyond the size limit
    assert await asyncio.wait_for(bad_reader.read(), 5) == b""
    bad_writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tcp"])
    try:
        writer.write(options(1, "TCP"))
        assert (await _read_response(reader)).startswith(b"SIP/2.0 200 OK")
    finally:
        writer.close()


async def test_tls_answers_with_the_generated_certificate(server: SipServer, tmp_path: Path):
    cert = tmp_path / "sip-tls-cert.pem"
    assert cert.exists()
    context = ssl.create_default_context(cafile=str(cert))  # verifies the chain and the IP name
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ports["tls"], ssl=context)
    try:
        writer.write(options(1, "TLS"))
        assert (await _read_response(reader)).startswith(b"SIP/2.0 200 OK")
    finally:
        writer.close()


async def test_a_port_in_use_is_a_one_line_startup_error(runtime: Runtime, tmp_path: Path):
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    try:
        rt = _runtime_on_free_ports(runtime, tmp_path)
        rt = dataclasses.replace(rt, settings=rt.settings.model_copy(update={"sip_udp_port": taken.getsockname()[1]}))
        with pytest.raises(StartupError) as failure:
            await SipServer(rt).start()
        assert "udp:127.0.0.1" in str(failure.value) and "\n" not in str(failure.value)
    finally:
        taken.close()


async def test_a_udp_register_whose_answer_must_wait_for_the_database_is_answered(
    server: SipServer, runtime: Runtime, sip_client, caplog
):
    """The answer waits (the write lock is held by another process, or the store is PostgreSQL):
    it still arrives, nothing is logged as an error, and later writes of the process still work."""
    project = await new_project(runtime, sip_client)
    endpoint = await project.create()
    domain = (await project.request("GET", "/sip_profile")).json()["domain"]
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Udp, remote_addr=("127.0.0.1", server.ports["udp"]))
    phone = Phone(server.service, domain, endpoint["username"], "s3cret-pass")
    phone.source = ("127.0.0.1", transport.get_extra_info("sockname")[1])
    lock = None
    try:
        transport.sendto(phone.register_bytes())
        [challenge] = challenges(parse_message(await asyncio.wait_for(client.received.get(), 5)))  # type: ignore[arg-type]
        auth = digest_authorization(challenge, phone.username, phone.password, f"sip:{domain}")
        if runtime.db.is_sqlite:
            lock = sqlite3.connect(runtime.db.url.database or "", isolation_level=None)
            lock.execute("BEGIN IMMEDIATE")  # as `sipline projects create` in another process would
        transport.sendto(phone.register_bytes(authorization=auth))
        if lock is not None:
            for _ in range(5):
                await asyncio.sleep(0)
            assert client.received.empty()  # it waits for the lock...
            lock.execute("ROLLBACK")
        answer = parse_message(await asyncio.wait_for(client.received.get(), 10))
        assert answer.status == 200  # type: ignore[union-attr]  # ...and is answered once it is free
        assert (
            await project.request("PUT", f"/endpoints/sip/{endpoint['id']}", json={"caller_id": "x"})
        ).status_code == 201
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    finally:
        if lock is not None:
            lock.close()
        transport.close()


async def test_a_failure_after_sip_started_leaves_no_listener_open(runtime: Runtime, tmp_path: Path, monkeypatch):
    """serve() cleans up whatever it started, whichever step fails."""
    from sipline import serve as serve_module

    settings = _runtime_on_free_ports(runtime, tmp_path).settings.model_copy(
        update={"database_url": runtime.settings.resolved_database_url, "http_port": 0}
    )
    started: list[SipServer] = []
    original_start = SipServer.start

    async def recording_start(self: SipServer) -> None:
        started.append(self)
        await original_start(self)

    def failing_app(rt: Runtime) -> None:
        raise RuntimeError("the app could not be built")

    monkeypatch.setattr(SipServer, "start", recording_start)
    monkeypatch.setattr(serve_module, "create_app", failing_app)
    with pytest.raises(RuntimeError, match="could not be built"):
        await serve_module.serve(settings)
    [sip] = started
    for kind, port in sip.ports.items():  # each port can be bound again: nothing listens on it
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", port))
        finally:
            sock.close()


# --- shedding: what waited too long in the socket's queue and would start work is dropped unread ---


def _message(first_line: str, *headers: str) -> bytes:
    common = [
        "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKshed",
        "From: <sip:a@example.test>;tag=1",
        "Call-ID: shed-1",
        "CSeq: 1 " + first_line.split(" ", 1)[0],
    ]
    return ("\r\n".join([first_line, *common, *headers, "Content-Length: 0"]) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("data", "starts"),
    [
        (_message("REGISTER sip:example.test SIP/2.0", "To: <sip:a@example.test>"), True),
        (_message("INVITE sip:b@example.test SIP/2.0", "To: <sip:b@example.test>"), True),
        (_message("OPTIONS sip:example.test SIP/2.0", "To: <sip:example.test>"), True),
        # answering a challenge: the second half of work already started
        (_message("REGISTER sip:example.test SIP/2.0", "To: <sip:a@example.test>", "authorization: Digest x"), False),
        (
            _message("INVITE sip:b@example.test SIP/2.0", "t: <sip:b@example.test>", "Proxy-Authorization: Digest x"),
            False,
        ),
        # in a dialog, or ending something
        (_message("INVITE sip:b@example.test SIP/2.0", "To: <sip:b@example.test> ; TAG = 9"), False),
        (_message("BYE sip:b@example.test SIP/2.0", "To: <sip:b@example.test>"), False),
        (_message("ACK sip:b@example.test SIP/2.0", "To: <sip:b@example.test>"), False),
        (_message("CANCEL sip:b@example.test SIP/2.0", "To: <sip:b@example.test>"), False),
        (b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n\r\n", False),
    ],
)
def test_which_requests_start_work(data: bytes, starts: bool) -> None:
    assert shedding.starts_work(data) is starts


async def test_stale_requests_that_would_start_work_are_shed_and_the_rest_answered(
    server: SipServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(udp_transport, "SHED_AFTER", -1.0)  # as if everything had waited too long
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Udp, remote_addr=("127.0.0.1", server.ports["udp"]))
    try:
        port = transport.get_extra_info("sockname")[1]
        before = scrape()
        transport.sendto(options(port, branch="z9hG4bKshed1"))  # a ping: new work, shed
        register = _message("REGISTER sip:sip.localhost SIP/2.0", "To: <sip:a@sip.localhost>")
        transport.sendto(register)  # a first REGISTER: shed
        bye = _message("BYE sip:b@127.0.0.1 SIP/2.0", "To: <sip:b@127.0.0.1>;tag=9", "Max-Forwards: 70")
        transport.sendto(bye.replace(b"127.0.0.1:5070", f"127.0.0.1:{port}".encode()))
        answer = await asyncio.wait_for(client.received.get(), 5)
        # The BYE (no such dialog) is answered; what was sent before it was not, or it would be here first.
        assert answer.startswith(b"SIP/2.0 481"), answer
        assert client.received.empty()
        assert moved(before, scrape(), "sipline_sip_requests_shed_total") == 2
    finally:
        transport.close()


async def test_requests_that_would_start_work_are_shed_unread_while_the_store_is_saturated(
    server: SipServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Saturation itself is PostgreSQL's pool (tests/store/test_postgres_pool.py); here, what UDP does with it.
    monkeypatch.setattr(type(server.service.runtime.db), "saturated", property(lambda _db: True))
    loop = asyncio.get_running_loop()
    transport, client = await loop.create_datagram_endpoint(_Udp, remote_addr=("127.0.0.1", server.ports["udp"]))
    try:
        port = transport.get_extra_info("sockname")[1]
        before = scrape()
        transport.sendto(_message("REGISTER sip:sip.localhost SIP/2.0", "To: <sip:a@sip.localhost>"))  # shed
        bye = _message("BYE sip:b@127.0.0.1 SIP/2.0", "To: <sip:b@127.0.0.1>;tag=9", "Max-Forwards: 70")
        transport.sendto(bye.replace(b"127.0.0.1:5070", f"127.0.0.1:{port}".encode()))
        answer = await asyncio.wait_for(client.received.get(), 5)
        assert answer.startswith(b"SIP/2.0 481"), answer  # work that ends something is still served
        assert client.received.empty()
        after = scrape()
        assert moved(before, after, "sipline_sip_requests_shed_total") == 1
        # Unread: only the BYE reached the service (the REGISTER was not parsed, then dropped).
        assert moved(before, after, "sipline_sip_messages_received_total", transport="udp", kind="request") == 1
    finally:
        transport.close()
