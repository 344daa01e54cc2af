"""A REGISTER answered at once (`Registrar.register_now`): inside `SipService.receive`, without a
task or a transaction machine, whenever its store write need not wait (SQLite with the write lock
free); answered by a task, to the same end, whenever it must (PostgreSQL, or SQLite's lock held
elsewhere). Either way its copies get the same answer again, and nothing is written twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import httpx
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from sipline.runtime import Runtime
from sipline.sip.message import SipResponse, parse_message
from sipline.sipserver.service import SipService
from sipline.store import bindings
from tests.conftest import new_project
from tests.scrape import moved, scrape
from tests.sip_server.conftest import Clock
from tests.sip_server.sip_phone import Phone, digest_authorization


async def _phone(runtime: Runtime, client: httpx.AsyncClient, clock: Clock) -> tuple[Phone, str]:
    """A phone of a new endpoint, speaking to a service that knows its domain already; the
    endpoint's id."""
    project = await new_project(runtime, client)
    endpoint = await project.create()
    domain = (await project.request("GET", "/sip_profile")).json()["domain"]
    service = SipService(runtime, clock=clock, domain_cache_ttl=60)
    assert await service.domains.project(domain, time.monotonic()) is not None
    return Phone(service, domain, endpoint["username"], "s3cret-pass"), endpoint["id"]


async def _answer(phone: Phone) -> bytes:
    """The REGISTER answering the phone's challenge."""
    challenge = await phone.challenge()
    auth = digest_authorization(challenge, phone.username, phone.password, f"sip:{phone.domain}")
    return phone.register_bytes(authorization=auth)


def _status(data: bytes) -> int:
    response = parse_message(data)
    assert isinstance(response, SipResponse)
    return response.status


async def test_a_register_is_answered_at_once_when_its_write_need_not_wait(runtime, sip_client, clock):
    phone, endpoint_id = await _phone(runtime, sip_client, clock)
    data = await _answer(phone)
    flow = phone.flow
    before = scrape()
    task = phone.service.receive(data, flow)
    if runtime.db.is_sqlite:
        assert task is None  # answered inside receive: no task, no machine
    else:
        assert task is not None  # PostgreSQL: every write has round trips to wait for
        await task
    [sent] = flow.sent
    assert _status(sent) == 200
    stored = await runtime.db.read(bindings.list_for_endpoint, endpoint_id)
    assert [s.binding.contact for s in stored] == [phone.contact_uri]
    after = scrape()
    assert moved(before, after, "sipline_sip_registers_total", outcome="registered") == 1

    # A copy of the request (its 200 lost on the way) gets the very same bytes, and is not
    # registered again: the binding stays as the first copy left it.
    task = phone.service.receive(data, flow)
    assert task is None
    assert flow.sent == [sent, sent]
    assert await runtime.db.read(bindings.list_for_endpoint, endpoint_id) == stored
    assert moved(after, scrape(), "sipline_sip_registers_total", outcome="registered") == 0


async def test_while_the_store_cannot_write_at_once_a_task_answers_to_the_same_end(runtime, sip_client, clock):
    phone, endpoint_id = await _phone(runtime, sip_client, clock)
    data = await _answer(phone)
    flow = phone.flow
    other = None
    if runtime.db.is_sqlite:
        other = sqlite3.connect(runtime.db.url.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        task = phone.service.receive(data, flow)
        assert task is not None
        if other is not None:
            for _ in range(5):
                await asyncio.sleep(0)
            assert not task.done() and flow.sent == []  # waiting for the lock, nothing sent yet
            assert phone.service.receive(data, flow) is None  # a copy meanwhile: absorbed by its transaction
    finally:
        if other is not None:
            other.execute("ROLLBACK")
            other.close()
    await asyncio.wait_for(task, 5)
    [sent] = flow.sent
    assert _status(sent) == 200
    stored = await runtime.db.read(bindings.list_for_endpoint, endpoint_id)
    assert [s.binding.contact for s in stored] == [phone.contact_uri]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (OperationalError("SELECT", {}, ConnectionRefusedError("the database is down")), 503),
        (IntegrityError("UPDATE", {}, Exception("a constraint our code broke")), 500),
    ],
)
async def test_a_store_failure_is_answered_as_on_the_task_path(
    runtime, sip_client, clock, caplog, monkeypatch, error, status
):
    phone, _ = await _phone(runtime, sip_client, clock)
    data = await _answer(phone)

    def fail(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(bindings, "list_for_endpoint", fail)
    flow = phone.flow
    task = phone.service.receive(data, flow)
    assert (task is None) == runtime.db.is_sqlite
    if task is not None:
        await task
    [sent] = flow.sent
    response = parse_message(sent)
    assert isinstance(response, SipResponse) and response.status == status
    assert response.headers.get("Retry-After") == ("5" if status == 503 else None)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == (status == 500), caplog.text
