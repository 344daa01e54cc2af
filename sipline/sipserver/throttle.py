"""Throttling failed digest authentication, per source address and user name.

A misconfigured phone retrying a wrong password blocks only its own user name from its own
address, so the other phones behind the same office NAT keep working; a scanner trying many user
names or passwords from one address crosses the per-address limit and is stopped entirely.
Trusted networks (an allowlist) are never throttled. Memory is bounded, and time is an argument.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from sipline.sip.expiring import ExpiringCache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ThrottlePolicy:
    limit: int = 20  # failures for one user name from one address within the window
    source_limit: int = 100  # failures from one address, whatever the user names
    window: float = 60.0
    block: float = 300.0
    trusted: Sequence[Network] = ()


class AuthThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None, *, max_entries: int = 50_000) -> None:
        self.policy = policy or ThrottlePolicy()
        self._failures: ExpiringCache[tuple[str, str | None], int] = ExpiringCache(max_entries)
        self._blocked: ExpiringCache[tuple[str, str | None], bool] = ExpiringCache(max_entries)
        self._trusted_cache: dict[str, bool] = {}

    def trusted(self, host: str) -> bool:
        if not self.policy.trusted:
            return False
        known = self._trusted_cache.get(host)
        if known is None:
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                known = False
            else:
                known = any(address in network for network in self.policy.trusted)
            if len(self._trusted_cache) > 10_000:
                self._trusted_cache.clear()
            self._trusted_cache[host] = known
        return known

    def blocked(self, host: str, username: str | None, now: float) -> bool:
        """Is this address, or this user name from this address, blocked?"""
        if self.trusted(host):
            return False
        return bool(self._blocked.get((host, None), now) or self._blocked.get((host, username), now))

    def failure(self, host: str, username: str | None, now: float) -> str | None:
        """Count one failure. Returns what it blocks when it starts a block ('user' or 'source',
        for the caller to log once), else None."""
        if self.trusted(host):
            return None
        policy = self.policy
        started = None
        # The address last, so that when both blocks start at once the wider one is reported.
        counters = (((host, username), policy.limit, "user"), ((host, None), policy.source_limit, "source"))
        for key, limit, kind in counters:
            count = (self._failures.get(key, now) or 0) + 1
            if count > limit:
                self._failures.pop(key)
                self._blocked.put(key, True, now + policy.block)
                started = kind
            else:
                # The window runs from the first failure counted (a fixed window, not a sliding one).
                self._failures.put(key, count, self._failures.expiry(key, now) or now + policy.window)
        return started
