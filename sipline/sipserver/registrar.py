"""REGISTER against the store: the digest check and the registrar's decision in one locked transaction.

The endpoint row lock serialises REGISTERs for one endpoint across every node (store/db.py), and
the credentials are read under it, so a password change or a deletion counts at once.

On PostgreSQL, where each statement is a round trip, a REGISTER is first tried without the lock
or a transaction: the credentials and bindings read by one statement in autocommit, and a refresh
(the usual REGISTER: one binding updated in its row) written by one statement that checks that
row and the credentials still hold what was read (`bindings.refresh_if_unchanged`). Two round
trips instead of five. When that write finds anything changed, or the REGISTER needs another
write, it is decided again under the lock, as on SQLite, where a transaction costs no round trip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from sqlalchemy import Connection

from sipline import metrics
from sipline.domain.endpoint import effective_encryption
from sipline.domain.fields import is_username
from sipline.sip.digest import DigestCredentials, NonceStatus, Verdict
from sipline.sip.errors import SipParseError
from sipline.sip.message import SipRequest, SipResponse
from sipline.sip.registrar import (
    Binding,
    RegisterError,
    RegisterPolicy,
    RegisterSuccess,
    aor_user,
    process_register,
)
from sipline.store import bindings as binding_store
from sipline.store import endpoints
from sipline.store.db import Database, WriteLater

from .auth import Authenticator
from .flows import Flow, StreamFlow
from .local import Local
from .responses import respond

log = logging.getLogger("sipline.sip.registrar")

# What the store's transaction returns: a refusal to send, or the registrar's decision (its
# response made once the lock is let go), and the live bindings before and after.
_Outcome = tuple[SipResponse | RegisterSuccess | RegisterError, list[Binding], list[Binding]]


@dataclass(frozen=True)
class _Ready:
    """A REGISTER checked as far as it can be without the store: the store's work to run, as one
    locked transaction (`transaction`), or first without the lock (`attempt`: None when it must
    be done under the lock after all, by `retry`)."""

    request: SipRequest
    transaction: Callable[[Connection], _Outcome]
    attempt: Callable[[Connection], _Outcome | None]
    retry: Callable[[Connection], _Outcome]
    aor: str  # user@realm, for the log
    now: float


class Registrar:
    def __init__(
        self,
        db: Database,
        auth: Authenticator,
        *,
        policy: RegisterPolicy | None = None,
        clock: Callable[[], float],
        local: Local | None = None,
    ) -> None:
        self.db = db
        self.local = local  # stored with each binding: the node holding the device's flow
        self.auth = auth
        self.policy = policy or RegisterPolicy()
        self.clock = clock
        self._date_cache: tuple[int, str] = (-1, "")

    async def register(self, request: SipRequest, project: dict[str, Any], realm: str, flow: Flow) -> SipResponse:
        ready = self._ready(request, project, realm, flow)
        if isinstance(ready, SipResponse):
            return ready
        if self.db.is_sqlite:
            return self._finish(await self.db.write(ready.transaction), ready, flow)
        outcome = await self.db.autocommit(ready.attempt)
        if outcome is None:
            outcome = await self.db.write(ready.retry)
        return self._finish(outcome, ready, flow)

    def register_now(self, request: SipRequest, project: dict[str, Any], realm: str, flow: Flow) -> SipResponse | None:
        """`register`, when the store can take its write without waiting (Database.write_now); else
        None, and nothing was done: the caller awaits `register` instead."""
        ready = self._ready(request, project, realm, flow)
        if isinstance(ready, SipResponse):
            return ready
        try:
            outcome = self.db.write_now(ready.transaction)
        except WriteLater:
            return None
        return self._finish(outcome, ready, flow)

    def _ready(self, request: SipRequest, project: dict[str, Any], realm: str, flow: Flow) -> SipResponse | _Ready:
        """What is answered before the store is asked (a refusal, a challenge), or the store's
        transaction to run. Nothing here changes any state on the way to that transaction (only a
        blocked source is counted, and it is answered here), so `register_now` falling back to
        `register` repeats nothing but the work."""
        transport, source = flow.transport, flow.remote
        try:
            user, to_host = aor_user(request)
        except SipParseError:
            return respond(request, 400, "Bad Request (To is not a SIP URI)")
        headers = request.headers
        stored = [headers.get("Call-ID"), headers.get("User-Agent"), *headers.get_all("Contact")]
        if any("\x00" in value for value in stored if value):
            # Legal as an escaped quoted-pair, but these values are stored, and PostgreSQL text
            # cannot hold a NUL: refuse it plainly rather than fail in the database.
            return respond(request, 400, "Bad Request (NUL in a stored header field)")
        if to_host.removesuffix(".") != realm:
            return respond(request, 404, "Not Found (To domain differs from Request-URI)")
        creds = self.auth.credentials(request, realm, proxy=False)
        if self.auth.blocked(source, creds.username if creds else user):
            return respond(request, 403, "Forbidden (too many failed authentications)")
        if creds is None:
            return self.auth.challenge(request, realm)
        nonce = self.auth.nonce(creds, realm)
        if nonce is NonceStatus.INVALID:
            return self.auth.challenge(request, realm)
        now = self.clock()

        def decide(conn: Connection, *, locked: bool, nc_accepted: bool) -> _Outcome | None:
            endpoint, previous = _endpoint(conn, project["id"], creds.username, locked=locked)
            refusal = self._authorize(
                request, creds, nonce, endpoint, project, realm, user, transport, source, nc_accepted=nc_accepted
            )
            if refusal is not None:
                return refusal, [], []
            assert endpoint is not None
            before = [p.binding for p in previous]
            result = process_register(request, before, now, self.policy)
            if isinstance(result, RegisterError):
                return result, [], []
            if result.bindings != before:
                # A UDP device is reached from any worker of this node (they share the socket),
                # a TCP or TLS device only through the worker holding its connection.
                flow_id = flow.id if isinstance(flow, StreamFlow) else None
                node_id = None
                if self.local is not None:
                    node_id = self.local.worker_id if flow_id else self.local.node_id
                origin = binding_store.Origin(transport, source[0], source[1], _user_agent(request), node_id, flow_id)
                if locked:
                    binding_store.replace(conn, endpoint["id"], result.bindings, origin, previous)
                elif not binding_store.refresh_if_unchanged(conn, endpoint, result.bindings, origin, previous):
                    return None  # not a refresh, or changed since it was read: under the lock
            return result, [b for b in before if b.expires_at > now], result.bindings

        def transaction(conn: Connection) -> _Outcome:
            outcome = decide(conn, locked=True, nc_accepted=False)
            assert outcome is not None  # under the lock every write is made
            return outcome

        def attempt(conn: Connection) -> _Outcome | None:
            return decide(conn, locked=False, nc_accepted=False)

        def retry(conn: Connection) -> _Outcome:
            # Only a REGISTER judged OK comes back from `attempt`, its nonce count taken then.
            outcome = decide(conn, locked=True, nc_accepted=True)
            assert outcome is not None
            return outcome

        return _Ready(request, transaction, attempt, retry, f"{creds.username}@{realm}", now)

    def _finish(self, outcome: _Outcome, ready: _Ready, flow: Flow) -> SipResponse:
        """The response, once the store's transaction is committed: made after the lock is let
        go, which the other workers' REGISTERs wait for."""
        answer, before, after = outcome
        request = ready.request
        if isinstance(answer, SipResponse):
            return answer
        if isinstance(answer, RegisterError):
            return respond(request, answer.status, answer.reason, headers=answer.headers)
        if after:
            # The device is reached through this flow for as long as it stays registered (RFC 5626).
            flow.keep(max(b.expires_at for b in after) - ready.now)
        metrics.register_accepted(before, after)
        _log_changes(ready.aor, before, after, flow.transport, flow.remote)
        return respond(request, 200, headers=[*answer.headers, ("Date", self._date(ready.now))])

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
        *,
        nc_accepted: bool,
    ) -> SipResponse | None:
        """The refusal to send, or None when this endpoint may register over this transport."""
        verdict = self.auth.judge(request, creds, nonce, endpoint, realm, source, nc_accepted=nc_accepted)
        if verdict is not Verdict.OK:
            return self.auth.challenge(request, realm, stale=verdict is Verdict.STALE)
        if user != creds.username:
            return respond(request, 403, "Forbidden (To user is not the authenticated user)")
        assert endpoint is not None
        if effective_encryption(endpoint, project) == "required" and transport != "tls":
            return respond(request, 403, "Encryption Required (use TLS)")
        return None

    def _date(self, now: float) -> str:
        """formatdate(now, usegmt=True), formatted once per second."""
        second = int(now)
        if not 0 <= now - second < 0.999:  # near the next second formatdate may round up: no cache
            return formatdate(now, usegmt=True)
        if self._date_cache[0] != second:
            self._date_cache = (second, formatdate(now, usegmt=True))
        return self._date_cache[1]


def _endpoint(
    conn: Connection, project_id: str, username: str, *, locked: bool
) -> tuple[dict[str, Any] | None, list[binding_store.StoredBinding]]:
    """The endpoint's auth record, locked or not, and its stored bindings."""
    # A name no endpoint can have (control characters, say) is not even looked up.
    if not is_username(username):
        return None, []
    if not locked:
        return binding_store.with_auth_record(conn, project_id, username)
    endpoint = endpoints.auth_record_for_update(conn, project_id, username)
    if endpoint is None:
        return None, []
    # Read after the lock is held, in a statement of its own: on PostgreSQL (READ COMMITTED) a
    # join in the locking statement would return bindings as they were before the wait.
    return endpoint, binding_store.list_for_endpoint(conn, endpoint["id"])


def _log_changes(
    aor: str, before: list[Binding], after: list[Binding], transport: str, source: tuple[str, int]
) -> None:
    """A line per contact that came or went; refreshes only at debug level."""
    old = {b.contact for b in before}
    new = {b.contact for b in after}
    origin = f"{transport}:{source[0]}:{source[1]}"
    for binding in after:
        if binding.contact not in old:
            log.info("SIP registered %s contact <%s> from %s", aor, binding.contact, origin)
        else:
            log.debug("SIP refreshed %s contact <%s> from %s", aor, binding.contact, origin)
    for contact in sorted(old - new):
        log.info("SIP unregistered %s contact <%s> from %s", aor, contact, origin)


def _user_agent(request: SipRequest) -> str | None:
    value = request.headers.get("User-Agent")
    return value[:255] if value else None
