"""Call records for tests, written through the store as the call engine will write them."""

from __future__ import annotations

import time
from typing import Any

from sipline.domain.calls import new_sid
from sipline.runtime import Runtime
from sipline.store import calls


def call_record(project_id: str, **columns: Any) -> dict[str, Any]:
    """A full row for calls.create: an inbound leg ringing now, unless `columns` say otherwise."""
    now = time.time()
    return {
        "sid": new_sid(),
        "project_id": project_id,
        "parent_call_sid": None,
        "direction": "inbound",
        "from_address": "sip:alice@acme.sip.localhost",
        "to_address": "sip:bob@acme.sip.localhost",
        "caller_name": None,
        "status": "ringing",
        "start_time": now,
        "answered_time": None,
        "end_time": None,
        "sip_call_id": f"{new_sid()}@192.0.2.1",
        "sip_result_code": None,
        "error_code": None,
        "error_message": None,
        "endpoint_id": None,
        "node_id": None,
        "date_created": now,
        "date_updated": now,
    } | columns


async def add_call(runtime: Runtime, project_id: str, **columns: Any) -> dict[str, Any]:
    row = call_record(project_id, **columns)
    await runtime.db.write(calls.create, row)
    return row
