"""Call records, written behind the calls: every leg is a Call (the Calls resource shows them).

Signalling never waits for the store: creations and updates queue in order and are written in
batches, one transaction for whatever accumulated over a few milliseconds (group commit), with the
changes to one record merged (a leg that rings, answers and ends within a batch is one INSERT).
A store that is briefly away delays them; nothing is dropped unless the queue overflows its bound,
or the store refuses a record (a fault of ours: the batch is then written record by record, and
only what is refused is dropped, with its traceback in the log, rather than retried for ever ahead
of every record after it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import Connection

from sipline.store import calls as store
from sipline.store.db import Database, reason, unavailable

log = logging.getLogger("sipline.calls.records")

_MAX_QUEUED = 100_000
_GATHER = 0.02  # seconds a batch gathers before it is written
_Op = tuple[str, str, dict[str, Any]]  # ("create", sid, row) or ("update", sid, changes)


def new_record(sid: str, project_id: str, direction: str, node_id: str) -> dict[str, Any]:
    """A Call record with every column, as a leg starts (the caller fills in who and what)."""
    now = time.time()
    return {
        "sid": sid,
        "project_id": project_id,
        "parent_call_sid": None,
        "direction": direction,
        "from_address": "",
        "to_address": "",
        "caller_name": None,
        "status": "queued",
        "start_time": now,
        "answered_time": None,
        "end_time": None,
        "sip_call_id": None,
        "sip_result_code": None,
        "error_code": None,
        "error_message": None,
        "endpoint_id": None,
        "node_id": node_id,
        "date_created": now,
        "date_updated": now,
    }


def merged(batch: list[_Op]) -> list[_Op]:
    """The same writes, fewer statements: a record's updates folded into its creation when both
    are in the batch, and a record's successive updates into one (in order: later values win)."""
    out: list[_Op] = []
    pending: dict[str, dict[str, Any]] = {}  # sid -> the values of its op in `out`
    for kind, sid, values in batch:
        if kind == "update" and sid in pending:
            pending[sid].update(values)
            continue
        values = dict(values)
        out.append((kind, sid, values))
        pending[sid] = values
    return out


def _apply(conn: Connection, batch: list[_Op]) -> None:
    """A merged batch: its creations, then its updates (of records created in earlier batches:
    `merged` folded the others into their creations), each kind in as few statements as can be."""
    store.create_many(conn, [values for kind, _, values in batch if kind == "create"])
    store.update_many(conn, [(sid, values) for kind, sid, values in batch if kind == "update"])


class CallRecords:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._queue: list[_Op] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def create(self, row: dict[str, Any]) -> None:
        self._put(("create", row["sid"], row))

    def update(self, sid: str, **changes: Any) -> None:
        changes.setdefault("date_updated", time.time())
        self._put(("update", sid, changes))

    def _put(self, op: _Op) -> None:
        if len(self._queue) >= _MAX_QUEUED:
            log.error("call records: %d waiting for the store, dropping one for %s", len(self._queue), op[1])
            return
        self._queue.append(op)
        self._idle.clear()
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._write_behind())

    async def _write_behind(self) -> None:
        delay = 0.5
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                await asyncio.sleep(_GATHER)
                batch, self._queue = self._queue, []
                ops = merged(batch)
                try:
                    await self.db.write(_apply, ops)
                    delay = 0.5
                except Exception as exc:
                    if not unavailable(exc):
                        log.exception("call records: a batch of %d changes failed, written one by one", len(batch))
                        self._queue[:0] = await self._one_by_one(ops)
                        continue
                    log.warning("call records: store unavailable (%s), retrying in %.1f s", reason(exc), delay)
                    self._queue[:0] = batch
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
            self._idle.set()

    async def _one_by_one(self, ops: list[_Op]) -> list[_Op]:
        """Each change in a transaction of its own, those refused dropped (and logged); returns
        what is left untried when the store stops serving meanwhile."""
        for index, op in enumerate(ops):
            try:
                await self.db.write(_apply, [op])
            except Exception as exc:
                if unavailable(exc):
                    return ops[index:]
                log.exception("call records: the %s of %s could not be written, dropped", op[0], op[1])
        return []

    async def flush(self) -> None:
        """Wait until everything queued so far is written."""
        await self._idle.wait()

    async def close(self) -> None:
        """Write what is queued (for up to 10 s), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self.flush(), 10)
        except TimeoutError:
            log.error("call records: %d not written at shutdown (the store is unavailable)", len(self._queue))
        self._task.cancel()
        self._task = None
