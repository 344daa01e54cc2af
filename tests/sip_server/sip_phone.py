"""A scripted SIP user agent for driving `SipService` with bytes, as a softphone would.

The digest response is computed here with hashlib, independently of sipline.sip.digest, so a bug
there cannot hide behind the same bug in the test.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

from sipline.sip.message import SipResponse, parse_message
from sipline.sipserver.flows import Flow
from sipline.sipserver.service import SipService


class RecordingFlow(Flow):
    """A flow that keeps what the service sends on it, for tests that speak bytes."""

    def __init__(self, transport: str = "udp", remote: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        self.transport = transport
        self.remote = remote
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> bool:
        self.sent.append(data)
        return True


async def exchange(service: SipService, data: bytes, flow: RecordingFlow) -> list[bytes]:
    """Hand `data` to the service as if it came in on `flow`; what it sent back meanwhile."""
    before = len(flow.sent)
    task = service.receive(data, flow)
    if task is not None:
        await task
    return flow.sent[before:]


def challenges(response: SipResponse, header: str = "WWW-Authenticate") -> list[dict[str, str]]:
    out = []
    for value in response.headers.get_all(header):
        params = dict(re.findall(r'(\w+)="?([^",]+)"?', value.partition(" ")[2]))
        out.append(params)
    return out


def proxy_challenges(response: SipResponse) -> list[dict[str, str]]:
    return challenges(response, "Proxy-Authenticate")


def digest_authorization(
    challenge: dict[str, str], username: str, password: str, uri: str, *, nc: int = 1, method: str = "REGISTER"
) -> str:
    algorithm = challenge.get("algorithm", "MD5")
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]

    def h(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    realm, nonce, cnonce = challenge["realm"], challenge["nonce"], secrets.token_hex(8)
    ha1 = h(f"{username}:{realm}:{password}")
    response = h(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{h(f'{method}:{uri}')}")
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc:08x}, cnonce="{cnonce}"'
    )


@dataclass
class Phone:
    service: SipService
    domain: str
    username: str
    password: str
    transport: str = "udp"
    source: tuple[str, int] = ("127.0.0.1", 40000)
    contact: str | None = None
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))
    cseq: int = 0
    user_agent: str = "test-phone/1.0"

    @property
    def contact_uri(self) -> str:
        return self.contact or f"sip:{self.username}@{self.source[0]}:{self.source[1]};transport={self.transport}"

    def register_bytes(
        self,
        *,
        authorization: str | None = None,
        proxy_authorization: str | None = None,
        expires: int | None = 3600,
        contact: str | None = "",
        to_user: str | None = None,
        branch: str | None = None,
        request_uri: str | None = None,
    ) -> bytes:
        self.cseq += 1
        contact = self.contact_uri if contact == "" else contact
        lines = [
            f"REGISTER {request_uri or 'sip:' + self.domain} SIP/2.0",
            f"Via: SIP/2.0/{self.transport.upper()} {self.source[0]}:{self.source[1]};rport;"
            f"branch={branch or 'z9hG4bK' + secrets.token_hex(8)}",
            "Max-Forwards: 70",
            f"From: <sip:{self.username}@{self.domain}>;tag={secrets.token_hex(4)}",
            f"To: <sip:{to_user or self.username}@{self.domain}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"User-Agent: {self.user_agent}",
        ]
        if contact is not None:
            lines.append(f"Contact: {contact if contact == '*' else '<' + contact + '>'}")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if authorization:
            lines.append(f"Authorization: {authorization}")
        if proxy_authorization:
            lines.append(f"Proxy-Authorization: {proxy_authorization}")
        return ("\r\n".join([*lines, "Content-Length: 0", "", ""])).encode()

    @property
    def flow(self) -> RecordingFlow:
        return RecordingFlow(self.transport, self.source)

    async def send(self, data: bytes) -> SipResponse:
        sent = await exchange(self.service, data, self.flow)
        assert sent, "no answer"
        message = parse_message(sent[-1])
        assert isinstance(message, SipResponse)
        return message

    async def challenge(self, algorithm: str = "MD5", **kwargs: object) -> dict[str, str]:
        response = await self.send(self.register_bytes(**kwargs))  # type: ignore[arg-type]
        assert response.status == 401, (response.status, response.reason)
        return next(c for c in challenges(response) if c["algorithm"] == algorithm)

    async def register(
        self, *, password: str | None = None, algorithm: str = "MD5", username: str | None = None, **kwargs: object
    ) -> SipResponse:
        """The two-step dance: unauthenticated REGISTER, 401, REGISTER with a digest response."""
        challenge = await self.challenge(algorithm)
        auth = digest_authorization(
            challenge, username or self.username, self.password if password is None else password, f"sip:{self.domain}"
        )
        return await self.send(self.register_bytes(authorization=auth, **kwargs))  # type: ignore[arg-type]
