"""The registrar service: the glue between the sans-IO core and the store (Kamailio's auth_db + usrloc).

Bytes from a transport go through `prepare` (parse, stamp the Via; synchronous and cheap so that
garbage is dropped without scheduling anything) and `answer` (find the project by domain, check the
digest against the endpoint's HA1, apply the registrar's decision in one locked transaction).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from sipline import __version__
from sipline.domain.endpoint import effective_encryption
from sipline.domain.fields import FieldError
from sipline.domain.fields import username as username_rule
from sipline.runtime import Runtime
from sipline.store import bindings as binding_store
from sipline.store import endpoints, projects

from .digest import ALGORITHMS, DigestCredentials, NonceManager, NonceStatus, challenge_headers, parse_authorization
from .digest import verify as verify_digest
from .errors import SipParseError
from .headers import Via, generate_tag
from .message import SipRequest, SipResponse, make_response, parse_message, parse_uri, serialize
from .registrar import RegisterError, RegisterPolicy, aor_user, process_register
from .transport.routing import stamp_top_via

log = logging.getLogger("sipline.sip")

ALLOW = "REGISTER, OPTIONS"
SERVER = f"sipline/{__version__}"
_HA1_COLUMN = {"MD5": "ha1_md5", "SHA-256": "ha1_sha256"}


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


class AuthThrottle:
    """More than `limit` failed authentications from one address within `window` seconds blocks
    that address for `block` seconds. Memory is bounded: the oldest addresses are forgotten first."""

    def __init__(
        self,
        limit: int = 20,
        window: float = 60.0,
        block: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_sources: int = 50_000,
    ) -> None:
        self.limit, self.window, self.block = limit, window, block
        self._clock = clock
        self._max_sources = max_sources
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._blocked: dict[str, float] = {}

    def blocked(self, host: str) -> bool:
        until = self._blocked.get(host)
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._blocked[host]
        return False

    def failure(self, host: str) -> bool:
        """Count one failure; True when this one starts a block (the caller logs it, once)."""
        now = self._clock()
        times = self._failures.pop(host, None) or deque()
        self._failures[host] = times  # most recently failing last
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        while len(self._failures) > self._max_sources:
            self._failures.popitem(last=False)
        if len(times) > self.limit:
            self._blocked[host] = now + self.block
            del self._failures[host]
            if len(self._blocked) > self._max_sources:
                self._blocked = {h: t for h, t in self._blocked.items() if t > now}
            return True
        return False


class _TtlCache:
    """Project rows by domain, briefly: a REGISTER burst should not look the same project up each time."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._items: dict[str, tuple[float, dict[str, Any] | None]] = {}

    def get(self, key: str, now: float) -> tuple[bool, dict[str, Any] | None]:
        hit = self._items.get(key)
        if hit is None or hit[0] <= now:
            return False, None
        return True, hit[1]

    def put(self, key: str, value: dict[str, Any] | None, now: float) -> None:
        if self.ttl <= 0:
            return
        if len(self._items) >= self._max:
            self._items.clear()  # unknown domains are attacker-chosen: never let them grow the cache
        self._items[key] = (now + self.ttl, value)


_Entry = tuple[Any, ...]  # (expiry, data, Via fields...) or (expiry,) while in progress


class _Retransmissions:
    """Answers by server transaction (RFC 3261 §17.2.3 branch match) for 32 s (Timer J): a UDP
    retransmission gets the same answer again instead of a second pass through the registrar
    (which would refuse the repeated nonce-count). None marks a request still being answered.

    Entries are kept as tuples of plain values, not as Reply/Via objects: tens of thousands of
    them would otherwise be traversed by every full garbage collection (a pause of 100 ms and more
    at a few thousand registrations per second); tuples of atoms are not tracked by the collector."""

    def __init__(self, ttl: float = 32.0, max_entries: int = 20_000) -> None:
        self.ttl = ttl
        self._max = max_entries
        self._items: OrderedDict[tuple[str, str, int, str, str], _Entry] = OrderedDict()

    @staticmethod
    def key(request: SipRequest, via: Via, source: tuple[str, int]) -> tuple[str, str, int, str, str] | None:
        branch = via.branch
        if not branch or not branch.startswith("z9hG4bK"):
            return None
        return (branch, source[0], source[1], request.method, via.host)

    def lookup(self, key: tuple[str, str, int, str, str], now: float) -> tuple[bool, Reply | None]:
        while self._items:
            oldest = next(iter(self._items.values()))
            if oldest[0] > now:
                break
            self._items.popitem(last=False)
        hit = self._items.get(key)
        if hit is None:
            return False, None
        if len(hit) == 1:
            return True, None
        _, data, via = hit
        if via is None:
            return True, Reply(data, None)
        protocol, transport, host, port, params = via
        return True, Reply(data, Via(protocol, transport, host, port, dict(params)))

    def store(self, key: tuple[str, str, int, str, str], reply: Reply | None, now: float) -> None:
        expiry = now + self.ttl
        if reply is None:
            entry: _Entry = (expiry,)
        elif reply.via is None:
            entry = (expiry, reply.data, None)
        else:
            v = reply.via
            entry = (expiry, reply.data, (v.protocol, v.transport, v.host, v.port, tuple(v.params.items())))
        self._items.pop(key, None)
        self._items[key] = entry
        while len(self._items) > self._max:
            self._items.popitem(last=False)

    def forget(self, key: tuple[str, str, int, str, str]) -> None:
        self._items.pop(key, None)


class SipService:
    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Callable[[], float] = time.time,
        policy: RegisterPolicy | None = None,
        algorithms: Sequence[str] = ALGORITHMS,
        domain_cache_ttl: float = 1.0,
        throttle: AuthThrottle | None = None,
    ) -> None:
        unknown = [a for a in algorithms if a not in ALGORITHMS]
        if unknown or not algorithms:
            raise ValueError(f"digest algorithms must be a non-empty subset of {', '.join(ALGORITHMS)}")
        self.runtime = runtime
        self.base_domain = runtime.settings.sip_domain.lower().rstrip(".")
        self.clock = clock
        self.policy = policy or RegisterPolicy()
        self.algorithms = tuple(algorithms)
        self.nonces = NonceManager(runtime.nonce_key, clock=clock)
        self.throttle = throttle or AuthThrottle()
        self._domains = _TtlCache(domain_cache_ttl)
        self._retransmissions = _Retransmissions()
        self._date_cache: tuple[int, str] = (-1, "")
        own = {"localhost", runtime.settings.sip_host.lower(), self.base_domain}
        self._own_hosts = frozenset(own)

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
            reason = exc.reason.replace('"', "'")[:120]
            response = make_response(
                exc.partial, 400, to_tag=generate_tag(), headers=[("Warning", f'399 sipline "{reason}"')]
            )
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
        key = _Retransmissions.key(request, via, source)
        if key is not None:
            seen, cached = self._retransmissions.lookup(key, now)
            if seen:
                return cached  # None: the original is still in progress; its answer will come
            self._retransmissions.store(key, None, now)
        try:
            response = await self.handle(request, transport, source)
        except BaseException:
            if key is not None:
                self._retransmissions.forget(key)
            raise
        reply = None if response is None else Reply(serialize(response), via)
        if key is not None:
            self._retransmissions.store(key, reply, now)
        return reply

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
            return self._respond(request, 405, headers=[("Allow", ALLOW)])
        try:
            host = parse_uri(request.uri).host.rstrip(".")
        except SipParseError:
            return self._respond(request, 416)
        if request.method == "OPTIONS" and host in self._own_hosts:
            return self._options(request)  # a keep-alive ping addressed to the server itself
        try:
            project = await self._project(host)
        except (SQLAlchemyError, OSError) as exc:
            return self._unavailable(request, exc)
        if project is None:
            return self._respond(request, 404, "Not Found (domain not served here)")
        if request.method == "OPTIONS":
            return self._options(request)
        try:
            return await self._register(request, project, host, transport, source)
        except (SQLAlchemyError, OSError) as exc:
            return self._unavailable(request, exc)

    async def _register(
        self, request: SipRequest, project: dict[str, Any], realm: str, transport: str, source: tuple[str, int]
    ) -> SipResponse:
        try:
            user, to_host = aor_user(request)
        except SipParseError:
            return self._respond(request, 400, "Bad Request (To is not a SIP URI)")
        stored = [
            request.headers.get("Call-ID"),
            request.headers.get("User-Agent"),
            *request.headers.get_all("Contact"),
        ]
        if any("\x00" in value for value in stored if value):
            # Legal as an escaped quoted-pair, but these values are stored, and PostgreSQL text
            # cannot hold a NUL: refuse it plainly rather than fail in the database.
            return self._respond(request, 400, "Bad Request (NUL in a stored header field)")
        if to_host.rstrip(".") != realm:
            return self._respond(request, 404, "Not Found (To domain differs from Request-URI)")
        if self.throttle.blocked(source[0]):
            return self._respond(request, 403, "Forbidden (too many failed authentications)")

        creds = self._credentials(request, realm)
        if creds is None:
            return self._challenge(request, realm)
        nonce = self.nonces.check(creds.nonce, realm)
        if nonce is NonceStatus.INVALID:
            return self._challenge(request, realm)

        now = self.clock()

        def transaction(conn: Connection) -> SipResponse:
            # The endpoint row lock serialises REGISTERs for one endpoint across every node
            # (store/db.py); credentials are checked under it, so a password change counts at once.
            # A name no endpoint can have (control characters, say) is not even looked up: some
            # databases refuse to compare such text, and the answer is the same 401 anyway.
            known = _could_be_username(creds.username)
            endpoint, previous = self._locked_endpoint(conn, project["id"], creds.username) if known else (None, [])
            refusal = self._authorize(request, creds, nonce, endpoint, project, realm, user, transport, source)
            if refusal is not None:
                return refusal
            assert endpoint is not None
            result = process_register(request, [p.binding for p in previous], now, self.policy)
            if isinstance(result, RegisterError):
                return self._respond(request, result.status, result.reason, headers=result.headers)
            if result.bindings != [p.binding for p in previous]:
                origin = binding_store.Origin(transport, source[0], source[1], _user_agent(request))
                binding_store.replace(conn, endpoint["id"], result.bindings, origin, previous)
            return self._respond(request, 200, headers=[*result.headers, ("Date", self._date(now))])

        return await self.runtime.db.write(transaction)

    def _authorize(
        self,
        request: SipRequest,
        creds: DigestCredentials,
        nonce: NonceStatus,
        endpoint: dict[str, Any] | None,
        project: dict[str, Any],
        realm: str,
        user: str | None,
        transport: str,
        source: tuple[str, int],
    ) -> SipResponse | None:
        """The refusal to send, or None when this endpoint may register over this transport."""
        column = _HA1_COLUMN.get(creds.algorithm)
        if (
            endpoint is None
            or column is None
            or creds.userhash
            or not verify_digest(creds, endpoint[column], request.method)
        ):
            if self.throttle.failure(source[0]):
                log.warning(
                    "SIP: blocking %s for %.0f s after %d failed authentications within %.0f s",
                    source[0],
                    self.throttle.block,
                    self.throttle.limit + 1,
                    self.throttle.window,
                )
            return self._challenge(request, realm)
        if nonce is NonceStatus.STALE:
            return self._challenge(request, realm, stale=True)  # right password, old nonce
        if creds.nc is not None and not self.nonces.accept_nc(creds.nonce, int(creds.nc, 16)):
            return self._challenge(request, realm)  # a replayed nonce-count
        if user != creds.username:
            return self._respond(request, 403, "Forbidden (To user is not the authenticated user)")
        if effective_encryption(endpoint, project) == "required" and transport != "tls":
            return self._respond(request, 403, "Encryption Required (use TLS)")
        return None

    # --- lookups -------------------------------------------------------------------------------

    async def _project(self, host: str) -> dict[str, Any] | None:
        suffix = "." + self.base_domain
        if not host.endswith(suffix):
            return None
        identifier = host[: -len(suffix)]
        if not identifier or "." in identifier:
            return None
        now = time.monotonic()
        hit, project = self._domains.get(identifier, now)
        if not hit:
            project = await self.runtime.db.read(projects.find_by_domain_identifier, identifier)
            self._domains.put(identifier, project, now)
        return project

    @staticmethod
    def _locked_endpoint(
        conn: Connection, project_id: str, username: str
    ) -> tuple[dict[str, Any] | None, list[binding_store.StoredBinding]]:
        endpoint = endpoints.auth_record_for_update(conn, project_id, username)
        if endpoint is None:
            return None, []
        # Read after the lock is held, in a statement of its own: on PostgreSQL (READ COMMITTED) a
        # join in the locking statement would return bindings as they were before the wait.
        return endpoint, binding_store.list_for_endpoint(conn, endpoint["id"])

    # --- responses -----------------------------------------------------------------------------

    def _date(self, now: float) -> str:
        """formatdate(now, usegmt=True), formatted once per second."""
        second = int(now)
        if not 0 <= now - second < 0.999:  # near the next second formatdate may round up: no cache
            return formatdate(now, usegmt=True)
        if self._date_cache[0] != second:
            self._date_cache = (second, formatdate(now, usegmt=True))
        return self._date_cache[1]

    def _credentials(self, request: SipRequest, realm: str) -> DigestCredentials | None:
        """The first Digest Authorization for our realm; others (for other proxies) are ignored."""
        for value in request.headers.get_all("Authorization"):
            creds = parse_authorization(value)
            if creds is not None and creds.realm.lower() == realm:
                return creds
        return None

    def _challenge(self, request: SipRequest, realm: str, *, stale: bool = False) -> SipResponse:
        # One nonce shared by every algorithm offered, in our order of preference (RFC 8760 §2.4).
        offered = dict(zip(ALGORITHMS, challenge_headers(self.nonces, realm, stale=stale), strict=True))
        return self._respond(request, 401, headers=[("WWW-Authenticate", offered[a]) for a in self.algorithms])

    def _options(self, request: SipRequest) -> SipResponse:
        return self._respond(request, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")])

    def _unavailable(self, request: SipRequest, exc: BaseException) -> SipResponse:
        log.warning("SIP: store unavailable, answering 503: %s", str(exc).splitlines()[0] if str(exc) else exc)
        return self._respond(request, 503, headers=[("Retry-After", "5")])

    def _respond(
        self,
        request: SipRequest,
        status: int,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | None = None,
    ) -> SipResponse:
        return make_response(
            request, status, reason, to_tag=generate_tag(), headers=[*(headers or []), ("Server", SERVER)]
        )


def _user_agent(request: SipRequest) -> str | None:
    value = request.headers.get("User-Agent")
    return value[:255] if value else None


def _could_be_username(name: str) -> bool:
    try:
        username_rule(name)
    except FieldError:
        return False
    return True
