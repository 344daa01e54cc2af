"""Prometheus metrics: every metric sipline exports, defined once, and the one-line calls recording them.

Label values come from fixed vocabularies only (route templates, status codes, transports,
outcomes), never from what a client chose (a path, a user name, an address, a method token), so
the number of series stays bounded whatever is sent. The calls are cheap: the children of each
labelled metric are bound once (`.labels(...)` takes a lock and validates), and a call on a hot
path is a dictionary lookup and an `inc()`.

Multi-process mode (prometheus_client's): when PROMETHEUS_MULTIPROC_DIR names a directory, each
process keeps its values in files there and a scrape of any process collects them all
(`render`). The master of several workers sets the variable to a fresh directory before forking
and calls `mark_process_dead(pid)` when a worker exits. prometheus_client picks where values live
when a metric is made, and this module may well have been imported before the variable was set
(the master imports everything first): a forked child that finds the variable set makes its
metrics again, backed by files (`os.register_at_fork`), so that setting it before forking is enough.

Live bindings are not kept here: they live in the database, read when scraped (`render`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from time import perf_counter
from typing import Literal, ParamSpec, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from sipline.domain.calls import FINAL_STATUSES

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The classic text format, which every Prometheus version reads (what `render` writes is that);
# MEDIA_TYPE without the charset, which the web framework adds.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
MEDIA_TYPE = CONTENT_TYPE.removesuffix("; charset=utf-8")

# The vocabularies. Anything outside them is counted under OTHER (or "unmatched" for routes).
OTHER = "other"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
UNMATCHED_ROUTE = "unmatched"
TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss")
SERVED_TRANSPORTS = ("udp", "tcp", "tls")  # their series exist from the start, at 0
MESSAGE_KINDS = ("request", "response")
RegisterOutcome = Literal["registered", "refreshed", "unregistered", "challenged", "refused", "error"]
REGISTER_OUTCOMES: tuple[RegisterOutcome, ...] = (
    "registered",
    "refreshed",
    "unregistered",
    "challenged",
    "refused",
    "error",
)
AUTH_FAILURE_REASONS = ("wrong_password", "unknown_user")
BLOCK_SCOPES = ("user", "source")
CALL_STATUSES = tuple(sorted(FINAL_STATUSES))
DB_OPERATIONS = ("read", "write")

# Seconds. A SQLite statement takes tens of microseconds, a PostgreSQL round trip about a millisecond.
_DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


_C = TypeVar("_C")
P = ParamSpec("P")
T = TypeVar("T")


class _Bound(dict[str, _C]):
    """A labelled metric's children by label value, each bound once (`up_front`, or on first use).
    A value outside the vocabulary is counted as "other" and not kept under its own key, so the
    dictionary stays as small as the vocabulary whatever it is asked."""

    def __init__(self, bind: Callable[[str], _C], vocabulary: Iterable[str], up_front: Iterable[str]) -> None:
        super().__init__((value, bind(value)) for value in up_front)
        self._bind = bind
        self._vocabulary = frozenset(vocabulary)

    def __missing__(self, value: str) -> _C:
        label = value if value in self._vocabulary else OTHER
        if label not in self:
            self[label] = self._bind(label)
        return self[label]


def _by_kind(counter: Counter) -> Callable[[str], tuple[Counter, Counter]]:
    def bind(transport: str) -> tuple[Counter, Counter]:
        return counter.labels(transport, "request"), counter.labels(transport, "response")

    return bind


class _Metrics:
    """Every metric, made once per process (twice in a worker forked before multi-process mode was
    chosen); `registry` is None in multi-process mode, where scrapes read the files instead."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.registry = registry
        self.multiprocess = bool(getattr(values.ValueClass, "_multiprocess", False))
        r = registry
        self.http_requests = Counter(
            "sipline_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "sipline_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=_HTTP_BUCKETS,
            registry=r,
        )
        received = Counter(
            "sipline_sip_messages_received",
            "SIP messages received, by transport and kind (request or response)",
            ["transport", "kind"],
            registry=r,
        )
        sent = Counter(
            "sipline_sip_messages_sent",
            "SIP messages sent, by transport and kind (request or response)",
            ["transport", "kind"],
            registry=r,
        )
        # Indexed by transport, then by "is a response" (False: 0, the request's child; True: 1).
        self.received = _Bound(_by_kind(received), TRANSPORTS, SERVED_TRANSPORTS)
        self.sent = _Bound(_by_kind(sent), TRANSPORTS, SERVED_TRANSPORTS)
        self.shed = Counter(
            "sipline_sip_requests_shed",
            "SIP requests dropped unanswered under overload: stale on arrival, too many in flight, or too many "
            "waiting for a worker stuck far longer than peers wait to retransmit",
            registry=r,
        )
        registers = Counter(
            "sipline_sip_registers",
            "REGISTER requests answered, by outcome: registered (a new contact), refreshed (the same "
            "contacts), unregistered (contacts removed), challenged (401), refused (other 4xx), error (5xx)",
            ["outcome"],
            registry=r,
        )
        self.registers = {outcome: registers.labels(outcome) for outcome in REGISTER_OUTCOMES}
        auth_failures = Counter(
            "sipline_sip_auth_failures",
            "Failed digest authentications (any method), by reason",
            ["reason"],
            registry=r,
        )
        self.auth_wrong, self.auth_unknown = (auth_failures.labels(reason) for reason in AUTH_FAILURE_REASONS)
        blocks = Counter(
            "sipline_sip_auth_blocks",
            "Blocks started after too many failed authentications, by scope: a user name from one "
            "address, or a whole address",
            ["scope"],
            registry=r,
        )
        self.blocks = {scope: blocks.labels(scope) for scope in BLOCK_SCOPES}
        self.throttled = Counter(
            "sipline_sip_auth_throttled_requests",
            "SIP requests refused (403) because their source or user name was blocked",
            registry=r,
        )
        db = Histogram(
            "sipline_db_operation_duration_seconds",
            "Time a database operation took as its caller waited for it (queueing included), by operation",
            ["operation"],
            buckets=_DB_BUCKETS,
            registry=r,
        )
        self.db = {operation: db.labels(operation) for operation in DB_OPERATIONS}
        calls = Counter(
            "sipline_calls",
            "Calls placed through sipline that ended, by the caller's leg's final status",
            ["status"],
            registry=r,
        )
        self.calls = _Bound(calls.labels, CALL_STATUSES, CALL_STATUSES)
        self.calls_active = Gauge(
            "sipline_calls_active",
            "Calls answered and not yet ended (summed over the live processes)",
            multiprocess_mode="livesum",
            registry=r,
        )
        self._http: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def http(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        """The request counter's and the duration histogram's children for these labels, bound on
        first use: the keys come from bounded vocabularies, so the cache is bounded too."""
        key = (method, route, status)
        children = self._http.get(key)
        if children is None:
            children = self._http[key] = (
                self.http_requests.labels(method, route, str(status)),
                self.http_duration.labels(method, route),
            )
        return children


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _make() -> _Metrics:
    if multiprocess_dir() is None:
        return _Metrics(CollectorRegistry())
    if not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus_client chose in-memory values when it was imported, before the variable was
        # set: choose again (the attribute every metric reads its value class from when made).
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return _Metrics(None)


_m = _make()


def _after_fork_in_child() -> None:
    global _m
    if multiprocess_dir() is not None and not _m.multiprocess:
        _m = _make()


os.register_at_fork(after_in_child=_after_fork_in_child)


def mark_process_dead(pid: int) -> None:
    """For the master, when a worker has exited: its live gauges (active calls) stop counting.
    Its counters stay, as they should. A no-op outside multi-process mode."""
    directory = multiprocess_dir()
    if directory is not None:
        _multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


# --- recording: one call per event, at the one place it happens -----------------------------------


def http_request(method: str, route: str | None, status: int, seconds: float) -> None:
    """An HTTP request answered: `route` is the route template Litestar matched (None: no route),
    `status` 0 when no response was started."""
    counter, histogram = _m.http(method if method in HTTP_METHODS else OTHER, route or UNMATCHED_ROUTE, status)
    counter.inc()
    histogram.observe(seconds)


def sip_received(transport: str, data: bytes) -> None:
    """A SIP message in, told apart by its first bytes (a response's status line starts with the version)."""
    _m.received[transport][data.startswith(b"SIP/")].inc()


def sip_sent(transport: str, data: bytes) -> None:
    _m.sent[transport][data.startswith(b"SIP/")].inc()


def sip_shed() -> None:
    _m.shed.inc()


class _HasContact(Protocol):
    @property
    def contact(self) -> str: ...


def register_accepted(before: Iterable[_HasContact], after: Iterable[_HasContact]) -> None:
    """A REGISTER answered 200, with the contacts bound before and after it: any new contact is
    'registered'; else any removed is 'unregistered'; else (a refresh, or a fetch) 'refreshed'."""
    old = {b.contact for b in before}
    new = {b.contact for b in after}
    outcome: RegisterOutcome = "registered" if new - old else "unregistered" if old - new else "refreshed"
    _m.registers[outcome].inc()


def register_answered(status: int) -> None:
    """A REGISTER answered with anything but a 2xx (those are counted by `register_accepted`,
    which knows what they changed)."""
    if status < 300:
        return
    _m.registers["challenged" if status == 401 else "error" if status >= 500 else "refused"].inc()


def auth_failed(wrong_password: bool) -> None:
    """A digest answer that failed: a wrong password, or a user name no endpoint has."""
    (_m.auth_wrong if wrong_password else _m.auth_unknown).inc()


def auth_block_started(scope: str) -> None:
    """A block starts: 'user' (a user name from one address) or 'source' (the whole address)."""
    _m.blocks[scope].inc()


def auth_throttled() -> None:
    _m.throttled.inc()


def call_answered() -> None:
    _m.calls_active.inc()


def call_ended(status: str, answered: bool) -> None:
    """A call's end, with its caller's leg's final status (completed, busy, no-answer, canceled, failed)."""
    _m.calls[status].inc()
    if answered:
        _m.calls_active.dec()


def timed_db(operation: Literal["read", "write"]) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorates Database.read / Database.write: their duration, as the caller waits for them."""

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def timed(*args: P.args, **kwargs: P.kwargs) -> T:
            started = perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                db_timed(operation, perf_counter() - started)

        return timed

    return decorate


def db_timed(operation: Literal["read", "write"], seconds: float) -> None:
    """A database call's duration, as its caller waited for it."""
    _m.db[operation].observe(seconds)


# --- the scrape --------------------------------------------------------------------------------------


class _Families:
    def __init__(self, families: Collection[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def bindings_family(by_transport: Mapping[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "sipline_sip_bindings",
        "Live SIP bindings (registered contacts) in the database, by transport; read from the "
        "database when scraped, so every node reports the same value",
        labels=["transport"],
    )
    counts = dict.fromkeys(TRANSPORTS[:3], 0)  # the transports sipline serves, 0 when none
    for transport, count in by_transport.items():
        key = transport if transport in TRANSPORTS else OTHER
        counts[key] = counts.get(key, 0) + count
    for transport, count in sorted(counts.items()):
        family.add_metric([transport], count)
    return family


def render(bindings: Mapping[str, int] | None = None) -> bytes:
    """The text every scrape gets: this process's metrics, or all processes' in multi-process
    mode, and the live bindings by transport when given (None: the database did not answer)."""
    directory = multiprocess_dir()
    if directory is not None:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
        text = generate_latest(registry)
    else:
        assert _m.registry is not None
        text = generate_latest(_m.registry)
    if bindings is not None:
        text += generate_latest(_Families([bindings_family(bindings)]))
    return text
