"""The SIP service: every message from every transport comes in here and goes where it belongs.

`receive` is synchronous and cheap (parse, stamp the top Via, match a transaction), so garbage and
retransmissions cost no task; what needs the store or a call runs as a task: REGISTER to the
registrar, INVITE and everything in a dialog to the call engine, other requests authenticated and
refused. Every answer leaves through the request's server transaction (RFC 3261 §17.2), but
for REGISTERs answered at once (the fast challenge, and a REGISTER whose store write need not
wait: `Registrar.register_now`): those are answered inside `receive`, without a task or a machine,
and their answer is kept for their copies as a completed transaction keeps it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from sipline import metrics
from sipline.config import Settings
from sipline.runtime import Runtime
from sipline.sip.dialog import request_dialog_id
from sipline.sip.errors import SipParseError
from sipline.sip.message import SipRequest, SipResponse, make_response, parse_message, parse_uri, serialize
from sipline.sip.registrar import RegisterPolicy
from sipline.sip.routing import stamp_top_via
from sipline.sip.transaction import server_key, top_via
from sipline.store import db

from .auth import Authenticator
from .callers import Callers
from .calls.engine import CallEngine
from .domains import Domains
from .fast_register import FastRegister
from .flows import Flow, FlowTable
from .local import Local
from .nodes import Nodes
from .registrar import Registrar
from .relay import Relay
from .resolve import Resolver
from .responses import respond, unavailable, warning
from .shedding import starts_work
from .throttle import AuthThrottle, ThrottlePolicy
from .transactions import ServerTransaction, Transactions

if TYPE_CHECKING:
    from .outbound import Outbound
    from .siblings import Siblings

log = logging.getLogger("sipline.sip")

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, UPDATE, INFO"


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        limit=settings.sip_auth_failure_limit,
        source_limit=settings.sip_auth_source_failure_limit,
        window=settings.sip_auth_failure_window,
        block=settings.sip_auth_block_seconds,
        trusted=settings.trusted_networks,
    )


def start_task(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A task that starts running at once, inside the caller, up to its first wait (Python 3.12+).

    On SQLite most answers never wait at all (the store runs inline), and a task that must first
    wait for a round of the loop costs more than they do. Python 3.11 has no eager start: there
    the task simply starts on the next round, which is always correct, only slower.
    """
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.Task(coro, loop=loop, eager_start=True)
    return loop.create_task(coro)


class SipService:
    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Callable[[], float] = time.time,
        policy: RegisterPolicy | None = None,
        domain_cache_ttl: float = 1.0,
        throttle: AuthThrottle | None = None,
        local: Local | None = None,
    ) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.clock = clock
        self.local = local or Local(settings.advertised_host)
        self.domains = Domains(
            runtime.db, settings.sip_domain, [settings.sip_host, self.local.host], ttl=domain_cache_ttl
        )
        self.auth = Authenticator(
            runtime.nonce_key,
            algorithms=settings.digest_algorithms,
            throttle=throttle or AuthThrottle(throttle_policy(settings)),
            clock=clock,
        )
        self.registrar = Registrar(runtime.db, self.auth, policy=policy, clock=clock, local=self.local)
        self.transactions = Transactions()
        self.flows = FlowTable()
        self.nodes = Nodes(runtime.db, self.local)
        self.relay = Relay(self.local, self.flows, self.nodes, runtime.flow_key)
        self.callers = Callers(runtime.db, self.domains, self.auth)
        self.resolver = Resolver(settings.dns_servers)
        self.outbound: Outbound | None = None  # set by the server: it owns the connections
        self.siblings: Siblings | None = None  # the node's other workers, if it runs several
        self.calls = CallEngine(self)
        # None: every REGISTER takes the general path (the tests that compare both paths).
        self.fast_register: FastRegister | None = FastRegister(
            self.domains, self.auth, self.transactions, clock=clock, monotonic=time.monotonic
        )

    # --- bytes in ------------------------------------------------------------------------------

    def receive(self, data: bytes, flow: Flow, *, busy: bool = False) -> asyncio.Task[None] | None:
        """Take one message from a transport. Returns the task answering it, if one was needed.

        `busy`: the transport has too much in flight; new requests that would start work are
        dropped (UDP peers retransmit), while responses and requests of existing calls go on.
        """
        metrics.sip_received(flow.transport, data)
        if data.startswith(b"REGISTER ") and flow.transport == "udp" and self.fast_register is not None:
            plain = self.fast_register.read(data, flow)
            if plain is not None:
                # Challenged at once, unless it would be shed (busy), or it is not that simple;
                # then it goes on as the general parser would have read and stamped it.
                if not (busy or self.runtime.db.saturated) and self.fast_register.challenge(plain, flow):
                    return None
                return self._request(self.fast_register.request(plain, flow), flow, data, busy)
        try:
            message = parse_message(data)
        except SipParseError as exc:
            self._bad_request(exc, flow)
            return None
        if isinstance(message, SipResponse):
            if not self.transactions.response(message) and not self.relay.response(message):
                log.debug("SIP: a response matching no transaction from %r dropped", flow)
            return None
        try:
            stamp_top_via(message, flow.remote)
        except SipParseError:
            return None
        if self.relay.claims(message):
            self.relay.forward(message, flow)  # toward a device held here, or back to a node
            return None
        if flow.reliable and self.siblings is not None:
            sibling = self.siblings.owner(data, hashed=False)  # a request in another worker's dialog
            if sibling is not None:
                self.relay.pass_on(message, flow, self.siblings.relays[sibling])
                return None
        return self._request(message, flow, data, busy)

    def _request(self, message: SipRequest, flow: Flow, data: bytes, busy: bool) -> asyncio.Task[None] | None:
        """A request read and stamped, for none of the node's relays or other workers: absorbed by
        its transaction, shed, or answered by a task."""
        if self.transactions.absorb(message, flow):
            return None  # a retransmission (answered again if we had answered), or the ACK of a non-2xx
        if message.method == "ACK":
            self.calls.ack(message, flow)
            return None
        # A REGISTER never belongs to a dialog (RFC 3261 §10.2), whatever tags it carries.
        in_dialog = message.method != "REGISTER" and request_dialog_id(message) is not None
        # Shed: while the transport is busy, any new transaction out of a dialog; while the store
        # is saturated, a request that would start work (one answering our challenge finishes
        # work already started, and is served).
        if not in_dialog and message.method != "CANCEL" and (busy or (self.runtime.db.saturated and starts_work(data))):
            log.debug("SIP: busy, shed a %s from %r", message.method, flow)
            metrics.sip_shed()
            if flow.reliable:  # nothing is sent again over TCP or TLS: say so, at no cost to the store
                flow.send(serialize(unavailable(message)))
            return None
        if message.method == "REGISTER":
            response = self._register_now(message, flow)
            if response is not None:
                self._register_answered(message, response, flow)
                return None
        txn = self.transactions.server(message, flow)
        if message.method == "INVITE":
            # At once, so that the caller stops retransmitting while we look things up (§17.2.1).
            self.transactions.respond(txn, make_response(message, 100))
        return start_task(self._answer(message, txn, flow, in_dialog))

    def _register_now(self, request: SipRequest, flow: Flow) -> SipResponse | None:
        """The answer to a REGISTER when nothing it needs has to be waited for (its project in
        the domain cache, the store free to write: SQLite); else None, and a task answers it."""
        if not self.runtime.db.writes_now:
            return None  # PostgreSQL, or SQLite's writes queued: checked once, by the task
        try:
            host = parse_uri(request.uri).host
        except SipParseError:
            return None
        project = self.domains.known(host, time.monotonic())
        if project is None:
            return None
        try:
            return self.registrar.register_now(request, project, self.domains.realm(project), flow)
        except Exception as exc:
            return self._failure(request, exc)

    def _register_answered(self, request: SipRequest, response: SipResponse, flow: Flow) -> None:
        """Send the final response to a REGISTER answered at once, without a transaction machine,
        and keep it for the request's copies as its machine would have kept it (Timer J)."""
        metrics.register_answered(response.status)
        data = serialize(response)
        reply = flow.for_response(top_via(request))
        reply.send(data)
        key = server_key(request)
        if key is not None and not flow.reliable:  # over TCP or TLS nothing is sent again
            self.transactions.answered(key, data, reply)

    def _failure(self, request: SipRequest, exc: Exception) -> SipResponse:
        """The answer to a request whose handler raised; as the API answers (api/errors.py): the
        store unable to serve now is a 503 the device may retry; any other error, the store's
        included, is a fault of ours."""
        if db.unavailable(exc):
            log.warning("SIP: store unavailable, answering 503: %s", db.reason(exc))
            return unavailable(request)
        log.exception("SIP: failed to handle a %s", request.method)
        return respond(request, 500)

    def _bad_request(self, exc: SipParseError, flow: Flow) -> None:
        log.debug("bad SIP from %r: %s", flow, exc.reason)
        partial = exc.partial
        if partial is None or partial.method == "ACK":
            return
        try:
            via = stamp_top_via(partial, flow.remote)
        except SipParseError:
            return
        flow.for_response(via).send(serialize(respond(partial, 400, headers=[warning(exc.reason)])))

    async def _answer(self, request: SipRequest, txn: ServerTransaction, flow: Flow, in_dialog: bool) -> None:
        try:
            response = await self._dispatch(request, txn, flow, in_dialog)
        except Exception as exc:
            response = self._failure(request, exc)
        if request.method == "REGISTER" and response is not None:
            metrics.register_answered(response.status)  # its 200s: by the registrar, which knows what they did
        if response is not None and txn.final is None:
            self.transactions.respond(txn, response)

    async def _dispatch(
        self, request: SipRequest, txn: ServerTransaction, flow: Flow, in_dialog: bool
    ) -> SipResponse | None:
        """The answer, or None when the handler answers through the transaction itself (calls)."""
        method = request.method
        if method == "CANCEL":
            return self.calls.cancel(request, txn)
        if in_dialog:
            return await self.calls.in_dialog(request, txn, flow)
        try:
            host = parse_uri(request.uri).host
        except SipParseError:
            return respond(request, 416)
        if method == "REGISTER":
            project = await self.domains.project(host, time.monotonic())
            if project is None:
                return respond(request, 404, "Not Found (domain not served here)")
            return await self.registrar.register(request, project, self.domains.realm(project), flow)
        if method == "OPTIONS" and self.domains.is_own(host):
            return self._options(request)  # a keep-alive ping addressed to the server itself
        if method == "INVITE":
            return await self.calls.invite(request, txn, flow)  # type: ignore[arg-type]
        # Any other request out of a dialog: only from an authenticated device (RFC 3261 §22.3).
        caller = await self.callers.identify(request, flow)
        if isinstance(caller, SipResponse):
            return caller
        if method == "OPTIONS":
            return self._options(request)
        return respond(request, 405, headers=[("Allow", ALLOW)])

    def _options(self, request: SipRequest) -> SipResponse:
        return respond(request, 200, headers=[("Allow", ALLOW), ("Accept", "application/sdp")])

    async def close(self) -> None:
        await self.calls.close()
        await self.nodes.stop()
        self.transactions.close()
