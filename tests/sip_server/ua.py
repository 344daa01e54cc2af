"""A scripted SIP user agent over real sockets (UDP, TCP, TLS), for driving a SipServer in tests.

It writes its messages by hand (not with sipline's own Dialog or digest code, so that a bug there
cannot hide behind the same bug here) and parses what it receives with sipline's parser, which
has tests of its own. It is as lenient or as strict as a test wants: a test says what it expects.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from sipline.sip.errors import SipParseError
from sipline.sip.framing import PING, StreamFramer
from sipline.sip.headers import parse_name_addr
from sipline.sip.message import SipRequest, SipResponse, parse_message

OFFER = (
    "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 0 8 9 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
)
ANSWER = (
    "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 41000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
SRTP_OFFER = (
    "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/SAVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n"
    "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\n"
)

Message = SipRequest | SipResponse


def header_params(value: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="?([^",]+)"?', value.partition(" ")[2]))


def tag_of(value: str | None) -> str | None:
    return parse_name_addr(value or "").params.get("tag")


def uri_of(value: str | None) -> str:
    return parse_name_addr(value or "").uri


@dataclass
class Leg:
    """What a UA knows of one dialog (or dialog-to-be): enough to send requests within it."""

    call_id: str
    local_tag: str
    local_uri: str
    remote_uri: str
    remote_tag: str | None = None
    remote_target: str | None = None
    cseq: int = 1
    invite: SipRequest | None = None  # the INVITE received (a callee) or last sent (a caller)
    invite_branch: str = ""
    route_set: list[str] = field(default_factory=list)  # Route values for our in-dialog requests
    responses: list[SipResponse] = field(default_factory=list)


class UA:
    def __init__(
        self,
        username: str,
        password: str,
        domain: str,
        server: tuple[str, int],
        *,
        transport: str = "udp",
        cafile: Path | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.domain = domain
        self.server = server
        self.transport = transport
        self.cafile = cafile
        self.port = 0
        self.received: asyncio.Queue[Message] = asyncio.Queue()
        self.backlog: list[Message] = []
        self.errors: list[str] = []
        self._udp: asyncio.DatagramTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.register_cseq = 0
        self.register_call_id = secrets.token_hex(8)

    # --- sockets -----------------------------------------------------------------------------

    async def __aenter__(self) -> UA:
        loop = asyncio.get_running_loop()
        if self.transport == "udp":
            ua = self

            class Protocol(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                    ua._deliver(data)

            self._udp, _ = await loop.create_datagram_endpoint(Protocol, local_addr=("127.0.0.1", 0))
            self.port = self._udp.get_extra_info("sockname")[1]
        else:
            context = None
            if self.transport == "tls":
                context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
            reader, self._writer = await asyncio.open_connection(*self.server, ssl=context)
            self.port = self._writer.get_extra_info("sockname")[1]
            self._reader_task = loop.create_task(self._read(reader))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        framer = StreamFramer()
        try:
            while data := await reader.read(65536):
                for item in framer.feed(data):
                    if item != PING:
                        self._deliver(item)
        except Exception as exc:  # reported at the next read
            self.errors.append(f"{self.username}: reading the connection failed: {exc!r}")

    def _deliver(self, data: bytes) -> None:
        try:
            message = parse_message(data)
        except SipParseError as exc:  # a test UA reports what it could not read, at the next read
            self.errors.append(f"{self.username} received unparsable SIP ({exc.reason}): {data[:2000]!r}")
            return
        self.received.put_nowait(message)

    def send(self, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if self._udp is not None:
            self._udp.sendto(raw, self.server)
        else:
            assert self._writer is not None
            self._writer.write(raw)

    async def next(
        self, *, method: str | None = None, status: int | None = None, call_id: str | None = None, timeout: float = 5.0
    ) -> Message:
        """The next message matching all the criteria given; others wait in the backlog."""

        def matches(message: Message) -> bool:
            if method is not None and not (isinstance(message, SipRequest) and message.method == method):
                return False
            if status is not None and not (isinstance(message, SipResponse) and message.status == status):
                return False
            return call_id is None or message.headers.get("Call-ID") == call_id

        for index, message in enumerate(self.backlog):
            if matches(message):
                return self.backlog.pop(index)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            assert not self.errors, self.errors
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{self.username}: no {method or status} within {timeout} s; had {self.backlog}")
            message = await asyncio.wait_for(self.received.get(), remaining)
            if matches(message):
                return message
            self.backlog.append(message)

    async def request(self, method: str, status: int | None = None, **kwargs: object) -> SipRequest:
        message = await self.next(method=method, **kwargs)  # type: ignore[arg-type]
        assert isinstance(message, SipRequest)
        return message

    async def response(
        self, call_id: str, *, final: bool = True, method: str = "INVITE", timeout: float = 5.0
    ) -> SipResponse:
        """The next response to a request of `method` in a Call-ID (skipping 100 Trying), or the
        next final one; other messages wait in the backlog."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        skipped: list[Message] = []
        try:
            while True:
                message = await self.next(call_id=call_id, timeout=max(0.0, deadline - loop.time()))
                if (
                    isinstance(message, SipResponse)
                    and (message.headers.get("CSeq") or "").endswith(" " + method)
                    and message.status > 100
                    and (not final or message.status >= 200)
                ):
                    return message
                if not (isinstance(message, SipResponse) and message.status == 100):
                    skipped.append(message)
        finally:
            self.backlog.extend(skipped)

    # --- building messages ---------------------------------------------------------------------

    @property
    def aor(self) -> str:
        return f"sip:{self.username}@{self.domain}"

    @property
    def contact(self) -> str:
        return f"<sip:{self.username}@127.0.0.1:{self.port};transport={self.transport}>"

    def via(self, branch: str) -> str:
        return f"SIP/2.0/{self.transport.upper()} 127.0.0.1:{self.port};rport;branch={branch}"

    def build(
        self,
        method: str,
        uri: str,
        *,
        call_id: str,
        from_: str,
        to: str,
        cseq: int,
        branch: str | None = None,
        headers: list[str] | None = None,
        body: str = "",
        content_type: str = "application/sdp",
    ) -> str:
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: {self.via(branch or 'z9hG4bK' + secrets.token_hex(8))}",
            "Max-Forwards: 70",
            f"From: {from_}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: {self.contact}",
            *(headers or []),
        ]
        if body:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def reply(
        self,
        request: SipRequest,
        status: int,
        reason: str,
        *,
        tag: str | None = None,
        body: str = "",
        headers: list[str] | None = None,
    ) -> str:
        """A response to a request we received, copying what RFC 3261 §8.2.6 says to copy."""
        lines = [f"SIP/2.0 {status} {reason}"]
        lines += [f"Via: {v}" for v in request.headers.get_all("Via")]
        to = request.headers.get("To") or ""
        if tag and ";tag=" not in to:
            to += f";tag={tag}"
        lines += [f"From: {request.headers.get('From')}", f"To: {to}", f"Call-ID: {request.headers.get('Call-ID')}"]
        lines.append(f"CSeq: {request.headers.get('CSeq')}")
        if 100 < status < 300 and request.method == "INVITE":
            lines += [f"Record-Route: {r}" for r in request.headers.get_all("Record-Route")]  # §12.1.1
        if 100 < status < 300 and request.method in ("INVITE", "UPDATE"):
            lines.append(f"Contact: {self.contact}")
        lines += headers or []
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def digest(self, challenge: dict[str, str], method: str, uri: str, nc: int = 1) -> str:
        realm, nonce, cnonce = challenge["realm"], challenge["nonce"], secrets.token_hex(8)

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.username}:{realm}:{self.password}")
        response = md5(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{md5(f'{method}:{uri}')}")
        return (
            f'Digest username="{self.username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5, qop=auth, nc={nc:08x}, cnonce="{cnonce}"'
        )

    # --- scripts ---------------------------------------------------------------------------------

    async def register(self, expires: int = 3600) -> SipResponse:
        """REGISTER, and again with credentials when challenged."""
        uri = f"sip:{self.domain}"
        authorization: list[str] = []
        while True:
            self.register_cseq += 1
            self.send(
                self.build(
                    "REGISTER", uri, call_id=self.register_call_id, from_=f"<{self.aor}>;tag={secrets.token_hex(4)}",
                    to=f"<{self.aor}>", cseq=self.register_cseq, headers=[f"Expires: {expires}", *authorization],
                )
            )  # fmt: skip
            response = await self.response(self.register_call_id, method="REGISTER")
            if response.status != 401 or authorization:
                return response
            challenge = header_params(response.headers.get("WWW-Authenticate") or "")
            authorization = [f"Authorization: {self.digest(challenge, 'REGISTER', uri)}"]

    async def invite(
        self,
        to_user: str,
        *,
        body: str = OFFER,
        content_type: str = "application/sdp",
        password: str | None = None,
        uri: str | None = None,
        headers: list[str] | None = None,
    ) -> Leg:
        """Send an INVITE, answer the 407 with credentials; return the dialog-to-be (its responses
        are read with `response(leg.call_id)`)."""
        uri = uri or f"sip:{to_user}@{self.domain}"
        leg = Leg(secrets.token_hex(8), secrets.token_hex(4), f"<{self.aor}>", f"<{uri}>")
        leg.invite_branch = "z9hG4bK" + secrets.token_hex(8)
        self.send(self._invite(leg, uri, body, headers, content_type))
        challenged = await self.response(leg.call_id)
        if challenged.status != 407:
            leg.responses.append(challenged)
            return leg
        self.send(self._ack_failure(leg, uri, challenged))
        challenge = header_params(challenged.headers.get("Proxy-Authenticate") or "")
        saved, self.password = self.password, password or self.password
        auth = self.digest(challenge, "INVITE", uri)
        self.password = saved
        leg.cseq += 1
        leg.invite_branch = "z9hG4bK" + secrets.token_hex(8)
        self.send(self._invite(leg, uri, body, [*(headers or []), f"Proxy-Authorization: {auth}"], content_type))
        return leg

    def _invite(self, leg: Leg, uri: str, body: str, headers: list[str] | None, content_type: str) -> str:
        text = self.build(
            "INVITE", uri, call_id=leg.call_id, from_=f"{leg.local_uri};tag={leg.local_tag}", to=leg.remote_uri,
            cseq=leg.cseq, branch=leg.invite_branch, headers=headers, body=body, content_type=content_type,
        )  # fmt: skip
        leg.invite = parse_message(text.encode())  # type: ignore[assignment]
        return text

    def _ack_failure(self, leg: Leg, uri: str, response: SipResponse) -> str:
        return self.build(
            "ACK", uri, call_id=leg.call_id, from_=f"{leg.local_uri};tag={leg.local_tag}",
            to=response.headers.get("To") or leg.remote_uri, cseq=leg.cseq, branch=leg.invite_branch,
        )  # fmt: skip

    def ack_failure(self, leg: Leg, response: SipResponse) -> None:
        """ACK a final non-2xx to our INVITE (same branch: its transaction's, RFC 3261 §17.1.1.3)."""
        assert leg.invite is not None
        self.send(self._ack_failure(leg, leg.invite.uri, response))

    def established(self, leg: Leg, response: SipResponse) -> None:
        """Take the dialog's remote tag, target and route set from a 2xx to our INVITE."""
        leg.remote_tag = tag_of(response.headers.get("To"))
        leg.remote_target = uri_of(response.headers.get("Contact"))
        leg.route_set = list(reversed(response.headers.get_all("Record-Route")))  # §12.1.2

    def ack(self, leg: Leg, *, body: str = "") -> None:
        """ACK a 2xx: a new transaction, sent to the remote target."""
        assert leg.remote_target is not None
        self.send(
            self.build(
                "ACK", leg.remote_target, call_id=leg.call_id, from_=f"{leg.local_uri};tag={leg.local_tag}",
                to=f"{leg.remote_uri};tag={leg.remote_tag}", cseq=leg.cseq, body=body,
                headers=[f"Route: {r}" for r in leg.route_set],
            )
        )  # fmt: skip

    def in_dialog(
        self,
        leg: Leg,
        method: str,
        *,
        body: str = "",
        headers: list[str] | None = None,
        content_type: str = "application/sdp",
    ) -> str:
        """Send a request within the dialog; returns its branch."""
        assert leg.remote_target is not None
        leg.cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        self.send(
            self.build(
                method, leg.remote_target, call_id=leg.call_id, from_=f"{leg.local_uri};tag={leg.local_tag}",
                to=f"{leg.remote_uri};tag={leg.remote_tag}", cseq=leg.cseq, branch=branch,
                headers=[*(f"Route: {r}" for r in leg.route_set), *(headers or [])], body=body,
                content_type=content_type,
            )
        )  # fmt: skip
        return branch

    def cancel(self, leg: Leg) -> None:
        assert leg.invite is not None
        self.send(
            self.build(
                "CANCEL", leg.invite.uri, call_id=leg.call_id, from_=f"{leg.local_uri};tag={leg.local_tag}",
                to=leg.remote_uri, cseq=leg.cseq, branch=leg.invite_branch,
            )
        )  # fmt: skip

    # --- the callee's side ----------------------------------------------------------------------

    async def incoming(self, timeout: float = 5.0) -> Leg:
        """Wait for an INVITE; returns the dialog-to-be, as the callee."""
        invite = await self.request("INVITE", timeout=timeout)
        leg = Leg(
            call_id=invite.headers.get("Call-ID") or "",
            local_tag=secrets.token_hex(4),
            local_uri=f"<{uri_of(invite.headers.get('To'))}>",
            remote_uri=f"<{uri_of(invite.headers.get('From'))}>",
            remote_tag=tag_of(invite.headers.get("From")),
            remote_target=uri_of(invite.headers.get("Contact")),
            cseq=0,
            invite=invite,
            route_set=invite.headers.get_all("Record-Route"),  # in order, as the callee (§12.1.1)
        )
        return leg

    def answer(
        self, leg: Leg, status: int = 200, reason: str = "OK", *, body: str = ANSWER, headers: list[str] | None = None
    ) -> None:
        assert leg.invite is not None
        body = body if status < 300 or status == 183 else ""
        self.send(self.reply(leg.invite, status, reason, tag=leg.local_tag, body=body, headers=headers))
