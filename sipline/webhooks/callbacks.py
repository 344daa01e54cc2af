"""Status callbacks: reported in the background, so a slow or dead user server never delays signalling.

`Callbacks.send` only queues (it is not even a coroutine); worker tasks deliver with the shared
`WebhookClient`. A callback is tried up to 3 times, 1 s then 2 s apart, until the server answers
2xx (SignalWire: "retry up to two more times, three attempts in total", signalwire/docs
`.../cxml/guides/webhooks/common-webhook-errors.mdx`; Twilio acknowledges with 200 or 204, any 2xx
counts here). Callbacks are delivered concurrently, so they may arrive out of order: that is what
`SequenceNumber` is for.

The queue is bounded: a callback that finds it full is dropped, counted in `dropped` and logged
(at most once a second). A callback given up is logged once, at warning, naming the URL's host
alone: never the signing key, the path or the query string.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from sipline.domain.calls import CALL_DIRECTIONS, CALL_STATUSES
from sipline.domain.times import rfc2822

from .client import Fetched, FetchFailed, WebhookClient

log = logging.getLogger("sipline.webhooks")

API_VERSION = "2010-04-01"
# The CallStatus values of a status callback (SignalWire specs/compatibility-api/calls/models/webhooks.tsp).
STATUS_CALLBACK_STATUSES: tuple[str, ...] = ("initiated", *CALL_STATUSES)


def status_params(
    *,
    account_sid: str,
    call_sid: str,
    call_status: str,
    direction: str,
    from_address: str,
    to_address: str,
    timestamp: float,
    sequence_number: int,
    parent_call_sid: str | None = None,
    call_duration: int | None = None,
    sip_result_code: int | None = None,
) -> dict[str, str]:
    """The parameters of a call's status callback (calls.md, "Status callback"). `CallDuration`
    (whole seconds) is sent on `completed` only; `sequence_number` counts the call's callbacks
    from 0 (the caller keeps the count)."""
    if call_status not in STATUS_CALLBACK_STATUSES:
        raise ValueError(f"call_status {call_status!r} is not one of {', '.join(STATUS_CALLBACK_STATUSES)}")
    if direction not in CALL_DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {', '.join(CALL_DIRECTIONS)}")
    params = {
        "AccountSid": account_sid,
        "ApiVersion": API_VERSION,
        "CallSid": call_sid,
        "CallStatus": call_status,
        "Direction": direction,
        "From": from_address,
        "To": to_address,
        "Timestamp": rfc2822(timestamp),
        "SequenceNumber": str(sequence_number),
    }
    if parent_call_sid:
        params["ParentCallSid"] = parent_call_sid
    if call_status == "completed":
        params["CallDuration"] = str(call_duration or 0)
    if sip_result_code is not None:
        params["SipResultCode"] = str(sip_result_code)
    return params


@dataclass(frozen=True)
class _Callback:
    url: str
    method: str
    params: Mapping[str, str] | None
    json_body: object
    signing_key: str | None


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


class Callbacks:
    """The process's status callback sender, over the shared client; `aclose()` it at shutdown
    (before the client)."""

    def __init__(
        self,
        client: WebhookClient,
        *,
        max_pending: int = 10000,
        workers: int = 16,
        backoff: tuple[float, ...] = (1.0, 2.0),
    ) -> None:
        """`backoff`: the waits before the 2nd, 3rd... attempts; its length + 1 is the number of attempts."""
        self._client = client
        self.backoff = backoff
        self._worker_count = workers
        self._queue: asyncio.Queue[_Callback] = asyncio.Queue(max_pending)
        self._workers: list[asyncio.Task[None]] = []
        self._pending = 0  # queued or being delivered
        self._closing = False
        self._drop_logged_at = -math.inf
        self.delivered = 0
        self.failed = 0  # given up after every attempt
        self.dropped = 0  # never tried: the queue was full, or the sender closing

    @property
    def attempts(self) -> int:
        return len(self.backoff) + 1

    def send(
        self,
        url: str,
        method: str = "POST",
        params: Mapping[str, str] | None = None,
        *,
        json_body: object = None,
        signing_key: str | None = None,
    ) -> bool:
        """Queue a callback and return at once: True if queued, False if dropped. Call it from
        the event loop; the request is made as `WebhookClient.fetch` makes it."""
        method = method.upper()
        if method not in ("GET", "POST") or (json_body is not None and (params or method == "GET")):
            raise ValueError("a callback is a GET or POST with form parameters, or a POST with a JSON body")
        if self._closing:
            self._drop("the sender is closing")
            return False
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(), name=f"status-callbacks-{i}") for i in range(self._worker_count)
            ]
        try:
            self._queue.put_nowait(_Callback(url, method, params, json_body, signing_key))
        except asyncio.QueueFull:
            self._drop(f"{self._queue.maxsize} callbacks are waiting already")
            return False
        self._pending += 1
        return True

    def _drop(self, why: str) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._drop_logged_at >= 1.0:
            self._drop_logged_at = now
            log.warning("status callback dropped: %s (%d dropped so far)", why, self.dropped)

    async def _work(self) -> None:
        while True:
            callback = await self._queue.get()
            try:
                await self._deliver(callback)
            except Exception:  # a bug here must not stop every later callback
                log.exception("status callback to %s could not be sent", _host(callback.url))
            finally:
                self._pending -= 1
                self._queue.task_done()

    async def _deliver(self, callback: _Callback) -> None:
        result: Fetched | FetchFailed | None = None
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.backoff[attempt - 1])
            result = await self._client.fetch(
                callback.url,
                callback.method,
                callback.params,
                json_body=callback.json_body,
                signing_key=callback.signing_key,
            )
            if isinstance(result, Fetched):
                self.delivered += 1
                return
        self.failed += 1
        reason = result.reason if isinstance(result, FetchFailed) else "not sent"
        log.warning("status callback to %s failed after %d attempts: %s", _host(callback.url), self.attempts, reason)

    async def aclose(self, timeout: float = 3.0) -> None:
        """Stop taking callbacks, give the queued ones up to `timeout` seconds, then stop."""
        self._closing = True
        if not self._workers:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)
        left = self._pending
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if left:
            log.warning("%d status callbacks not delivered: the server is stopping", left)
