"""What a call handler's document asks of a call, and what comes back.

The vocabulary between the pure interpreters (`sipline.laml`, `sipline.swml`: document and call
events in, actions out) and the engine that carries the actions out (`sipline.sipserver.calls`).
An interpreter is a `Session`: `begin(document)` runs a document from its start, `resume(outcome)`
goes on after an action that has an outcome (a Dial's result; None after a Pause); each returns
the next action. Nothing here does I/O or reads a clock.

    action = session.begin(document)
    while True:
        Dial     -> result = <ring the targets>;        action = session.resume(result)
        Pause    -> <wait>;                             action = session.resume(None)
        Fetch    -> document = <fetch and parse it>;    action = session.begin(document)
        Hangup, Reject, Finished -> the call ends
        DocumentError -> the fallback document (LaML), else the call ends with a SIP error
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

DialStatus = Literal["completed", "answered", "busy", "no-answer", "failed", "canceled"]
CallbackEvent = Literal["initiated", "ringing", "answered", "completed"]


@dataclass(frozen=True)
class Callback:
    """Where to report a dialled leg's progress (LaML <Sip statusCallback>, SWML call_state_url)."""

    url: str
    method: str = "POST"  # GET: query string; POST: form (LaML) or JSON (SWML, `json` True)
    events: frozenset[CallbackEvent] = frozenset({"completed"})
    json: bool = False


@dataclass(frozen=True)
class Target:
    """One party a Dial rings: a SIP URI (an endpoint of this installation, or a remote server) or
    a number (the endpoint of the caller's project whose username is that number)."""

    uri: str  # "sip:alice@acme.sip.example.com;transport=tcp", or "+15551230000" for a number
    kind: Literal["sip", "number"] = "sip"
    username: str | None = None  # digest credentials toward a remote server that challenges
    password: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # extra SIP headers on the INVITE (X-...)
    codecs: tuple[str, ...] = ()  # further restricts the codecs offered (API names), when given
    callback: Callback | None = None


@dataclass(frozen=True)
class Dial:
    """Ring every target at once; the first to answer is bridged to the caller (serial dialling is
    a sequence of Dials). The caller is answered when a target answers (answer-on-bridge: sipline
    has no media of its own to answer with)."""

    targets: tuple[Target, ...]
    timeout: float = 30.0  # seconds of ringing before "no-answer"
    caller_id: str | None = None  # the From user part the callee sees; None: the caller's own
    caller_name: str | None = None  # the From display name; None: the caller's own caller_id
    time_limit: float = 14400.0  # the longest the bridged call may last
    headers: tuple[tuple[str, str], ...] = ()  # extra SIP headers for every target


@dataclass(frozen=True)
class DialResult:
    """How a Dial ended (LaML's DialCallStatus and Dial* parameters, SWML's connect_result)."""

    status: DialStatus  # completed: answered, bridged, then hung up
    sip_status: int | None = None  # the final SIP response of the leg that decided it
    call_sid: str | None = None  # that leg's Call sid
    sip_call_id: str | None = None  # that leg's SIP Call-ID
    duration: int = 0  # seconds the bridge lasted
    sip_headers: tuple[tuple[str, str], ...] = ()  # X- headers of that leg's final response
    caller_hung_up: bool = False  # the caller left: nothing the document says can reach it now


@dataclass(frozen=True)
class Pause:
    seconds: float


@dataclass(frozen=True)
class Fetch:
    """Get the next document from `url` (a LaML <Redirect> or <Dial action>, an SWML transfer);
    `params` are added to the request's standard parameters."""

    url: str
    method: str = "POST"
    params: tuple[tuple[str, str], ...] = ()
    json: bool = False  # SWML: POST a JSON body instead of a form


@dataclass(frozen=True)
class Hangup:
    """End the call (SWML reason hangup | busy | decline picks the SIP response when the caller
    was never answered: 480 | 486 | 603)."""

    reason: Literal["hangup", "busy", "decline"] = "hangup"


@dataclass(frozen=True)
class Reject:
    """Refuse the call, never answered: 486 for busy, 603 for rejected."""

    status: int


@dataclass(frozen=True)
class Finished:
    """The document ran out of instructions: the call ends. A caller never answered gets the SIP
    response that matches the last Dial's result (busy 486, no-answer 480, failed 480...)."""

    last: DialResult | None = None


@dataclass(frozen=True)
class DocumentError:
    """The document cannot be run: a parse error, a verb that needs media, a bad attribute
    (SignalWire/Twilio error 12100, or 11200 for a failed fetch), in words a developer can act on."""

    code: int
    message: str
    details: dict[str, str] = field(default_factory=dict)


Action = Dial | Pause | Fetch | Hangup | Reject | Finished | DocumentError


class Session(Protocol):
    def begin(self, document: object) -> Action: ...

    def resume(self, outcome: DialResult | None) -> Action: ...
