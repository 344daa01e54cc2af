"""The registrar's fast path: plain REGISTERs over UDP read off their bytes, and challenged at once.

Every registration begins with a REGISTER without credentials (RFC 3261 §22: the device learns our
nonce from the 401), and the next one answers the challenge, in the same few fields. The general
path parses each into Headers, NameAddr, Via and Params objects, and gives the first a transaction
machine, a task and a response object. Here (`sip.plain_register`):

- the first is answered from the fields read off its bytes, and its answer kept for its copies as
  its transaction would keep it once completed (`Transactions.answered`): the same bytes as the
  general path's, but for the random To tag and nonce;
- any other plain REGISTER (the one with credentials, say) is made into the very request the
  general parser would have made and stamped, without its checks, and goes on from there.

tests/sip/test_sip_plain_register.py and tests/sip_server/test_fast_register.py check both against
the general path. What the challenge would have to think about is left to the general path
(`challenge` returns False): credentials, a retransmission, a project not in the cache, a To domain
other than the realm, a blocked source, a busy server; and anything not plain, or from an IPv6
peer, is not read here at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sipline import metrics
from sipline.sip.digest import challenge_headers
from sipline.sip.headers import generate_tag
from sipline.sip.message import SipRequest
from sipline.sip.plain_register import PlainRegister, recognise, request, response, stamped_via

from .flows import Flow
from .responses import SERVER

if TYPE_CHECKING:
    from .auth import Authenticator
    from .domains import Domains
    from .transactions import Transactions

_CHALLENGE = "SIP/2.0 401 Unauthorized"


class FastRegister:
    def __init__(
        self,
        domains: Domains,
        auth: Authenticator,
        transactions: Transactions,
        *,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> None:
        self.domains = domains
        self.auth = auth
        self.transactions = transactions
        self.clock = clock
        self.monotonic = monotonic

    def read(self, data: bytes, flow: Flow) -> PlainRegister | None:
        """The plain REGISTER in a datagram from an IPv4 peer, else None (the general parser's)."""
        if ":" in flow.remote[0]:
            return None  # an IPv6 source: `received` would be written otherwise
        return recognise(data)

    def request(self, register: PlainRegister, flow: Flow) -> SipRequest:
        """The request the general path makes of it: parsed, its top Via stamped."""
        return request(register, stamped_via(register, *flow.remote))

    def challenge(self, register: PlainRegister, flow: Flow) -> bool:
        """Answer it here with a challenge (True), or leave it to the general path (False)."""
        if register.authorization is not None:
            return False
        key = register.server_key()
        if self.transactions.known(key):
            return False  # a copy of a request being answered, or answered: the transaction's
        project = self.domains.known(register.host, self.monotonic())
        if project is None:
            return False
        realm = self.domains.realm(project)
        host, port = flow.remote
        if register.to_host != realm or self.auth.throttle.blocked(host, register.to_user, self.clock()):
            return False  # a 404 or a 403: the general path says which
        values = challenge_headers(self.auth.nonces, realm, self.auth.algorithms)
        extra = [*(f"WWW-Authenticate: {value}" for value in values), f"Server: {SERVER}"]
        data = response(_CHALLENGE, register, stamped_via(register, host, port), generate_tag(), extra)
        reply = flow.for_reply(register.rport, register.via_port)
        reply.send(data)
        self.transactions.answered(key, data, reply)
        metrics.register_answered(401)
        return True
