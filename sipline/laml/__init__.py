"""LaML (cXML, TwiML) call handlers: parse a voice document, then run it as a `Session`.

Pure: no I/O, no clock. `parse` turns the bytes a `call_request_url` returned into a `Document` (or
a `DocumentError`, code 12100); a `LamlSession` turns documents and call outcomes into the actions
of `sipline.handlers.actions` that the call engine carries out.
"""

from sipline.laml.document import (
    MAX_BODY_BYTES,
    MAX_DEPTH,
    MAX_TARGETS,
    DialVerb,
    Document,
    HangupVerb,
    PauseVerb,
    RedirectVerb,
    RejectVerb,
    Verb,
    parse,
)
from sipline.laml.interpreter import MAX_FETCHES_IN_A_ROW, LamlSession

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "MAX_FETCHES_IN_A_ROW",
    "MAX_TARGETS",
    "DialVerb",
    "Document",
    "HangupVerb",
    "LamlSession",
    "PauseVerb",
    "RedirectVerb",
    "RejectVerb",
    "Verb",
    "parse",
]
