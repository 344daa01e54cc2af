"""VerifiedTokens, the per-process cache of verified API tokens: when a verdict is kept and dropped."""

from __future__ import annotations

import time

import pytest

from sipline.store import tokens
from sipline.store.tokens import TokenRecord, VerifiedTokens

RECORD = TokenRecord("token-id", "project-id", ("voice",))


class Marker:
    """Stands for Database.others_commits: what another process's commit changes."""

    def __init__(self, value: int | None = 0) -> None:
        self.value = value

    def __call__(self) -> int | None:
        return self.value


@pytest.fixture(autouse=True)
def _no_recent_revocation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "_revoked_at", -1e9)


def test_a_verdict_is_kept_and_found_by_its_key() -> None:
    cache = VerifiedTokens(Marker())
    key = cache.key(b"Basic abc")
    cache.put(key, RECORD, cache.snapshot())
    assert cache.get(key) == RECORD
    assert cache.get(cache.key(b"Basic abd")) is None


def test_a_commit_elsewhere_drops_every_verdict() -> None:
    marker = Marker()
    cache = VerifiedTokens(marker)
    key = cache.key(b"Basic abc")
    cache.put(key, RECORD, cache.snapshot())
    marker.value = 1
    assert cache.get(key) is None


def test_a_verdict_reached_across_a_commit_elsewhere_is_not_kept() -> None:
    marker = Marker()
    cache = VerifiedTokens(marker)
    seen = cache.snapshot()  # the lookup starts
    marker.value = 1  # another process revokes meanwhile
    cache.put(cache.key(b"Basic abc"), RECORD, seen)
    assert cache.get(cache.key(b"Basic abc")) is None


def test_a_revocation_in_this_process_drops_every_verdict_and_keeps_none_for_a_while() -> None:
    cache = VerifiedTokens(Marker(None))
    key = cache.key(b"Basic abc")
    cache.put(key, RECORD, cache.snapshot())
    tokens.forget_verified()
    assert cache.get(key) is None
    cache.put(key, RECORD, cache.snapshot())  # a lookup that ran before the revocation committed
    assert cache.get(key) is None


def test_without_a_marker_a_verdict_lives_ttl_seconds() -> None:
    cache = VerifiedTokens(Marker(None), ttl=0.05)
    key = cache.key(b"Basic abc")
    cache.put(key, RECORD, cache.snapshot())
    assert cache.get(key) == RECORD
    time.sleep(0.06)
    assert cache.get(key) is None


def test_the_cache_is_bounded() -> None:
    cache = VerifiedTokens(Marker(), size=3)
    for i in range(10):
        cache.put(cache.key(b"%d" % i), RECORD, cache.snapshot())
    assert sum(cache.get(cache.key(b"%d" % i)) is not None for i in range(10)) <= 3
