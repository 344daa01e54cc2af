"""LamlSession: documents and call outcomes in, the engine's actions out (Twilio/SignalWire semantics)."""

from __future__ import annotations

import pytest

from sipline.handlers.actions import (
    Dial,
    DialResult,
    DialStatus,
    DocumentError,
    Fetch,
    Finished,
    Hangup,
    Pause,
    Reject,
    Session,
    Target,
)
from sipline.laml import MAX_FETCHES_IN_A_ROW, LamlSession
from tests.laml.helpers import document

ALICE = Target("sip:alice@example.com")
ANSWERED = DialResult(
    status="completed",
    sip_status=200,
    call_sid="CA-leg",
    sip_call_id="abc@10.0.0.1",
    duration=42,
    sip_headers=(("X-Account", "7"), ("X-Region", "eu")),
)
BUSY = DialResult(status="busy", sip_status=486, call_sid="CA-leg", sip_call_id="def@10.0.0.1")


def begin(xml: str) -> tuple[LamlSession, object]:
    session = LamlSession()
    return session, session.begin(document(xml))


def test_a_laml_session_is_a_session():
    session: Session = LamlSession()
    assert session.begin(document("<Response/>")) == Finished(None)


def test_an_empty_document_is_finished_at_once():
    assert begin("<Response/>")[1] == Finished(None)


def test_hangup():
    assert begin("<Response><Hangup/><Dial>100</Dial></Response>")[1] == Hangup()


@pytest.mark.parametrize(("reason", "status"), [("", 603), (' reason="rejected"', 603), (' reason="busy"', 486)])
def test_reject_is_603_or_486_for_busy(reason, status):
    assert begin(f"<Response><Reject{reason}/></Response>")[1] == Reject(status)


def test_redirect_fetches_its_url_by_post():
    assert begin("<Response><Redirect>next</Redirect><Hangup/></Response>")[1] == Fetch(
        "https://app.example.com/voice/next", "POST"
    )


def test_redirect_by_get():
    _, action = begin('<Response><Redirect method="GET">https://x.example/n</Redirect></Response>')
    assert action == Fetch("https://x.example/n", "GET")


def test_pause_then_the_next_verb():
    session, action = begin('<Response><Pause length="3"/><Hangup/></Response>')
    assert action == Pause(3.0)
    assert session.resume(None) == Hangup()


def test_pause_at_the_end_finishes():
    session, _ = begin("<Response><Pause/></Response>")
    assert session.resume(None) == Finished(None)


def test_dial_attributes_become_the_dial_action():
    _, action = begin(
        '<Response><Dial timeout="12" callerId="+15550001111" callerName="Front Desk" timeLimit="600"'
        ' answerOnBridge="true"><Sip>sip:alice@example.com</Sip></Dial></Response>'
    )
    assert action == Dial(
        targets=(ALICE,),
        timeout=12.0,
        caller_id="+15550001111",
        caller_name="Front Desk",
        time_limit=600.0,
        headers=(),
    )


def test_dial_defaults_become_the_dial_action_defaults():
    assert begin("<Response><Dial>100</Dial></Response>")[1] == Dial(targets=(Target("100", kind="number"),))


def test_dial_without_action_goes_on_with_the_next_verb():
    session, _ = begin("<Response><Dial>100</Dial><Hangup/></Response>")
    assert session.resume(BUSY) == Hangup()


def test_dial_without_action_at_the_end_finishes_with_its_result():
    session, _ = begin("<Response><Dial>100</Dial></Response>")
    assert session.resume(BUSY) == Finished(BUSY)


def test_dial_action_is_fetched_with_every_dial_parameter_for_sip():
    session, _ = begin(
        '<Response><Dial action="/after" method="GET"><Sip>sip:alice@example.com</Sip></Dial><Hangup/></Response>'
    )
    assert session.resume(ANSWERED) == Fetch(
        "https://app.example.com/after",
        "GET",
        (
            ("DialCallStatus", "completed"),
            ("DialCallSid", "CA-leg"),
            ("DialCallDuration", "42"),
            ("DialSipCallId", "abc@10.0.0.1"),
            ("DialSipResponseCode", "200"),
            ("DialSipHeader_X-Account", "7"),
            ("DialSipHeader_X-Region", "eu"),
        ),
    )


def test_dial_action_for_numbers_has_no_sip_parameters():
    session, _ = begin('<Response><Dial action="/after"><Number>100</Number></Dial></Response>')
    assert session.resume(ANSWERED) == Fetch(
        "https://app.example.com/after",
        "POST",
        (("DialCallStatus", "completed"), ("DialCallSid", "CA-leg"), ("DialCallDuration", "42")),
    )


def test_dial_parameters_that_are_unknown_are_left_out():
    session, _ = begin('<Response><Dial action="/after"><Sip>sip:a@example.com</Sip></Dial></Response>')
    assert session.resume(DialResult(status="failed")) == Fetch(
        "https://app.example.com/after", "POST", (("DialCallStatus", "failed"), ("DialCallDuration", "0"))
    )


@pytest.mark.parametrize("status", ["completed", "answered", "busy", "no-answer", "failed", "canceled"])
def test_every_dial_status_reaches_the_action(status: DialStatus):
    session, _ = begin('<Response><Dial action="/after">100</Dial></Response>')
    fetch = session.resume(DialResult(status=status))
    assert isinstance(fetch, Fetch) and ("DialCallStatus", status) in fetch.params


def test_verbs_after_a_dial_with_action_are_never_reached():
    session, _ = begin('<Response><Dial action="/after">100</Dial><Hangup/></Response>')
    assert isinstance(session.resume(BUSY), Fetch)
    assert session.begin(document('<Response><Reject reason="busy"/></Response>')) == Reject(486)


def test_the_action_document_runs_from_its_start():
    session, _ = begin('<Response><Dial action="/after">100</Dial></Response>')
    session.resume(BUSY)
    assert session.begin(document("<Response><Dial>200</Dial></Response>")) == Dial((Target("200", kind="number"),))
    assert session.resume(ANSWERED) == Finished(ANSWERED)


def test_an_empty_action_document_finishes_with_the_dials_result():
    session, _ = begin('<Response><Dial action="/after">100</Dial></Response>')
    session.resume(BUSY)
    assert session.begin(document("<Response/>")) == Finished(BUSY)


def test_when_the_caller_hung_up_without_action_the_session_finishes():
    session, _ = begin("<Response><Dial>100</Dial><Dial>200</Dial><Hangup/></Response>")
    gone = DialResult(status="canceled", caller_hung_up=True)
    assert session.resume(gone) == Finished(gone)


@pytest.mark.parametrize(
    "next_document",
    ["<Response><Dial>200</Dial></Response>", "<Response><Redirect>/again</Redirect></Response>", "<Response/>"],
)
def test_when_the_caller_hung_up_the_action_is_still_requested_but_not_run(next_document):
    session, _ = begin('<Response><Dial action="/after"><Sip>sip:alice@example.com</Sip></Dial></Response>')
    gone = DialResult(status="completed", call_sid="CA-leg", duration=5, caller_hung_up=True)
    fetch = session.resume(gone)
    assert isinstance(fetch, Fetch) and fetch.url == "https://app.example.com/after"
    assert session.begin(document(next_document)) == Finished(gone)


def test_when_the_caller_hung_up_a_failed_action_fetch_still_finishes():
    session, _ = begin('<Response><Dial action="/after">100</Dial></Response>')
    gone = DialResult(status="no-answer", caller_hung_up=True)
    session.resume(gone)
    assert session.begin(DocumentError(11200, "fetch failed")) == Finished(gone)


def test_a_document_error_handed_to_begin_comes_back():
    error = DocumentError(12100, "<Say> needs media")
    assert LamlSession().begin(error) is error


def test_something_that_is_not_a_document_is_a_document_error():
    action = LamlSession().begin({"version": "1.0.0"})
    assert action == DocumentError(12100, "not a LaML document: dict")


def test_a_fallback_document_runs_after_a_document_error():
    session = LamlSession()
    session.begin(DocumentError(12100, "bad"))
    assert session.begin(document("<Response><Hangup/></Response>")) == Hangup()


# -- loops -----------------------------------------------------------------------------------------

SELF_REDIRECT = "<Response><Redirect>/loop</Redirect></Response>"


def test_redirects_in_a_row_are_bounded():
    session = LamlSession()
    loop = document(SELF_REDIRECT)
    for _ in range(MAX_FETCHES_IN_A_ROW):
        assert session.begin(loop) == Fetch("https://app.example.com/loop")
    stopped = session.begin(loop)
    assert isinstance(stopped, DocumentError) and stopped.code == 12100
    assert stopped.message == (
        f"more than {MAX_FETCHES_IN_A_ROW} Redirects in a row with no Dial or Pause between them:"
        " the documents loop (last: https://app.example.com/loop)"
    )
    assert stopped.details == {"url": "https://app.example.com/loop", "limit": str(MAX_FETCHES_IN_A_ROW)}


def test_ten_redirects_in_a_row_are_allowed_then_a_dial_runs():
    session = LamlSession()
    for _ in range(MAX_FETCHES_IN_A_ROW):
        session.begin(document(SELF_REDIRECT))
    assert isinstance(session.begin(document("<Response><Dial>100</Dial></Response>")), Dial)


@pytest.mark.parametrize("between", ["<Pause/>", "<Dial>100</Dial>"])
def test_a_dial_or_pause_between_redirects_starts_the_count_again(between):
    session = LamlSession()
    looping = document(f"<Response>{between}<Redirect>/loop</Redirect></Response>")
    for _ in range(3 * MAX_FETCHES_IN_A_ROW):
        session.begin(looping)
        assert isinstance(session.resume(BUSY if "Dial" in between else None), Fetch)


def test_dial_actions_count_as_fetches_but_each_follows_a_dial():
    session = LamlSession()
    dialling = document('<Response><Dial action="/again">100</Dial></Response>')
    for _ in range(3 * MAX_FETCHES_IN_A_ROW):
        assert isinstance(session.begin(dialling), Dial)
        assert isinstance(session.resume(BUSY), Fetch)


# -- misuse by the engine --------------------------------------------------------------------------


def test_resume_without_a_dial_or_pause_under_way_is_a_programming_error():
    session, _ = begin("<Response><Redirect>/x</Redirect></Response>")
    with pytest.raises(RuntimeError, match="no Dial or Pause under way"):
        session.resume(None)


def test_a_dial_resumed_without_its_result_is_a_programming_error():
    session, _ = begin("<Response><Dial>100</Dial></Response>")
    with pytest.raises(TypeError, match="DialResult"):
        session.resume(None)
