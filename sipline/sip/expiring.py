"""One bounded, expiring map for everything the SIP side remembers for a while.

Nonce counts, answers to retransmitted requests, failed authentications, blocked sources, the
domain lookups: each is keyed by something a sender chooses, so each must expire and must never
grow past a bound. Time is an argument, never read here, so the rules are tested with plain numbers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ExpiringCache(Generic[K, V]):
    """Entries live until their own expiry time. When full, the entry written longest ago goes.

    Entries are kept in write order, so with one lifetime for all (the usual case) the expired
    ones sit at the front and `purge` stops at the first live one; with mixed lifetimes an
    expired entry further back lingers until it is read, rewritten or pushed out by the bound.
    """

    __slots__ = ("_items", "max_entries")

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K, now: float) -> V | None:
        """The live value for key, or None (absent or expired)."""
        hit = self._items.get(key)
        if hit is None:
            return None
        if hit[0] <= now:
            del self._items[key]
            return None
        return hit[1]

    def expiry(self, key: K, now: float) -> float | None:
        """When the live entry for key expires, or None."""
        hit = self._items.get(key)
        return hit[0] if hit is not None and hit[0] > now else None

    def put(self, key: K, value: V, expires_at: float) -> None:
        """Write (or rewrite, moving it to the back) an entry; the oldest go beyond the bound."""
        self._items.pop(key, None)
        self._items[key] = (expires_at, value)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def purge(self, now: float) -> None:
        """Drop the expired entries at the front (all of them when every entry has one lifetime)."""
        items = self._items
        while items:
            first = next(iter(items.values()))
            if first[0] > now:
                break
            items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
