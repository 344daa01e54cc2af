"""A LaML (cXML, TwiML) voice document: bytes in, an immutable tree of checked verbs out.

`parse` never raises: anything it cannot run comes back as a `DocumentError` (code 12100) whose
message names the verb, the attribute and what is allowed, e.g.

    <Dial> timeout="3": must be a whole number from 5 to 600 (seconds)
    <Say> needs media (audio to or from the caller), which sipline does not support yet

The XML is untrusted: no DTD, no entity declarations, no external references (defusedxml), at
most 64 KiB and 16 levels of elements, served as text/xml, application/xml, text/html (Twilio
reads all three as TwiML) or with no content type. What is kept is only what sipline can do without media of
its own: <Dial> with <Sip> or <Number> nouns (or a bare number), <Hangup>, <Reject>, <Redirect>,
<Pause>. Attribute names and verbs are case-sensitive, as in TwiML; attribute *values* that are
keywords (GET, true, busy...) are not. Attributes sipline does not know are ignored (TwiML adds
attributes over time; Twilio only warns about unknown ones); known attributes that need media or a
feature sipline lacks are refused rather than silently dropped. URLs (Dial action, Redirect,
statusCallback) are resolved against the document's own URL, so relative ones work.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, NoReturn, cast
from urllib.parse import unquote, urljoin, urlsplit
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

from sipline.handlers.actions import Callback, CallbackEvent, DocumentError, Target

PARSE_FAILURE = 12100  # SignalWire/Twilio: "Document parse failure"
MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 16  # <Response><Dial><Sip> is 3; deeper is never a voice document
MAX_TARGETS = 10  # nouns per <Dial> (sip-noun.mdx, number-noun.mdx)
MAX_SIP_URI = 255  # Twilio: "a valid SIP URI under 255 characters"
MAX_SIP_HEADERS = 1024  # characters of ?headers on one <Sip> URI (ours, Twilio's figure)
XML_CONTENT_TYPES = frozenset({"text/xml", "application/xml", "text/html"})  # Twilio reads all three

Method = Literal["GET", "POST"]


@dataclass(frozen=True)
class DialVerb:
    """<Dial>: ring `targets` at once. All <Sip> or all numbers, never mixed (sip-noun.mdx)."""

    targets: tuple[Target, ...]
    action: str | None = None  # absolute URL; None: go on with the next verb
    method: Method = "POST"
    timeout: int = 30
    caller_id: str | None = None
    caller_name: str | None = None
    time_limit: int = 14400
    answer_on_bridge: bool = False  # sipline always answers on bridge; kept for the record

    @property
    def dials_sip(self) -> bool:
        return any(target.kind == "sip" for target in self.targets)


@dataclass(frozen=True)
class HangupVerb:
    pass


@dataclass(frozen=True)
class RejectVerb:
    reason: Literal["busy", "rejected"] = "rejected"


@dataclass(frozen=True)
class RedirectVerb:
    url: str  # absolute
    method: Method = "POST"


@dataclass(frozen=True)
class PauseVerb:
    length: int = 1


Verb = DialVerb | HangupVerb | RejectVerb | RedirectVerb | PauseVerb


@dataclass(frozen=True)
class Document:
    url: str  # where it came from: what relative URLs were resolved against
    verbs: tuple[Verb, ...] = ()


# -- what is refused, and why --------------------------------------------------------------------

_MEDIA = "needs media (audio to or from the caller), which sipline does not support yet"
_NOT_YET = "is not supported by sipline yet"
MEDIA_VERBS = frozenset(
    {"Say", "Play", "Gather", "Record", "Echo", "Stream", "Conference", "Enqueue", "Pay", "Queue", "Leave"}
    | {"Start", "Stop", "Connect", "Prompt", "Transcription", "Siprec"}
)
UNSUPPORTED_VERBS = frozenset({"Sms", "Message", "Refer", "Client", "Sim", "Application", "Verto"})
VERBS = frozenset({"Dial", "Hangup", "Reject", "Redirect", "Pause"})


class _Refused(Exception):
    """Carries the DocumentError out of the checks: raised once per document, caught in `parse`."""

    def __init__(self, message: str, **details: str) -> None:
        super().__init__(message)
        self.error = DocumentError(PARSE_FAILURE, message, details)


def _refuse(message: str, **details: str) -> NoReturn:
    raise _Refused(message, **details)


def _shown(value: str) -> str:
    """A value quoted in a message: control characters masked, long values cut."""
    value = _CONTROL.sub("?", value)
    return value if len(value) <= 64 else value[:61] + "..."


# -- parsing the bytes ---------------------------------------------------------------------------


def parse(body: bytes, content_type: str | None, base_url: str) -> Document | DocumentError:
    """The document in `body` (fetched from `base_url`, served as `content_type`), or why not."""
    try:
        _check_content_type(content_type)
        root = _xml(body)
        return Document(url=base_url, verbs=tuple(_verbs(root, base_url)))
    except _Refused as refused:
        return refused.error


def _check_content_type(content_type: str | None) -> None:
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "" or media_type in XML_CONTENT_TYPES:
        return
    shown = _shown(media_type)
    if media_type == "text/plain" or media_type.startswith("audio/"):
        _refuse(f'content type "{shown}": TwiML would say or play it, and that {_MEDIA}', content_type=shown)
    _refuse(f'content type "{shown}" is not a LaML document (text/xml or application/xml expected)', content_type=shown)


class _TooDeep(Exception):
    pass


class _DepthLimitedBuilder(TreeBuilder):
    """Refuses nesting as it is read, before any tree that deep exists."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0

    def start(self, tag: str, attrs: dict[str, str], /) -> Element:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _TooDeep
        return super().start(tag, attrs)

    def end(self, tag: str, /) -> Element:
        self._depth -= 1
        return super().end(tag)


def _xml(body: bytes) -> Element:
    if not isinstance(body, bytes | bytearray):
        _refuse(f"the document must be bytes, not {type(body).__name__}")
    if len(body) > MAX_BODY_BYTES:
        _refuse(f"the document is {len(body)} bytes, more than the {MAX_BODY_BYTES} allowed", limit=str(MAX_BODY_BYTES))
    if not body.strip():
        _refuse("the document is empty: an empty <Response/> ends the call, an empty body is an error")
    parser = DefusedXMLParser(
        target=_DepthLimitedBuilder(), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(bytes(body))
        return parser.close()
    except _TooDeep:
        _refuse(f"elements are nested more than {MAX_DEPTH} deep", limit=str(MAX_DEPTH))
    except DTDForbidden:
        _refuse("a DTD (<!DOCTYPE ...>) is not allowed in a LaML document")
    except EntitiesForbidden:
        _refuse("entity declarations (<!ENTITY ...>) are not allowed in a LaML document")
    except ExternalReferenceForbidden:
        _refuse("external references are not allowed in a LaML document")
    except (ParseError, DefusedXmlException) as e:
        _refuse(f"not well-formed XML: {e}")
    except Exception as e:  # the parser's other failures on hostile input (an unknown encoding...)
        _refuse(f"not well-formed XML: {type(e).__name__}: {_shown(str(e))}")


def _tag(element: Element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else "?"  # <Response xmlns=...> is fine


def _verbs(root: Element, base_url: str) -> Iterable[Verb]:
    if _tag(root) != "Response":
        _refuse(f"the root element must be <Response>, not <{_shown(_tag(root))}>")
    for element in root:
        name = _tag(element)
        read = _READERS.get(name)
        if read is None:
            _refuse(_unknown(name, "a LaML voice verb"), verb=_shown(name))
        yield read(_Attributes(name, element.attrib), element, base_url)


def _unknown(name: str, what: str) -> str:
    if name in MEDIA_VERBS:
        return f"<{name}> {_MEDIA}"
    if name in UNSUPPORTED_VERBS:
        return f"<{name}> {_NOT_YET}"
    known = {v.lower(): v for v in VERBS | MEDIA_VERBS | UNSUPPORTED_VERBS | {"Sip", "Number", "Response"}}
    hint = f" (names are case-sensitive: <{known[name.lower()]}>?)" if name.lower() in known else ""
    return f"<{_shown(name)}> is not {what}{hint}"


# -- attributes ------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WHOLE = re.compile(r"[0-9]{1,9}")


class _Attributes:
    """One element's attributes, read with the element's name at hand for messages."""

    def __init__(self, verb: str, attrib: Mapping[str, str]) -> None:
        self.verb = verb
        self._attrib = attrib

    def raw(self, name: str, strip: bool = True) -> str | None:
        value = self._attrib.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip() if strip else value

    def bad(self, name: str, value: str, rule: str, allowed: str) -> NoReturn:
        _refuse(
            f'<{self.verb}> {name}="{_shown(value)}": {rule}',
            verb=self.verb,
            attribute=name,
            value=_shown(value),
            allowed=allowed,
        )

    def whole(self, name: str, default: int, low: int, high: int, unit: str = "seconds") -> int:
        value = self.raw(name)
        if value is None:
            return default
        if not _WHOLE.fullmatch(value) or not low <= int(value) <= high:
            self.bad(name, value, f"must be a whole number from {low} to {high} ({unit})", f"{low}..{high}")
        return int(value)

    def choice(self, name: str, default: str, allowed: Iterable[str]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        options = tuple(allowed)
        for option in options:
            if value.lower() == option.lower():
                return option
        self.bad(name, value, "must be one of " + ", ".join(options), "|".join(options))

    def method(self, name: str = "method") -> Method:
        return cast(Method, self.choice(name, "POST", ("GET", "POST")))

    def flag(self, name: str, default: bool) -> bool:
        return self.choice(name, "true" if default else "false", ("true", "false")) == "true"

    def text(
        self, name: str, max_length: int, pattern: re.Pattern[str] | None = None, rule: str = "", strip: bool = True
    ) -> str | None:
        value = self.raw(name, strip)
        if value is None:
            return None
        if _CONTROL.search(value):
            self.bad(name, value, "must not contain control characters", "printable text")
        if len(value) > max_length:
            self.bad(name, value, f"is too long (at most {max_length} characters)", f"<= {max_length} characters")
        if pattern is not None and not pattern.fullmatch(value):
            self.bad(name, value, rule, pattern.pattern)
        return value

    def url(self, name: str, base_url: str) -> str | None:
        value = self.raw(name)
        return None if value is None else _absolute(value, base_url, lambda rule: self.bad(name, value, rule, "URL"))

    def refuse(self, names: Iterable[str], why: str) -> None:
        """Known attributes sipline cannot honour: present at all is an error."""
        for name in names:
            value = self.raw(name)
            if value is not None:
                self.bad(name, value, why, "absent")


def _absolute(value: str, base_url: str, bad: Callable[[str], NoReturn]) -> str:
    rule = "must be an absolute http(s) URL, or one relative to the document's URL"
    if re.search(r"[\s\x00-\x1f\x7f]", value):
        bad("must not contain spaces or control characters")
    try:
        written = urlsplit(value)
        url = value if written.scheme else urljoin(base_url, value)  # urljoin reads "https://" as relative
        parts = urlsplit(url)
    except ValueError:
        bad(rule)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        bad(rule)
    return url


# -- verbs -----------------------------------------------------------------------------------------


def _no_children(attributes: _Attributes, element: Element) -> None:
    for child in element:
        _refuse(f"<{attributes.verb}> cannot contain <{_shown(_tag(child))}>", verb=attributes.verb)


def _text(element: Element) -> str:
    return (element.text or "").strip()


def _hangup(attributes: _Attributes, element: Element, base_url: str) -> HangupVerb:
    _no_children(attributes, element)
    return HangupVerb()


def _reject(attributes: _Attributes, element: Element, base_url: str) -> RejectVerb:
    _no_children(attributes, element)
    reason = attributes.choice("reason", "rejected", ("rejected", "busy"))
    return RejectVerb(reason="busy" if reason == "busy" else "rejected")


def _redirect(attributes: _Attributes, element: Element, base_url: str) -> RedirectVerb:
    _no_children(attributes, element)
    method = attributes.method()
    target = _text(element)
    if not target:
        _refuse("<Redirect> needs a URL as its text: <Redirect>https://example.com/next</Redirect>", verb="Redirect")
    url = _absolute(target, base_url, lambda rule: _refuse(f'<Redirect> "{_shown(target)}": {rule}', verb="Redirect"))
    return RedirectVerb(url=url, method=method)


def _pause(attributes: _Attributes, element: Element, base_url: str) -> PauseVerb:
    _no_children(attributes, element)
    return PauseVerb(length=attributes.whole("length", 1, 1, 600))  # Twilio: integer > 0; 600 is ours


_RECORD_OFF = ("do-not-record", "false")
_RECORD_ON = (
    "record-from-answer",
    "record-from-ringing",
    "record-from-answer-dual",
    "record-from-ringing-dual",
    "true",
)
# Twilio for a SIP callerId: "any alphanumeric string ... +-_., but no whitespace".
_CALLER_ID = re.compile(r"[A-Za-z0-9+\-_.,]+")


def _dial(attributes: _Attributes, element: Element, base_url: str) -> DialVerb:
    record = attributes.raw("record")
    if record is not None and record.lower() not in _RECORD_OFF:
        if record.lower() in _RECORD_ON:
            attributes.bad("record", record, "recording " + _MEDIA, "do-not-record")
        attributes.bad("record", record, "must be one of " + ", ".join(_RECORD_OFF + _RECORD_ON), "do-not-record")
    attributes.refuse(["ringTone"], "a ring tone of sipline's own " + _MEDIA)
    if attributes.flag("hangupOnStar", False):
        attributes.bad("hangupOnStar", "true", "hanging up on * " + _MEDIA, "false")
    attributes.refuse(["referUrl"], "handling a REFER from the callee " + _NOT_YET)
    dial = DialVerb(
        targets=_targets(element, base_url),
        action=attributes.url("action", base_url),
        method=attributes.method(),
        timeout=attributes.whole("timeout", 30, 5, 600),
        caller_id=attributes.text(
            "callerId", 64, _CALLER_ID, "must be letters, digits and +-_., only (no spaces), like a SIP user"
        ),
        caller_name=attributes.text("callerName", 70),
        time_limit=attributes.whole("timeLimit", 14400, 1, 86400),  # Twilio's longest call: 24 h
        answer_on_bridge=attributes.flag("answerOnBridge", False),
    )
    return dial


def _targets(dial: Element, base_url: str) -> tuple[Target, ...]:
    nouns = list(dial)
    bare = _text(dial)
    if bare and nouns:
        _refuse("<Dial> holds either a bare number or nouns (<Sip>, <Number>), not both", verb="Dial")
    if any((noun.tail or "").strip() for noun in nouns):
        _refuse("<Dial> holds either a bare number or nouns (<Sip>, <Number>), not both", verb="Dial")
    if bare:
        return (Target(uri=_number(bare), kind="number"),)
    if not nouns:
        _refuse("<Dial> needs something to dial: a <Sip> URI, a <Number>, or a number as its text", verb="Dial")
    if len(nouns) > MAX_TARGETS:
        _refuse(f"<Dial> may ring at most {MAX_TARGETS} targets at once, not {len(nouns)}", verb="Dial")
    targets = []
    for noun in nouns:
        name = _tag(noun)
        if name not in ("Sip", "Number"):
            message = _unknown(name, "a noun of <Dial> (<Sip> or <Number>)")
            _refuse(f"<Dial>: {message}", verb="Dial", noun=_shown(name))
        attributes = _Attributes(name, noun.attrib)
        _no_children(attributes, noun)
        targets.append(_sip(attributes, noun, base_url) if name == "Sip" else _number_noun(attributes, noun, base_url))
    if len({target.kind for target in targets}) > 1:
        _refuse("<Dial> cannot mix <Sip> with other nouns (sip-noun: one kind per <Dial>)", verb="Dial")
    return tuple(targets)


_NUMBER_FORMATTING = re.compile(r"[\s\-.()]")
_NUMBER = re.compile(r"\+?[0-9]{1,20}")


def _number(text: str, verb: str = "Dial") -> str:
    """A number to dial, its formatting (spaces, -, ., parentheses) dropped: 123-456-7890 -> 1234567890."""
    number = _NUMBER_FORMATTING.sub("", text)
    if not _NUMBER.fullmatch(number):
        hint = " (a SIP URI goes in <Sip>)" if text.lower().startswith(("sip:", "sips:")) else ""
        _refuse(f'<{verb}> "{_shown(text)}" is not a phone number: digits, optionally after a +{hint}', verb=verb)
    return number


def _number_noun(attributes: _Attributes, noun: Element, base_url: str) -> Target:
    attributes.refuse(["sendDigits"], "sending digits " + _MEDIA)
    attributes.refuse(["machineDetection", "amdStatusCallback"], "answering machine detection " + _MEDIA)
    attributes.refuse(["url"], "a document for the callee before the bridge (whisper) " + _NOT_YET)
    attributes.method()
    text = _text(noun)
    if not text:
        _refuse("<Number> needs a number as its text: <Number>+15551230000</Number>", verb="Number")
    return Target(uri=_number(text, "Number"), kind="number", callback=_callback(attributes, base_url))


_CODECS = ("PCMU", "PCMA", "G722", "G729", "OPUS")  # sip-noun.mdx: "Select from ..."
_EVENTS: tuple[CallbackEvent, ...] = ("initiated", "ringing", "answered", "completed")


def _callback(attributes: _Attributes, base_url: str) -> Callback | None:
    url = attributes.url("statusCallback", base_url)
    method = attributes.method("statusCallbackMethod")
    events: list[CallbackEvent] = []
    listed = attributes.raw("statusCallbackEvent") or ""
    for word in re.split(r"[\s,]+", listed):
        if word:
            events.append(_event(attributes, word))
    if url is None:
        return None
    return Callback(url=url, method=method, events=frozenset(events) or frozenset({"completed"}))


def _event(attributes: _Attributes, word: str) -> CallbackEvent:
    for event in _EVENTS:
        if word.lower() == event:
            return event
    attributes.bad("statusCallbackEvent", word, "each event must be one of " + " ".join(_EVENTS), " ".join(_EVENTS))


def _sip(attributes: _Attributes, noun: Element, base_url: str) -> Target:
    attributes.refuse(["machineDetection", "amdStatusCallback"], "answering machine detection " + _MEDIA)
    attributes.refuse(["url"], "a document for the callee before the bridge (whisper) " + _NOT_YET)
    attributes.method()
    attributes.whole("sessionTimeout", 0, 0, 86400)  # checked; sipline keeps its own session timer
    username = attributes.text("username", 128, strip=False)  # credentials byte for byte
    password = attributes.text("password", 128, strip=False)
    if (username is None) != (password is None):
        _refuse("<Sip> username and password go together: give both or neither", verb="Sip")
    codecs: list[str] = []
    for word in (attributes.raw("codecs") or "").split(","):
        if word.strip():
            codec = _codec(attributes, word.strip())
            if codec not in codecs:
                codecs.append(codec)
    uri, headers = _sip_uri(_text(noun))
    return Target(
        uri=uri,
        kind="sip",
        username=username,
        password=password,
        headers=headers,
        codecs=tuple(codecs),
        callback=_callback(attributes, base_url),
    )


def _codec(attributes: _Attributes, word: str) -> str:
    if word.upper() in _CODECS:
        return word.upper()
    attributes.bad("codecs", word, "each codec must be one of " + ",".join(_CODECS), ",".join(_CODECS))


_SIP_URI = re.compile(r"(?P<scheme>sips?):(?P<user>[^@;?]+@)?(?P<host>[^@;?]+)(?P<params>;[^?]*)?", re.IGNORECASE)
_TOKEN = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")  # RFC 3261 token: a header name


def _sip_uri(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`sip:user@host;transport=tcp?X-A=1&X-B=2` -> ("sip:user@host;transport=tcp", (("X-A", "1"), ...))."""

    def bad(rule: str) -> NoReturn:
        _refuse(f'<Sip> "{_shown(text)}": {rule}', verb="Sip")

    if not text:
        bad("a SIP URI is needed as the text of <Sip>: <Sip>sip:alice@example.com</Sip>")
    if re.search(r"[\s\x00-\x1f\x7f]", text):
        bad("a SIP URI has no spaces or control characters")
    uri, _, query = text.partition("?")
    match = _SIP_URI.fullmatch(uri)
    if match is None:
        bad("must be a SIP URI: sip:user@host[:port][;transport=udp|tcp|tls][?X-Header=value]")
    if len(uri) > MAX_SIP_URI:
        bad(f"a SIP URI is at most {MAX_SIP_URI} characters")
    for param in (match["params"] or "").split(";"):
        name, _, value = param.partition("=")
        if name.lower() == "transport" and value.lower() not in ("udp", "tcp", "tls"):
            bad("transport must be udp, tcp or tls")
    uri = match["scheme"].lower() + uri[len(match["scheme"]) :]
    if len(query) > MAX_SIP_HEADERS:
        bad(f"the headers after ? are at most {MAX_SIP_HEADERS} characters")
    headers = []
    for pair in query.split("&") if query else ():
        raw_name, equals, raw_value = pair.partition("=")
        try:
            name, value = unquote(raw_name, errors="strict"), unquote(raw_value, errors="strict")
        except UnicodeDecodeError:
            bad("a header's %-escapes must decode to UTF-8")
        if not equals or not _TOKEN.fullmatch(name):
            bad(f'"{_shown(pair)}" is not a header: name=value, the name a SIP token')
        if not (name.lower().startswith("x-") or name.lower() == "user-to-user"):
            bad(f'only X- headers (and User-to-User) may be added to the INVITE, not "{_shown(name)}"')
        if _CONTROL.search(value):
            bad(f'header "{_shown(name)}" must not contain control characters')
        headers.append((name, value))
    return uri, tuple(headers)


_Reader = Callable[[_Attributes, Element, str], Verb]
_READERS: dict[str, _Reader] = {
    "Dial": _dial,
    "Hangup": _hangup,
    "Reject": _reject,
    "Redirect": _redirect,
    "Pause": _pause,
}
