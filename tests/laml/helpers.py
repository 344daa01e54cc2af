"""Parsing shortcuts for the LaML tests: a document that must parse, or the error it must give."""

from __future__ import annotations

from sipline.handlers.actions import DocumentError
from sipline.laml import DialVerb, Document, parse

BASE = "https://app.example.com/voice/start?step=1"


def document(xml: str, base_url: str = BASE) -> Document:
    result = parse(xml.encode(), "text/xml", base_url)
    assert isinstance(result, Document), result
    return result


def error(xml: str | bytes, content_type: str | None = "text/xml") -> DocumentError:
    body = xml.encode() if isinstance(xml, str) else xml
    result = parse(body, content_type, BASE)
    assert isinstance(result, DocumentError), result
    assert result.code == 12100
    return result


def dial(inner: str, attributes: str = "") -> DialVerb:
    verbs = document(f"<Response><Dial {attributes}>{inner}</Dial></Response>").verbs
    assert len(verbs) == 1 and isinstance(verbs[0], DialVerb)
    return verbs[0]
