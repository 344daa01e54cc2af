"""Running store functions against SQLite (default) or PostgreSQL.

Store functions are plain synchronous functions of a SQLAlchemy `Connection`, so each has one
implementation for both databases, and a request's database work is one call:

- PostgreSQL: the function runs on the event loop over asyncpg: a write in a transaction (writers
  lock the rows they read: SELECT ... FOR UPDATE), a read in autocommit (under READ COMMITTED each
  statement has its own snapshot either way, and BEGIN and COMMIT are two round trips more), and
  `autocommit` for a write whose every statement is atomic alone (the registrar's refresh: an
  UPDATE that checks what it read). A
  call is one greenlet around checkout, transaction and function (`_postgres`), not
  AsyncConnection's three (connect, run_sync, close): measured, that was a quarter of a
  REGISTER's database CPU. The pool has a fixed size, no overflow: an overflow connection is
  closed as it comes back, and under a steady load that churn (a new backend, the dialect's set-up
  queries) cost more than the work itself: above 250 REGISTERs/s on 2 cores, the registrar's
  goodput fell to a third of that. A connection is pinged before use only when it has been idle
  (`PING_IDLE_AFTER`), so a restarted server or a dropped connection is found before a request
  fails on it, while busy connections, in use every few ms, skip a round trip each time.
- SQLite: runs inline on the event loop, because an indexed SQLite statement takes microseconds,
  less than a hop to a thread (measured: one read through aiosqlite cost 1.5 ms of CPU, inline 0.18 ms).
  Reads run without a transaction (WAL readers never wait). Writes take the database write lock up
  front (BEGIN IMMEDIATE) so a read-modify-write never loses an update. A write runs at once when
  it can; when it cannot (another process holds the lock, a checkpoint is running, writes are
  already waiting), it joins a queue, and the queue is written in one transaction (group commit),
  each write in a savepoint of its own so that one failing rolls back only itself, every waiter
  answered once it is committed. (`write_now` is the first case alone, synchronous, for a caller
  that can then answer without a task, the registrar, and awaits `write` otherwise.) When another
  process holds the lock, a dedicated thread waits for it, never the event loop; once it has it,
  the queue (grown meanwhile) is written on the loop, so the lock is held for the statements
  alone. (Written on the thread, each statement waited for the interpreter's lock, which the busy
  loop holds up to 5 ms at a time, and the other process waited as long: with 2 workers under a
  registration storm, measured.) One round of the loop drains the whole queue: a lock handing
  writers over one by one would let a burst of them grow into a convoy.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from time import perf_counter
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import greenlet_spawn

from sipline import metrics

P = ParamSpec("P")
T = TypeVar("T")
StoreFn = Callable[Concatenate[Connection, P], T]


def normalize_url(raw: str) -> URL:
    """Accept the URLs users write: sqlite:// or sqlite+aiosqlite://, postgresql:// or +asyncpg."""
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite")
    if backend == "postgresql":
        return url.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://...")


_CHECKPOINT_EVERY = 200  # commits: about 1,000 WAL pages, SQLite's own autocheckpoint interval
_LOCK_POLL_MS = 2  # how long each try for another process's write lock waits
_LOCK_WAIT_S = 10.0  # how long writes wait for it in all, as busy_timeout=10000 elsewhere
PING_IDLE_AFTER = 2.0  # PostgreSQL: a connection idle this long (s) is pinged before it is used
_POOL_WAIT_S = 10.0  # PostgreSQL: how long a call waits for a free connection (then TimeoutError)
RETRY_AFTER = 5  # seconds: how long clients are told to wait (Retry-After) while the database cannot serve


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot serve right now (unreachable, restarting, a
    connection dropped, its pool or its lock waited for too long), not a fault in what was asked."""
    if isinstance(exc, OSError | sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated


def reason(exc: BaseException) -> str:
    """A database error in one line, for a log or a message: the driver's own words when it has some."""
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


class WriteLater(Exception):
    """`Database.write_now` could not write without waiting; nothing was run."""


class _WriteLockBusy(Exception):
    """Another process holds SQLite's write lock; raised before the function has run."""


class Database:
    def __init__(self, raw_url: str, *, pool_size: int = 20, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = normalize_url(raw_url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self._read_engine = _sqlite_engine(self.url, busy_ms=10000)
            # The loop's writer never checkpoints itself: a checkpoint fsyncs, and the loop must not
            # wait on the disk. Every _CHECKPOINT_EVERY commits the writer thread does it instead.
            self._write_now = _sqlite_engine(self.url, busy_ms=0, autocheckpoint=False)
            self._commits = 0
            self._checkpointing: Future[None] | None = None
            self._write_wait = _sqlite_engine(self.url, busy_ms=10000)
            # The connection that waits (on the writer thread) for another process's write lock,
            # and with it held writes the queue on the loop: short busy waits, retried, so that it
            # takes the lock within a few ms of its release; no checkpoint on the loop either.
            self._lock_taker = _sqlite_engine(self.url, busy_ms=_LOCK_POLL_MS, autocheckpoint=False)
            self._loop_taker: Connection | None = None
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
            self._queued: collections.deque[tuple[Callable[[Connection], Any], asyncio.Future[Any]]]
            self._queued = collections.deque()
            self._draining = False  # a round of the loop, a batch on the writer thread, is on its way
            # The event loop thread keeps one connection for reading and one for writing: inline
            # calls never overlap, and a pool checkout costs more than the statements it serves.
            self._loop_reader: Connection | None = None
            self._loop_writer: Connection | None = None
        else:
            self._async_engine = create_async_engine(
                # LIFO: the connections a load needs stay busy, the others stay idle (and are pinged).
                self.url,
                pool_size=pool_size,
                max_overflow=0,
                pool_timeout=_POOL_WAIT_S,
                pool_use_lifo=True,
            )
            self._engine = self._async_engine.sync_engine
            self._reader = self._engine.execution_options(isolation_level="AUTOCOMMIT")
            _ping_when_idle(self._engine, clock)
        # PostgreSQL: calls running or waiting for a connection, and how many make it saturated.
        self._pending = 0
        self._saturated_at = 2 * pool_size

    @metrics.timed_db("read")
    async def read(self, fn: StoreFn[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run fn(conn, ...) and return its result; it must not write."""
        if self.is_sqlite:
            if self._loop_reader is None:
                self._loop_reader = self._read_engine.connect()
            conn = self._loop_reader
            try:
                return fn(conn, *args, **kwargs)
            finally:
                conn.rollback()  # ends SQLAlchemy's bookkeeping; SQLite itself is in autocommit here

        def read(conn: Connection) -> T:
            return fn(conn, *args, **kwargs)

        return await self._postgres(self._reader.connect, read)

    def others_commits(self) -> int | None:
        """A number that changes whenever a connection other than this process's own writer commits
        (another process, another node, this process's writer thread), or None where no cheap
        marker exists (PostgreSQL). SQLite's PRAGMA data_version, read on the event loop's writer
        connection: it reads shared memory, not the disk, and ignores that connection's own commits,
        so this process's writes (API and SIP alike) leave it unchanged."""
        if not self.is_sqlite:
            return None
        version: int = self._loop_connection()[1].execute("PRAGMA data_version").fetchone()[0]
        return version

    @metrics.timed_db("write")
    async def write(self, fn: StoreFn[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run fn(conn, ...) in a write transaction, committed when fn returns, rolled back if it raises."""

        def call(conn: Connection) -> T:
            return fn(conn, *args, **kwargs)

        if not self.is_sqlite:
            return await self._postgres(self._engine.begin, call)
        return await self._sqlite_write(call)

    @metrics.timed_db("write")
    async def autocommit(self, fn: StoreFn[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run fn(conn, ...) with each of its statements committed on its own: on PostgreSQL in
        autocommit, which spares BEGIN's and COMMIT's round trips; fn must be right whatever other
        writers do between its statements (a write that checks what it read, say). On SQLite as
        `write`: a transaction there costs no round trip."""

        def call(conn: Connection) -> T:
            return fn(conn, *args, **kwargs)

        if not self.is_sqlite:
            return await self._postgres(self._reader.connect, call)
        return await self._sqlite_write(call)

    async def _sqlite_write(self, call: Callable[[Connection], T]) -> T:
        """At once when it can be (`_write_at_once`), else queued for the next round of the loop."""
        try:
            return self._write_at_once(call)
        except WriteLater:
            pass
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queued.append((call, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)
        return await future

    def write_now(self, fn: StoreFn[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`write`, if it can be done without waiting: on SQLite, when no write is queued and the
        lock is free. Else WriteLater, raised before fn has run (PostgreSQL: always)."""
        started: float | None = perf_counter()
        try:
            return self._write_at_once(lambda conn: fn(conn, *args, **kwargs))
        except WriteLater:
            started = None  # nothing was written: not a write's duration
            raise
        finally:
            if started is not None:
                metrics.db_timed("write", perf_counter() - started)

    @property
    def writes_now(self) -> bool:
        """Whether `write_now` would try its write: SQLite with no write queued and no checkpoint
        running (the lock itself is tried then). False on PostgreSQL: a caller that would prepare
        a write for `write_now` prepares it once, for `write`, instead. While a checkpoint runs,
        writes wait for it: inline ones would keep taking the lock it needs to restart the WAL,
        which would then only grow."""
        return self.is_sqlite and not (self._queued or self._draining or self._checkpoint_running())

    def _write_at_once(self, call: Callable[[Connection], T]) -> T:
        if not self.writes_now:
            raise WriteLater()
        try:
            return self._write_inline(call)
        except _WriteLockBusy:
            raise WriteLater() from None

    @property
    def saturated(self) -> bool:
        """PostgreSQL: as many calls wait for a connection as the pool holds. Work that has not
        started yet should be turned away rather than queued behind them: it would wait longer
        than its sender does, and be sent again meanwhile (bench/sip.py's storm, 3 x capacity:
        goodput 34 % of capacity without this and the fixed pool, 114 % with them). SQLite:
        never; writes run inline, and those that queue are written at the next round of the loop."""
        return self._pending >= self._saturated_at

    async def _postgres(
        self, connect: Callable[[], AbstractContextManager[Connection]], call: Callable[[Connection], T]
    ) -> T:
        def run() -> T:  # in a greenlet: the driver's awaits pass through to the loop
            with connect() as conn:
                return call(conn)

        self._pending += 1
        try:
            return await greenlet_spawn(run)
        finally:
            self._pending -= 1

    def _checkpoint_running(self) -> bool:
        return self._checkpointing is not None and not self._checkpointing.done()

    def _loop_connection(self) -> tuple[Connection, sqlite3.Connection]:
        if self._loop_writer is None:
            self._loop_writer = self._write_now.connect()
        return self._loop_writer, _raw(self._loop_writer)

    def _write_inline(self, call: Callable[[Connection], T]) -> T:
        """BEGIN IMMEDIATE without waiting; the transaction is driven on the raw connection, which
        skips SQLAlchemy's begin/commit machinery (measured: a sixth of a REGISTER's CPU)."""
        conn, raw = self._loop_connection()
        _begin_now(raw)
        try:
            result = call(conn)
        except BaseException:
            _roll_back(conn, raw)
            raise
        _commit(conn, raw)
        self._committed()
        return result

    def _drain(self) -> None:
        """Write what has queued up, in one transaction; then again, until nothing is left."""
        loop = asyncio.get_running_loop()
        if self._checkpoint_running():
            assert self._checkpointing is not None
            self._checkpointing.add_done_callback(lambda _: loop.call_soon_threadsafe(self._drain))
            return
        if not any(not future.cancelled() for _, future in self._queued):
            self._queued.clear()
            self._draining = False
            return
        conn, raw = self._loop_connection()
        try:
            _begin_now(raw)
        except _WriteLockBusy:  # another process writes: the writer thread waits for its lock
            waiting = self._writer.submit(_take_lock, self._taker_connection()[1], _LOCK_WAIT_S)
            waiting.add_done_callback(lambda done: loop.call_soon_threadsafe(self._lock_taken, done))
            return
        except Exception as exc:
            self._write_queue(conn, raw, failure=exc)
        else:
            self._write_queue(conn, raw)
        loop.call_soon(self._drain)

    def _lock_taken(self, done: Future[None]) -> None:
        """The writer thread holds the write lock on the taker connection (or gave up): the queue,
        as it is now, is written in that transaction."""
        conn, raw = self._taker_connection()
        try:
            done.result()
        except Exception as exc:
            self._write_queue(conn, raw, failure=exc)
        else:
            self._write_queue(conn, raw)
        asyncio.get_running_loop().call_soon(self._drain)

    def _write_queue(self, conn: Connection, raw: sqlite3.Connection, failure: Exception | None = None) -> None:
        """Every write queued, in the transaction begun on `raw` (or each failed with `failure`)."""
        batch = [entry for entry in self._queued if not entry[1].cancelled()]
        self._queued.clear()
        if failure is not None:
            self._answer(batch, [failure] * len(batch))
            return
        try:
            outcomes = _run_batch(conn, raw, [call for call, _ in batch])
            _commit(conn, raw)
        except Exception as exc:
            _roll_back(conn, raw)
            outcomes = [exc] * len(batch)
        else:
            self._committed()
        self._answer(batch, outcomes)

    def _taker_connection(self) -> tuple[Connection, sqlite3.Connection]:
        if self._loop_taker is None:
            self._loop_taker = self._lock_taker.connect()
        return self._loop_taker, _raw(self._loop_taker)

    @staticmethod
    def _answer(batch: list[tuple[Callable[[Connection], Any], asyncio.Future[Any]]], outcomes: list[Any]) -> None:
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.cancelled():
                continue
            if isinstance(outcome, _Failed):
                future.set_exception(outcome.exc)
            elif isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % _CHECKPOINT_EVERY == 0:
            self._checkpointing = self._writer.submit(_checkpoint, self._write_wait)

    async def settle(self) -> None:
        """Wait for background work (a SQLite checkpoint) to finish."""
        if self.is_sqlite and self._checkpointing is not None:
            await asyncio.wrap_future(self._checkpointing)

    async def dispose(self) -> None:
        if self.is_sqlite:
            self._writer.shutdown(wait=True)
            for conn in (self._loop_reader, self._loop_writer, self._loop_taker):
                if conn is not None:
                    conn.close()
            self._loop_reader = self._loop_writer = self._loop_taker = None
            for engine in (self._read_engine, self._write_now, self._write_wait, self._lock_taker):
                engine.dispose()
        else:
            await self._async_engine.dispose()

    def describe(self) -> str:
        return self.url.render_as_string(hide_password=True)


def savepoint(conn: Connection) -> AbstractContextManager[Any]:
    """Around a statement that may fail on a constraint: PostgreSQL aborts the whole transaction
    on a failed statement, and a savepoint keeps it usable; SQLite needs none."""
    return conn.begin_nested() if conn.dialect.name == "postgresql" else nullcontext()


def _ping_when_idle(engine: sa.Engine, clock: Callable[[], float]) -> None:
    """Ping a pooled connection on checkout if it has been idle PING_IDLE_AFTER s or more; a dead
    one is replaced by the pool (DisconnectionError makes it connect afresh)."""

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = clock()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or clock() - idle_since < PING_IDLE_AFTER:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if not engine.dialect.is_disconnect(exc, dbapi_conn, None):
                raise
            alive = False
        if not alive:
            raise sa.exc.DisconnectionError("the connection was found closed after idling")


def _checkpoint(engine: sa.Engine) -> None:
    """Copy the WAL back into the database and make the next writer start it over (RESTART).

    PASSIVE would never let the WAL restart under a steady stream of writes, and it would grow
    without bound; RESTART needs writers held off, which Database.write does by queueing its
    writes until it is done."""
    with engine.connect() as conn:
        _raw(conn).execute("PRAGMA wal_checkpoint(RESTART)")


class _Failed:
    """A write of a batch that raised: its savepoint was rolled back, the others were committed."""

    __slots__ = ("exc",)

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def _raw(conn: Connection) -> sqlite3.Connection:
    raw = conn.connection.dbapi_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def _begin_now(raw: sqlite3.Connection) -> None:
    try:
        raw.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise _WriteLockBusy() from exc
        raise


def _commit(conn: Connection, raw: sqlite3.Connection) -> None:
    if raw.in_transaction:  # Alembic commits its own transaction, and with it this one
        raw.execute("COMMIT")
    conn.rollback()  # SQLAlchemy's bookkeeping; SQLite has nothing left to roll back


def _roll_back(conn: Connection, raw: sqlite3.Connection) -> None:
    if raw.in_transaction:  # SQLite may have rolled back already (e.g. a full disk)
        raw.execute("ROLLBACK")
    conn.rollback()


def _run_batch(conn: Connection, raw: sqlite3.Connection, calls: list[Callable[[Connection], Any]]) -> list[Any]:
    """Each call in a savepoint of its own, in the transaction begun on `raw`: its result, or
    _Failed when it raised (its savepoint rolled back, the batch going on)."""
    if len(calls) == 1:  # no savepoint needed: the transaction is the call's
        try:
            return [calls[0](conn)]
        except Exception as exc:
            _roll_back(conn, raw)  # the transaction was the call's alone: nothing is left to commit
            return [_Failed(exc)]
    outcomes: list[Any] = []
    for call in calls:
        raw.execute("SAVEPOINT write")
        try:
            outcomes.append(call(conn))
        except Exception as exc:
            raw.execute("ROLLBACK TO write")
            outcomes.append(_Failed(exc))
        raw.execute("RELEASE write")
    return outcomes


def _take_lock(raw: sqlite3.Connection, timeout: float) -> None:
    """BEGIN IMMEDIATE on `raw` (on the writer thread), tried again until another process lets go
    of the write lock: each try waits _LOCK_POLL_MS in SQLite's busy handler, whose own waits grow
    to 100 ms and would leave the lock unused that long. OperationalError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _begin_now(raw)
            return
        except _WriteLockBusy as busy:
            if time.monotonic() > deadline:
                raise sa.exc.OperationalError("BEGIN IMMEDIATE", (), busy.__cause__ or busy) from busy


def _sqlite_engine(url: URL, *, busy_ms: int, autocheckpoint: bool = True) -> sa.Engine:
    engine = sa.create_engine(url, pool_size=4, max_overflow=4, connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN is ours to issue (or not).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        if not autocheckpoint:
            cur.execute("PRAGMA wal_autocheckpoint=0")
        cur.close()

    return engine
