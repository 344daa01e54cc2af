"""Bindings in the store: `replace` makes the registrar's decided set the stored one, on both
databases, updating a contact's row in place rather than writing the set again."""

from __future__ import annotations

import pytest

from sipline.sip.registrar import Binding
from sipline.store import bindings
from sipline.store.bindings import Origin
from tests.conftest import Project

PHONE = Origin("udp", "192.0.2.10", 5060, "phone/1.0")
LAPTOP = Origin("tls", "192.0.2.20", 5061, None, "node-1", "flow-1")
A, B, C = "sip:a@192.0.2.10:5060", "sip:b@192.0.2.20:5061", "sip:c@192.0.2.30:5060"


def binding(contact: str, expires_at: float = 5000.0, cseq: int = 1, registered_at: float = 1000.0) -> Binding:
    return Binding(contact, expires_at, "call-1", cseq, None, registered_at)


@pytest.fixture
async def endpoint_id(project: Project) -> str:
    endpoint = await project.create()
    return str(endpoint["id"])


async def _replace(runtime, endpoint_id: str, new: list[Binding], origin: Origin) -> list[bindings.StoredBinding]:
    def write(conn):
        bindings.replace(conn, endpoint_id, new, origin, bindings.list_for_endpoint(conn, endpoint_id))

    await runtime.db.write(write)
    return await runtime.db.read(bindings.list_for_endpoint, endpoint_id)


def _view(stored: list[bindings.StoredBinding]) -> list[tuple[Binding, Origin]]:
    return [(s.binding, s.origin) for s in stored]


async def test_a_refresh_updates_the_contact_in_its_row(runtime, endpoint_id) -> None:
    [first] = await _replace(runtime, endpoint_id, [binding(A)], PHONE)
    refreshed = binding(A, expires_at=9000.0, cseq=2)
    [after] = await _replace(runtime, endpoint_id, [refreshed], LAPTOP)
    assert (after.binding, after.origin) == (refreshed, LAPTOP)
    assert after.row_id == first.row_id


async def test_a_binding_the_request_left_alone_keeps_its_origin(runtime, endpoint_id) -> None:
    await _replace(runtime, endpoint_id, [binding(A), binding(B, registered_at=1001.0)], PHONE)
    refreshed_b = binding(B, expires_at=9000.0, cseq=2, registered_at=1001.0)
    stored = await _replace(runtime, endpoint_id, [binding(A), refreshed_b], LAPTOP)
    assert _view(stored) == [(binding(A), PHONE), (refreshed_b, LAPTOP)]


async def test_contacts_come_and_go_with_the_set(runtime, endpoint_id) -> None:
    await _replace(runtime, endpoint_id, [binding(A), binding(B, registered_at=1001.0)], PHONE)
    new_c = binding(C, registered_at=1002.0)
    stored = await _replace(runtime, endpoint_id, [binding(B, registered_at=1001.0), new_c], PHONE)
    assert _view(stored) == [(binding(B, registered_at=1001.0), PHONE), (new_c, PHONE)]
    assert await _replace(runtime, endpoint_id, [], PHONE) == []


async def test_rows_repeating_a_contact_are_folded_into_one(runtime, endpoint_id) -> None:
    def duplicate(conn):  # as a store written before replace updated rows in place could hold
        for cseq in (1, 2):
            bindings.replace(conn, endpoint_id, [binding(A, cseq=cseq)], PHONE, [])

    await runtime.db.write(duplicate)
    assert len(await runtime.db.read(bindings.list_for_endpoint, endpoint_id)) == 2
    refreshed = binding(A, cseq=3)
    assert _view(await _replace(runtime, endpoint_id, [refreshed], PHONE)) == [(refreshed, PHONE)]
    unchanged = binding(A, cseq=3)  # the same binding again, from where it came: nothing to write
    assert _view(await _replace(runtime, endpoint_id, [unchanged], PHONE)) == [(unchanged, PHONE)]


# --- refresh_if_unchanged: the registrar's write on PostgreSQL without the endpoint's lock --------


async def _read(runtime, project: Project, username: str):
    """The endpoint's auth record and its bindings, read without the lock, as the registrar's first try does."""

    return await runtime.db.read(bindings.with_auth_record, project.id, username)


@pytest.fixture
async def registered(runtime, project: Project) -> tuple[str, str]:
    """An endpoint with one binding, A from PHONE: its username and id."""
    endpoint = await project.create()
    await _replace(runtime, endpoint["id"], [binding(A)], PHONE)
    return endpoint["username"], endpoint["id"]


async def test_a_refresh_is_written_when_nothing_changed_since_it_was_read(runtime, project, registered) -> None:
    username, endpoint_id = registered
    endpoint, previous = await _read(runtime, project, username)
    refreshed = binding(A, expires_at=9000.0, cseq=2, registered_at=2000.0)
    assert await runtime.db.autocommit(bindings.refresh_if_unchanged, endpoint, [refreshed], LAPTOP, previous)
    assert _view(await runtime.db.read(bindings.list_for_endpoint, endpoint_id)) == [(refreshed, LAPTOP)]


async def test_a_refresh_writes_nothing_when_its_binding_changed_since_it_was_read(
    runtime, project, registered
) -> None:
    username, endpoint_id = registered
    endpoint, previous = await _read(runtime, project, username)
    meanwhile = binding(A, expires_at=7000.0, cseq=5, registered_at=1500.0)  # another node's REGISTER
    await _replace(runtime, endpoint_id, [meanwhile], PHONE)
    late = binding(A, expires_at=9000.0, cseq=2, registered_at=2000.0)
    assert not await runtime.db.autocommit(bindings.refresh_if_unchanged, endpoint, [late], LAPTOP, previous)
    assert _view(await runtime.db.read(bindings.list_for_endpoint, endpoint_id)) == [(meanwhile, PHONE)]
    await _replace(runtime, endpoint_id, [], PHONE)  # unregistered meanwhile: no row to refresh
    assert not await runtime.db.autocommit(bindings.refresh_if_unchanged, endpoint, [late], LAPTOP, previous)
    assert await runtime.db.read(bindings.list_for_endpoint, endpoint_id) == []


@pytest.mark.parametrize("change", ["password", "username", "deleted"])
async def test_a_refresh_writes_nothing_when_the_endpoint_changed_since_it_was_read(
    runtime, project, registered, change
) -> None:
    username, endpoint_id = registered
    endpoint, previous = await _read(runtime, project, username)
    if change == "deleted":
        response = await project.request("DELETE", f"/endpoints/sip/{endpoint_id}")
    else:
        new = {"password": "an0ther-pass"} if change == "password" else {"username": f"{username}x"}
        response = await project.request("PUT", f"/endpoints/sip/{endpoint_id}", json=new)
    assert response.is_success, response.text
    late = binding(A, expires_at=9000.0, cseq=2, registered_at=2000.0)
    assert not await runtime.db.autocommit(bindings.refresh_if_unchanged, endpoint, [late], LAPTOP, previous)
    stored = await runtime.db.read(bindings.list_for_endpoint, endpoint_id)
    assert _view(stored) == ([] if change == "deleted" else [(binding(A), PHONE)])


async def test_only_a_single_refresh_is_written_without_the_lock(runtime, project, registered) -> None:
    username, endpoint_id = registered
    endpoint, previous = await _read(runtime, project, username)
    for shape in (
        [binding(A), binding(B, registered_at=1001.0)],  # a contact added
        [],  # every contact removed
        [binding(B)],  # one replaced by another
    ):
        assert not await runtime.db.autocommit(bindings.refresh_if_unchanged, endpoint, shape, PHONE, previous)
    assert _view(await runtime.db.read(bindings.list_for_endpoint, endpoint_id)) == [(binding(A), PHONE)]


async def test_an_endpoint_is_read_with_its_bindings_in_one_statement(runtime, project: Project) -> None:
    endpoint = await project.create()
    record, stored = await runtime.db.read(bindings.with_auth_record, project.id, endpoint["username"])
    assert record is not None and (record["id"], record["username"]) == (endpoint["id"], endpoint["username"])
    assert set(record) == {"id", "username", "encryption", "ha1_md5", "ha1_sha256"} and stored == []
    await _replace(runtime, endpoint["id"], [binding(A), binding(B, registered_at=1001.0)], PHONE)
    _, stored = await runtime.db.read(bindings.with_auth_record, project.id, endpoint["username"])
    assert stored == await runtime.db.read(bindings.list_for_endpoint, endpoint["id"])
    assert await runtime.db.read(bindings.with_auth_record, project.id, "nobody") == (None, [])
