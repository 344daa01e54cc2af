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
