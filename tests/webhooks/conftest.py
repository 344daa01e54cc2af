"""A real HTTP server on loopback and the client under test, fresh for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from sipline.webhooks import WebhookClient
from tests.webhooks.http_server import WebhookServer


@pytest.fixture
def server() -> Iterator[WebhookServer]:
    with WebhookServer() as running:
        yield running


@pytest.fixture
async def webhook_client() -> AsyncIterator[WebhookClient]:
    async with WebhookClient() as client:
        yield client
