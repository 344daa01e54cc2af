"""LaML (cXML, TwiML) call handlers: parse a voice document.

Pure: no I/O, no clock. `parse` turns the bytes a `call_request_url` returned into a `Document` (or
a `DocumentError`, code 12100).
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

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "MAX_TARGETS",
    "DialVerb",
    "Document",
    "HangupVerb",
    "PauseVerb",
    "RedirectVerb",
    "RejectVerb",
    "Verb",
    "parse",
]
