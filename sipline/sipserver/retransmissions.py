"""Answers remembered by server transaction, so that a retransmitted request gets the same answer.

RFC 3261 §17.2.3 matches a request to its transaction by the top Via branch; for 32 s (Timer J)
a UDP retransmission gets the answer again instead of a second pass through the registrar (which
would refuse the repeated nonce-count). An entry without an answer marks a request in progress.

Entries are plain tuples of atoms, not Reply/Via objects: tens of thousands of them would otherwise
be traversed by every full garbage collection (a pause of 100 ms and more at a few thousand
registrations per second); tuples of atoms are not tracked by the collector.
"""

from __future__ import annotations

from sipline.sip.expiring import ExpiringCache
from sipline.sip.headers import Params, Via
from sipline.sip.message import SipRequest

Key = tuple[str, str, int, str, str]
_ViaFields = tuple[str, str, str, "int | None", tuple[tuple[str, "str | None"], ...]]
_Entry = tuple["bytes | None", "_ViaFields | None"]
_NOTHING: _Entry = (None, None)  # in progress, or answered with nothing to send (an ACK)
TIMER_J = 32.0


class Retransmissions:
    def __init__(self, ttl: float = TIMER_J, max_entries: int = 20_000) -> None:
        self.ttl = ttl
        self._answers: ExpiringCache[Key, _Entry] = ExpiringCache(max_entries)

    @staticmethod
    def key(request: SipRequest, via: Via, source: tuple[str, int]) -> Key | None:
        branch = via.branch
        if not branch or not branch.startswith("z9hG4bK"):
            return None  # an RFC 2543 peer: no reliable transaction id, so nothing is remembered
        return (branch, source[0], source[1], request.method, via.host)

    def lookup(self, key: Key, now: float) -> tuple[bool, tuple[bytes, Via | None] | None]:
        """(seen, answer): seen without an answer means in progress, or nothing to send."""
        self._answers.purge(now)
        hit = self._answers.get(key, now)
        if hit is None:
            return False, None
        data, via = hit
        if data is None:
            return True, None
        if via is None:
            return True, (data, None)
        protocol, transport, host, port, params = via
        return True, (data, Via(protocol, transport, host, port, Params(params)))

    def started(self, key: Key, now: float) -> None:
        self._answers.put(key, _NOTHING, now + self.ttl)

    def answered(self, key: Key, data: bytes | None, via: Via | None, now: float) -> None:
        fields: _ViaFields | None = None
        if via is not None:
            fields = (via.protocol, via.transport, via.host, via.port, tuple(via.params.items()))
        self._answers.put(key, (data, fields), now + self.ttl)

    def forget(self, key: Key) -> None:
        self._answers.pop(key)
