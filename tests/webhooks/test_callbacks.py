"""Status callbacks: queued at once, delivered in the background, retried, bounded, logged safely."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator

import pytest
from twilio.request_validator import RequestValidator

from sipline.webhooks import Callbacks, WebhookClient, status_params
from tests.webhooks.http_server import WebhookServer

KEY = "PSK_0123456789abcdef0123456789abcdef01234567"
FAST = (0.05, 0.1)  # the backoff in these tests; production waits 1 s, then 2 s


def _params(**changes: object) -> dict[str, str]:
    values: dict = {
        "account_sid": "5f1d7a1e-0000-4000-8000-000000000001",
        "call_sid": "CA" + "0" * 32,
        "call_status": "ringing",
        "direction": "inbound",
        "from_address": "sip:alice@acme.sip.localhost",
        "to_address": "sip:bob@acme.sip.localhost",
        "timestamp": 1796017446.0,
        "sequence_number": 0,
    }
    return status_params(**{**values, **changes})


@pytest.fixture
async def callbacks(webhook_client: WebhookClient) -> AsyncIterator[Callbacks]:
    sender = Callbacks(webhook_client, backoff=FAST)
    yield sender
    await sender.aclose()


# --- the parameters ------------------------------------------------------------------------


def test_status_params_carry_the_contracts_fields() -> None:
    assert _params() == {
        "AccountSid": "5f1d7a1e-0000-4000-8000-000000000001",
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + "0" * 32,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": "sip:alice@acme.sip.localhost",
        "To": "sip:bob@acme.sip.localhost",
        "Timestamp": "Mon, 30 Nov 2026 05:44:06 +0000",
        "SequenceNumber": "0",
    }


def test_call_duration_is_sent_on_completed_only() -> None:
    assert "CallDuration" not in _params(call_status="in-progress", call_duration=12)
    assert _params(call_status="completed", call_duration=12)["CallDuration"] == "12"
    assert _params(call_status="completed")["CallDuration"] == "0"


def test_optional_fields_appear_when_known() -> None:
    params = _params(call_status="busy", parent_call_sid="CA" + "1" * 32, sip_result_code=486, sequence_number=3)
    assert (params["ParentCallSid"], params["SipResultCode"], params["SequenceNumber"]) == ("CA" + "1" * 32, "486", "3")
    assert not {"ParentCallSid", "SipResultCode"} & set(_params())


@pytest.mark.parametrize("change", [{"call_status": "answered"}, {"direction": "outbound-dial"}])
def test_values_outside_the_vocabulary_are_refused(change: dict) -> None:
    with pytest.raises(ValueError):
        _params(**change)


@pytest.mark.parametrize("status", ["initiated", "queued", "failed", "no-answer", "canceled"])
def test_every_callback_status_is_accepted(status: str) -> None:
    assert _params(call_status=status)["CallStatus"] == status


# --- delivery ------------------------------------------------------------------------------


async def test_send_returns_at_once_and_the_callback_arrives_signed(
    server: WebhookServer, callbacks: Callbacks
) -> None:
    server.respond("/status", status=204, delay=1.0)  # a slow server does not slow the caller
    started = time.monotonic()
    assert callbacks.send(server.url("/status"), "POST", _params(), signing_key=KEY) is True
    assert time.monotonic() - started < 0.05
    [request] = await server.arrived(1, "/status")
    assert request.form == _params()
    assert RequestValidator(KEY).validate(request.url, request.form, request.headers["x-twilio-signature"])
    await callbacks.aclose()
    assert (callbacks.delivered, callbacks.failed) == (1, 0)


async def test_get_callbacks_send_the_parameters_in_the_query(server: WebhookServer, callbacks: Callbacks) -> None:
    server.respond("/status")
    callbacks.send(server.url("/status"), "GET", _params())
    [request] = await server.arrived(1, "/status")
    assert request.method == "GET" and request.query == _params()


async def test_json_callbacks_post_json(server: WebhookServer, callbacks: Callbacks) -> None:
    server.respond("/state")
    callbacks.send(server.url("/state"), "POST", json_body={"call_state": "ended"}, signing_key=KEY)
    [request] = await server.arrived(1, "/state")
    assert request.json == {"call_state": "ended"} and "x-signalwire-signature" in request.headers


async def test_a_failing_callback_is_tried_3_times_with_backoff_then_given_up(
    server: WebhookServer, callbacks: Callbacks
) -> None:
    server.respond("/status", status=500)
    callbacks.send(server.url("/status"), "POST", _params())
    await callbacks.aclose(timeout=5)  # drains: returns once the callback is given up
    attempts = server.requests_to("/status")
    assert len(attempts) == 3
    gaps = [b.at - a.at for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= FAST[0] and gaps[1] >= FAST[1]
    assert (callbacks.delivered, callbacks.failed) == (0, 1)


async def test_a_callback_acknowledged_on_the_second_attempt_is_not_sent_again(
    server: WebhookServer, callbacks: Callbacks
) -> None:
    server.respond("/status", status=204)
    server.respond("/status", status=503, times=1)
    callbacks.send(server.url("/status"), "POST", _params())
    await callbacks.aclose(timeout=5)
    assert [r.path for r in server.requests] == ["/status", "/status"]
    assert (callbacks.delivered, callbacks.failed) == (1, 0)


async def test_timeouts_count_as_failed_attempts(server: WebhookServer, callbacks: Callbacks) -> None:
    server.respond("/status", delay=2.0)
    callbacks.send(server.url("/status#rt=100"), "POST", _params())
    await callbacks.aclose(timeout=5)
    assert len(server.requests_to("/status")) == 3 and callbacks.failed == 1


def test_production_tries_3_times_1_then_2_seconds_apart(webhook_client: WebhookClient) -> None:
    sender = Callbacks(webhook_client)
    assert (sender.attempts, sender.backoff) == (3, (1.0, 2.0))


async def test_a_given_up_callback_is_logged_once_with_the_host_alone(
    server: WebhookServer, callbacks: Callbacks, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond("/private/status", status=500)
    caplog.set_level(logging.WARNING, logger="sipline.webhooks")
    callbacks.send(server.url("/private/status?token=hunter2"), "POST", _params(), signing_key=KEY)
    await callbacks.aclose(timeout=5)
    [record] = [r for r in caplog.records if r.name == "sipline.webhooks"]
    message = record.getMessage()
    assert record.levelno == logging.WARNING and "127.0.0.1" in message and "3 attempts" in message
    for secret in ("hunter2", "/private", KEY, "CallSid", str(server.port)):
        assert secret not in message


async def test_callbacks_are_delivered_concurrently(server: WebhookServer, callbacks: Callbacks) -> None:
    server.respond("/slow", delay=0.5)
    started = time.monotonic()
    for i in range(8):
        callbacks.send(server.url(f"/slow?n={i}"), "GET")
    await server.arrived(8, "/slow")  # all 8 are in flight before the first answer
    assert time.monotonic() - started < 0.5
    await callbacks.aclose()
    assert callbacks.delivered == 8


# --- bounds and shutdown -------------------------------------------------------------------


async def test_a_full_queue_drops_and_counts_and_logs_once(
    server: WebhookServer, webhook_client: WebhookClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond("/status")
    caplog.set_level(logging.WARNING, logger="sipline.webhooks")
    sender = Callbacks(webhook_client, max_pending=2, workers=1, backoff=FAST)
    try:
        queued = [sender.send(server.url("/status"), "POST", _params(sequence_number=i)) for i in range(5)]
    finally:
        await sender.aclose()
    assert queued == [True, True, False, False, False]
    assert (sender.dropped, sender.delivered) == (3, 2)
    assert [r.form["SequenceNumber"] for r in server.requests] == ["0", "1"]
    drops = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(drops) == 1 and drops[0].levelno == logging.WARNING


async def test_aclose_drains_what_is_queued(server: WebhookServer, webhook_client: WebhookClient) -> None:
    server.respond("/status", delay=0.1)
    sender = Callbacks(webhook_client, workers=2, backoff=FAST)
    for i in range(6):
        sender.send(server.url("/status"), "POST", _params(sequence_number=i))
    await sender.aclose(timeout=5)
    assert sender.delivered == 6 and len(server.requests) == 6
    assert sender.send(server.url("/status"), "POST", _params()) is False  # closed: dropped
    assert sender.dropped == 1


async def test_aclose_gives_up_after_its_timeout(
    server: WebhookServer, webhook_client: WebhookClient, caplog: pytest.LogCaptureFixture
) -> None:
    server.respond("/stuck", delay=10.0)
    caplog.set_level(logging.WARNING, logger="sipline.webhooks")
    sender = Callbacks(webhook_client, backoff=FAST)
    sender.send(server.url("/stuck#rt=15000&tt=15000"), "POST", _params())
    await server.arrived(1, "/stuck")
    started = time.monotonic()
    await sender.aclose(timeout=0.2)
    assert time.monotonic() - started < 1.0
    assert any("1 status callbacks not delivered" in r.getMessage() for r in caplog.records)


async def test_a_callers_mistake_raises_at_send(callbacks: Callbacks) -> None:
    with pytest.raises(ValueError):
        callbacks.send("http://127.0.0.1:9/", "PUT", _params())
    with pytest.raises(ValueError):
        callbacks.send("http://127.0.0.1:9/", "POST", _params(), json_body={"a": 1})
