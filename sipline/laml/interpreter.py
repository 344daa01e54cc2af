"""Running a LaML document: verbs in order, each turned into one action for the call engine.

Twilio/SignalWire semantics. A <Dial> with `action` hands the call to the document its action URL
returns (the verbs after it are never reached), with DialCallStatus, DialCallSid, DialCallDuration
and, for <Sip>, DialSipCallId, DialSipResponseCode and DialSipHeader_<name>; without `action` the
next verb runs. When the caller hung up during the Dial, the action URL is still requested (apps
count on it) but whatever comes back is not run: the session is Finished. Running off the end of a
document is Finished with the last Dial's result, which picks the SIP response of a caller never
answered.

A document that only redirects can loop forever without costing the caller anything but time: more
than MAX_FETCHES_IN_A_ROW fetches (Redirects; a Dial action always follows a Dial) with no Dial or
Pause between them is a DocumentError.
"""

from __future__ import annotations

from sipline.handlers.actions import (
    Action,
    Dial,
    DialResult,
    DocumentError,
    Fetch,
    Finished,
    Hangup,
    Pause,
    Reject,
)
from sipline.laml.document import (
    PARSE_FAILURE,
    DialVerb,
    Document,
    HangupVerb,
    PauseVerb,
    RedirectVerb,
    RejectVerb,
    Verb,
)

MAX_FETCHES_IN_A_ROW = 10
REJECT_STATUS = {"busy": 486, "rejected": 603}


class LamlSession:
    """One call's run through its LaML documents (the `Session` protocol of actions.py).

    `begin(document)` takes what `parse` returned (a Document, or a DocumentError, handed back
    as is); `resume(outcome)` goes on after a Dial (its DialResult) or a Pause (None).
    """

    def __init__(self) -> None:
        self._verbs: tuple[Verb, ...] = ()
        self._next = 0
        self._waiting_on: DialVerb | PauseVerb | None = None
        self._last: DialResult | None = None
        self._fetches_in_a_row = 0
        self._caller_gone = False

    def begin(self, document: object) -> Action:
        self._waiting_on = None
        if self._caller_gone:  # the document a Dial action returned after the caller hung up
            return Finished(self._last)
        if isinstance(document, DocumentError):
            return document
        if not isinstance(document, Document):
            return DocumentError(PARSE_FAILURE, f"not a LaML document: {type(document).__name__}")
        self._verbs, self._next = document.verbs, 0
        return self._step()

    def resume(self, outcome: DialResult | None) -> Action:
        waiting_on, self._waiting_on = self._waiting_on, None
        if isinstance(waiting_on, PauseVerb):
            return self._step()
        if isinstance(waiting_on, DialVerb):
            if not isinstance(outcome, DialResult):
                raise TypeError(f"a Dial resumes with its DialResult, not {type(outcome).__name__}")
            self._last = outcome
            return self._after_dial(waiting_on, outcome)
        raise RuntimeError("resume() with no Dial or Pause under way: begin() takes a fetched document")

    def _step(self) -> Action:
        if self._next >= len(self._verbs):
            return Finished(self._last)
        verb = self._verbs[self._next]
        self._next += 1
        if isinstance(verb, DialVerb):
            self._fetches_in_a_row = 0
            self._waiting_on = verb
            return Dial(
                targets=verb.targets,
                timeout=float(verb.timeout),
                caller_id=verb.caller_id,
                caller_name=verb.caller_name,
                time_limit=float(verb.time_limit),
            )
        if isinstance(verb, PauseVerb):
            self._fetches_in_a_row = 0
            self._waiting_on = verb
            return Pause(float(verb.length))
        if isinstance(verb, RedirectVerb):
            return self._fetch(Fetch(verb.url, verb.method))
        if isinstance(verb, RejectVerb):
            return Reject(REJECT_STATUS[verb.reason])
        assert isinstance(verb, HangupVerb)
        return Hangup()

    def _after_dial(self, dial: DialVerb, result: DialResult) -> Action:
        if dial.action is None:
            return Finished(result) if result.caller_hung_up else self._step()
        self._caller_gone = result.caller_hung_up
        return self._fetch(Fetch(dial.action, dial.method, dial_params(dial, result)))

    def _fetch(self, fetch: Fetch) -> Action:
        self._fetches_in_a_row += 1
        if self._fetches_in_a_row > MAX_FETCHES_IN_A_ROW:
            return DocumentError(
                PARSE_FAILURE,
                f"more than {MAX_FETCHES_IN_A_ROW} Redirects in a row with no Dial or Pause between them:"
                f" the documents loop (last: {fetch.url})",
                {"url": fetch.url, "limit": str(MAX_FETCHES_IN_A_ROW)},
            )
        return fetch


def dial_params(dial: DialVerb, result: DialResult) -> tuple[tuple[str, str], ...]:
    """The Dial* parameters of a Dial's action request (dial.mdx, sip-noun.mdx); absent values are left out."""
    params: list[tuple[str, str]] = [("DialCallStatus", result.status)]
    if result.call_sid is not None:
        params.append(("DialCallSid", result.call_sid))
    params.append(("DialCallDuration", str(result.duration)))
    if dial.dials_sip:
        if result.sip_call_id is not None:
            params.append(("DialSipCallId", result.sip_call_id))
        if result.sip_status is not None:
            params.append(("DialSipResponseCode", str(result.sip_status)))
        params += [(f"DialSipHeader_{name}", value) for name, value in result.sip_headers]
    return tuple(params)
