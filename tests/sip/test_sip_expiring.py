from sipline.sip.expiring import ExpiringCache


def test_entries_live_until_their_expiry():
    cache: ExpiringCache[str, int] = ExpiringCache()
    cache.put("a", 1, expires_at=10.0)
    assert cache.get("a", 9.9) == 1
    assert cache.expiry("a", 9.9) == 10.0
    assert cache.get("a", 10.0) is None
    assert len(cache) == 0  # an expired entry read is dropped


def test_the_oldest_written_goes_first_when_full():
    cache: ExpiringCache[str, int] = ExpiringCache(max_entries=2)
    cache.put("a", 1, 100)
    cache.put("b", 2, 100)
    cache.put("a", 3, 100)  # a rewrite moves "a" to the back
    cache.put("c", 4, 100)
    assert cache.get("b", 0) is None
    assert (cache.get("a", 0), cache.get("c", 0)) == (3, 4)


def test_purge_drops_expired_entries_from_the_front():
    cache: ExpiringCache[int, int] = ExpiringCache()
    for i in range(5):
        cache.put(i, i, expires_at=float(i))
    cache.purge(2.5)
    assert len(cache) == 2
    assert cache.get(4, 2.5) == 4


def test_pop_and_clear():
    cache: ExpiringCache[str, int] = ExpiringCache()
    cache.put("a", 1, 10)
    cache.pop("a")
    cache.pop("missing")
    assert cache.get("a", 0) is None
    cache.put("b", 2, 10)
    cache.clear()
    assert len(cache) == 0
