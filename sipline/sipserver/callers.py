"""Who sent a request out of a dialog (an INVITE, say): an endpoint of the From domain, proven by digest.

RFC 3261 §22.3: a proxy (and a B2BUA facing devices) challenges with 407 Proxy-Authenticate; the
nonces, algorithms and throttle are the registrar's. A wrong password never gets further than
here, so it never rings anyone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sipline.domain.endpoint import effective_encryption
from sipline.domain.fields import is_username
from sipline.sip.digest import NonceStatus, Verdict
from sipline.sip.errors import SipParseError
from sipline.sip.headers import parse_name_addr, parse_uri
from sipline.sip.message import SipRequest, SipResponse
from sipline.store import endpoints
from sipline.store.db import Database

from .auth import Authenticator
from .domains import Domains
from .flows import Flow
from .responses import respond


@dataclass(frozen=True)
class Caller:
    """An authenticated device's endpoint: its record (with its profile's columns) and project."""

    project: dict[str, Any]
    realm: str  # the project's SIP domain
    endpoint: dict[str, Any]

    @property
    def username(self) -> str:
        return str(self.endpoint["username"])


class Callers:
    def __init__(self, db: Database, domains: Domains, auth: Authenticator) -> None:
        self.db = db
        self.domains = domains
        self.auth = auth

    async def identify(self, request: SipRequest, flow: Flow) -> Caller | SipResponse:
        """The caller, or the response to send instead: 407 (challenge), 403 (blocked, spoofed
        From, encryption), 400 (unusable From)."""
        try:
            sender = parse_uri(parse_name_addr(request.headers.get("From") or "").uri)
        except SipParseError:
            return respond(request, 400, "Bad Request (From is not a SIP URI)")
        project = await self.domains.project(sender.host, time.monotonic())
        if project is None:
            return respond(request, 403, "Forbidden (From domain not served here)")
        realm = self.domains.realm(project)
        creds = self.auth.credentials(request, realm, proxy=True)
        if self.auth.blocked(flow.remote, creds.username if creds else sender.user):
            return respond(request, 403, "Forbidden (too many failed authentications)")
        if creds is None:
            return self.auth.challenge(request, realm)
        nonce = self.auth.nonce(creds, realm)
        if nonce is NonceStatus.INVALID:
            return self.auth.challenge(request, realm)
        endpoint = None
        # A name no endpoint can have (control characters, say) is not even looked up: some
        # databases refuse to compare such text, and the answer is the same challenge anyway.
        if is_username(creds.username):
            endpoint = await self.db.read(endpoints.find_with_profile, project["id"], creds.username)
        verdict = self.auth.judge(request, creds, nonce, endpoint, realm, flow.remote)
        if verdict is not Verdict.OK:
            return self.auth.challenge(request, realm, stale=verdict is Verdict.STALE)
        assert endpoint is not None
        if sender.user != creds.username:
            return respond(request, 403, "Forbidden (From user is not the authenticated user)")
        if effective_encryption(endpoint, endpoint) == "required" and flow.transport != "tls":
            return respond(request, 403, "Encryption Required (use TLS)")
        return Caller(project, realm, endpoint)
