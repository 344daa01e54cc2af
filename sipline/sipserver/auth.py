"""Digest authentication of requests from devices (Kamailio's `auth` glue, the lookup left to callers).

REGISTER is challenged with 401 and WWW-Authenticate, every other request with 407 and
Proxy-Authenticate (RFC 3261 §22.3); the nonces, algorithms and throttle are the same for both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sipline import metrics
from sipline.sip.digest import (
    DEFAULT_ALGORITHMS,
    DigestCredentials,
    NonceManager,
    NonceStatus,
    Verdict,
    challenge_headers,
    parse_authorization,
    verdict,
)
from sipline.sip.message import SipRequest, SipResponse

from .responses import respond
from .throttle import AuthThrottle

log = logging.getLogger("sipline.sip.auth")

_HA1_COLUMN = {"MD5": "ha1_md5", "SHA-256": "ha1_sha256"}


class Authenticator:
    def __init__(
        self,
        nonce_key: bytes,
        *,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        throttle: AuthThrottle | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.algorithms = tuple(algorithms)
        self.nonces = NonceManager(nonce_key, clock=clock)
        self.throttle = throttle or AuthThrottle()
        self.clock = clock

    def credentials(self, request: SipRequest, realm: str, *, proxy: bool) -> DigestCredentials | None:
        """The first Digest answer for our realm; answers meant for other servers are ignored."""
        for value in request.headers.get_all("Proxy-Authorization" if proxy else "Authorization"):
            creds = parse_authorization(value)
            if creds is not None and creds.realm.lower() == realm:
                return creds
        return None

    def nonce(self, creds: DigestCredentials, realm: str) -> NonceStatus:
        return self.nonces.check(creds.nonce, realm)

    def blocked(self, source: tuple[str, int], username: str | None) -> bool:
        blocked = self.throttle.blocked(source[0], username, self.clock())
        if blocked:
            metrics.auth_throttled()
        return blocked

    def judge(
        self,
        request: SipRequest,
        creds: DigestCredentials,
        nonce: NonceStatus,
        endpoint: Mapping[str, Any] | None,
        realm: str,
        source: tuple[str, int],
        *,
        nc_accepted: bool = False,
    ) -> Verdict:
        """The verdict on an answer, against the endpoint's stored HA1 (None: no such endpoint);
        failures are counted and logged here, once for every kind of request. `nc_accepted`: see
        `digest.verdict`."""
        ha1 = None if endpoint is None else str(endpoint.get(_HA1_COLUMN.get(creds.algorithm, ""), ""))
        result = verdict(creds, request.method, ha1, nonce, self.nonces, nc_accepted=nc_accepted)
        if result.is_failure:
            metrics.auth_failed(wrong_password=result is Verdict.WRONG)
            log.info(
                "SIP %s: %s for %r@%s from %s:%s",
                request.method,
                "wrong password" if result is Verdict.WRONG else "unknown user",
                creds.username,
                realm,
                *source,
            )
            blocked = self.throttle.failure(source[0], creds.username, self.clock())
            if blocked is not None:
                metrics.auth_block_started(blocked)
                policy = self.throttle.policy
                what = f"user {creds.username!r} from {source[0]}" if blocked == "user" else f"address {source[0]}"
                log.warning("SIP: blocking %s for %.0f s after too many failed authentications", what, policy.block)
        return result

    def challenge(self, request: SipRequest, realm: str, *, stale: bool = False) -> SipResponse:
        """401 for REGISTER, 407 for anything else, offering our algorithms in our order."""
        proxy = request.method != "REGISTER"
        header = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        values = challenge_headers(self.nonces, realm, self.algorithms, stale=stale)
        return respond(request, 407 if proxy else 401, headers=[(header, value) for value in values])
