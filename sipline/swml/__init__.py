"""SWML (SignalWire Markup Language) call handlers: parse a document, run it for a call.

Pure: no I/O, no clock. `parse()` turns the fetched bytes into a `Document` (or a `DocumentError`);
a `SwmlSession` runs documents for one call, answering with the actions of
`sipline.handlers.actions`; `request_body()` is the JSON POSTed to fetch a document.
"""

from sipline.swml.document import Document, parse
from sipline.swml.interpreter import CallInfo, SipData, SwmlSession, call_object, request_body

__all__ = ["CallInfo", "Document", "SipData", "SwmlSession", "call_object", "parse", "request_body"]
