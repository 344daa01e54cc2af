"""On PostgreSQL a refresh is first read and written without the endpoint's lock or a
transaction (`Registrar.register`, `bindings.refresh_if_unchanged`): three round trips instead of
five. Whatever changes between that read and its write (another node's REGISTER for the same
binding, a password change through the API) makes the write a no-op, and the REGISTER is decided
again under the lock, with what the store holds then. SQLite writes under its lock at once, in
no round trip: there is no unlocked first try to test there.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from sipline.store import bindings, endpoints
from sipline.store.schema import sip_bindings, sip_endpoints
from tests.sip_server.sip_phone import Phone
from tests.sip_server.test_register_now import _answer, _phone, _status


@pytest.fixture
async def phone(runtime, sip_client, clock) -> tuple[Phone, str]:
    """A registered phone (its first binding inserted under the lock), its endpoint's id."""
    if runtime.db.is_sqlite:
        pytest.skip("SQLite writes under its lock at once: no unlocked first try")
    phone, endpoint_id = await _phone(runtime, sip_client, clock)
    assert (await phone.register()).status == 200
    return phone, endpoint_id


async def _refresh(phone: Phone) -> int:
    """The status of the phone's next REGISTER answering a challenge (a refresh)."""
    data = await _answer(phone)
    flow = phone.flow
    task = phone.service.receive(data, flow)
    assert task is not None
    await task
    return _status(flow.sent[-1])


@pytest.fixture
def tries(monkeypatch) -> dict[str, list[object]]:
    """Records the locked reads and the unlocked writes' results."""
    seen: dict[str, list[object]] = {"locked": [], "written": []}
    locked, write = endpoints.auth_record_for_update, bindings.refresh_if_unchanged

    def locked_read(*args, **kwargs):
        seen["locked"].append(args[2])
        return locked(*args, **kwargs)

    def unlocked_write(*args, **kwargs):
        written = write(*args, **kwargs)
        seen["written"].append(written)
        return written

    monkeypatch.setattr(endpoints, "auth_record_for_update", locked_read)
    monkeypatch.setattr(bindings, "refresh_if_unchanged", unlocked_write)
    return seen


async def test_a_refresh_is_written_without_the_endpoints_lock(runtime, phone, tries) -> None:
    phone_, endpoint_id = phone
    [before] = await runtime.db.read(bindings.list_for_endpoint, endpoint_id)
    assert await _refresh(phone_) == 200
    assert tries == {"locked": [], "written": [True]}
    [after] = await runtime.db.read(bindings.list_for_endpoint, endpoint_id)
    assert after.row_id == before.row_id and after.binding.cseq == phone_.cseq > before.binding.cseq


async def test_a_binding_changed_between_read_and_write_is_registered_under_the_lock(
    runtime, phone, tries, monkeypatch
) -> None:
    phone_, endpoint_id = phone
    write = bindings.refresh_if_unchanged

    def another_node_first(conn, *args, **kwargs):
        # Another node's REGISTER for the same binding commits between this one's read and write.
        conn.execute(
            sa.update(sip_bindings)
            .where(sip_bindings.c.endpoint_id == endpoint_id)
            .values(registered_at=sip_bindings.c.registered_at + 1)
        )
        return write(conn, *args, **kwargs)

    monkeypatch.setattr(bindings, "refresh_if_unchanged", another_node_first)
    # 200, not a challenge: the answer's nonce count, taken by the first look, is no replay.
    assert await _refresh(phone_) == 200
    [stored] = await runtime.db.read(bindings.list_for_endpoint, endpoint_id)
    assert stored.binding.cseq == phone_.cseq  # this REGISTER's binding, written under the lock
    assert len(tries["locked"]) == 1


async def test_a_password_changed_between_read_and_write_counts_for_the_register(
    runtime, phone, tries, monkeypatch
) -> None:
    phone_, endpoint_id = phone
    [before] = await runtime.db.read(bindings.list_for_endpoint, endpoint_id)
    write = bindings.refresh_if_unchanged

    def password_changed_first(conn, *args, **kwargs):
        conn.execute(sa.update(sip_endpoints).where(sip_endpoints.c.id == endpoint_id).values(ha1_md5="0" * 32))
        return write(conn, *args, **kwargs)

    monkeypatch.setattr(bindings, "refresh_if_unchanged", password_changed_first)
    assert await _refresh(phone_) == 401  # judged again under the lock, against the new password
    assert await runtime.db.read(bindings.list_for_endpoint, endpoint_id) == [before]
