"""The SIP service: bytes from a transport in, the answer out, each request to the part that handles it.

`prepare` parses and stamps the top Via (synchronous and cheap, so garbage is dropped without
scheduling anything); `answer` finds the request's project by domain and hands it on: REGISTER to
the registrar, OPTIONS answered here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from sipline.config import Settings
from sipline.runtime import Runtime
from sipline.sip.errors import SipParseError
from sipline.sip.headers import Via
from sipline.sip.message import SipRequest, SipResponse, parse_message, parse_uri, serialize
from sipline.sip.registrar import RegisterPolicy
from sipline.sip.routing import stamp_top_via

from .auth import Authenticator
from .domains import Domains
from .registrar import Registrar
from .responses import respond, warning
from .retransmissions import Retransmissions
from .throttle import AuthThrottle, ThrottlePolicy

log = logging.getLogger("sipline.sip")

ALLOW = "REGISTER, OPTIONS"


@dataclass(frozen=True)
class Incoming:
    """A parsed request and its top Via, already stamped with the source address."""

    request: SipRequest
    via: Via


@dataclass(frozen=True)
class Reply:
    """Bytes to send back, and the stamped top Via a datagram transport routes them by."""

    data: bytes
    via: Via | None


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        limit=settings.sip_auth_failure_limit,
        source_limit=settings.sip_auth_source_failure_limit,
        window=settings.sip_auth_failure_window,
        block=settings.sip_auth_block_seconds,
        trusted=settings.trusted_networks,
    )


class SipService:
    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Callable[[], float] = time.time,
        policy: RegisterPolicy | None = None,
        domain_cache_ttl: float = 1.0,
        throttle: AuthThrottle | None = None,
    ) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.clock = clock
        self.domains = Domains(runtime.db, settings.sip_domain, [settings.sip_host], ttl=domain_cache_ttl)
        self.auth = Authenticator(
            runtime.nonce_key,
            algorithms=settings.digest_algorithms,
            throttle=throttle or AuthThrottle(throttle_policy(settings)),
            clock=clock,
        )
        self.registrar = Registrar(runtime.db, self.auth, policy=policy, clock=clock)
        self._retransmissions = Retransmissions()

    # --- bytes in, bytes out -------------------------------------------------------------------

    def prepare(self, data: bytes, transport: str, source: tuple[str, int]) -> Incoming | Reply | None:
        """Parse and stamp the top Via. A Reply is a ready 400; None means drop (responses, noise)."""
        try:
            message = parse_message(data)
        except SipParseError as exc:
            log.debug("bad SIP from %s:%s over %s: %s", source[0], source[1], transport, exc.reason)
            if exc.partial is None or exc.partial.method == "ACK":
                return None
            try:
                via = stamp_top_via(exc.partial, source)
            except SipParseError:
                return None
            response = respond(exc.partial, 400, headers=[warning(exc.reason)])
            return Reply(serialize(response), via)
        if isinstance(message, SipResponse):
            return None  # a registrar sends no requests, so a response is noise
        try:
            return Incoming(message, stamp_top_via(message, source))
        except SipParseError:
            return None

    async def answer(self, incoming: Incoming, transport: str, source: tuple[str, int]) -> Reply | None:
        request, via = incoming.request, incoming.via
        now = self.clock()
        key = Retransmissions.key(request, via, source)
        if key is not None:
            seen, cached = self._retransmissions.lookup(key, now)
            if seen:
                return None if cached is None else Reply(*cached)  # None: the original is in progress
            self._retransmissions.started(key, now)
        try:
            response = await self.handle(request, transport, source)
        except BaseException:
            if key is not None:
                self._retransmissions.forget(key)
            raise
        data = None if response is None else serialize(response)
        if key is not None:
            self._retransmissions.answered(key, data, via, now)
        return None if data is None else Reply(data, via)

    async def receive(self, data: bytes, transport: str, source: tuple[str, int]) -> Reply | None:
        prepared = self.prepare(data, transport, source)
        if prepared is None or isinstance(prepared, Reply):
            return prepared
        return await self.answer(prepared, transport, source)

    # --- requests ------------------------------------------------------------------------------

    async def handle(self, request: SipRequest, transport: str, source: tuple[str, int]) -> SipResponse | None:
        if request.method == "ACK":
            return None  # never answered (RFC 3261 §17.2.1)
        if request.method not in ("REGISTER", "OPTIONS"):
            return respond(request, 405, headers=[("Allow", ALLOW)])
        try:
            host = parse_uri(request.uri).host
        except SipParseError:
            return respond(request, 416)
        if request.method == "OPTIONS" and self.domains.is_own(host):
            return self._options(request)  # a keep-alive ping addressed to the server itself
        try:
            project = await self.domains.project(host, time.monotonic())
            if project is None:
                return respond(request, 404, "Not Found (domain not served here)")
            if request.method == "OPTIONS":
                return self._options(request)
            realm = self.domains.realm(project)
            return await self.registrar.register(request, project, realm, transport, source)
        except (SQLAlchemyError, OSError) as exc:
            return self._unavailable(request, exc)

    def _options(self, request: SipRequest) -> SipResponse:
        return respond(request, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")])

    def _unavailable(self, request: SipRequest, exc: BaseException) -> SipResponse:
        log.warning("SIP: store unavailable, answering 503: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return respond(request, 503, headers=[("Retry-After", "5")])
