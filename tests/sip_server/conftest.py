"""Fixtures for the registrar service: the shared test runtime, an app with the registrations route."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from sipline.api.app import create_app
from sipline.runtime import Runtime
from sipline.sipserver.service import SipService
from tests.sip_server.world import server, world  # noqa: F401  (fixtures for the call tests)


class Clock:
    """Wall-clock time that a test can move forward (nonce expiry, binding expiry)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(scope="session")
async def sip_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    # The app runs on the test's own event loop, which asyncpg connections require.
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def clock() -> Clock:
    return Clock()


def with_settings(runtime: Runtime, **changes: object) -> Runtime:
    """The shared runtime (same database, same keys) with some settings changed."""
    return dataclasses.replace(runtime, settings=runtime.settings.model_copy(update=changes))


@pytest.fixture
def service(runtime: Runtime, clock: Clock) -> SipService:
    # No domain cache: tests change profiles and expect the next request to see it.
    return SipService(runtime, clock=clock, domain_cache_ttl=0)


@pytest.fixture
def sha256_service(runtime: Runtime, clock: Clock) -> SipService:
    """A service configured to offer SHA-256 first, then MD5 (the opt-in)."""
    return SipService(with_settings(runtime, sip_digest_algorithms="SHA-256,MD5"), clock=clock, domain_cache_ttl=0)
