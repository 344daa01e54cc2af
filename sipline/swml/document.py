"""SWML documents: bytes in, a validated `Document` or a `DocumentError` (12100) out, never an exception.

A document is `{"version": "1.0.0", "sections": {"main": [...methods...], ...}}`, in JSON or YAML.
Every method's arguments are checked here, before the call runs, so a document that cannot run is
refused whole with a message naming the section, the index and the field
(`sections.main[2].connect.timeout: ...`), as SignalWire refuses it when it loads.

What sipline runs (it has no media of its own, see `sipline.handlers.actions`):

- `connect` (`to`, or `serial` / `parallel` / `serial_parallel` destinations; `from`, `from_name`,
  `headers`, `codecs`, `timeout`, `max_duration`, `answer_on_bridge`, `username` / `password`,
  `call_state_url` / `call_state_events`, `result`), `hangup`, `sleep`, `transfer`, `execute`,
  `goto`, `label`, `return`, `set`, `unset`, `switch`, `cond`.
- `answer` is accepted and does nothing: with no media of its own, sipline answers the caller only
  when a `connect` target answers (answer-on-bridge, whatever `answer_on_bridge` says). So the
  most common SWML opening, `answer` then `connect`, runs, the caller hearing the callee ring
  rather than silence; a document that answers and then only sleeps or hangs up ends the call
  unanswered (480/486/603) instead of answered.
- Methods that play, record or listen to audio (`play`, `prompt`, `record`, `ai`, `tap`, ...) need
  media and are refused, as are the ones sipline has no way to carry out (`send_sms`, `request`,
  `sip_refer`, `user_event`) and unknown ones.

Hostile input is bounded: 64 KiB, 32 levels of nesting, 10,000 values; YAML aliases and merge keys
are refused (an alias is how a small YAML document becomes a huge one), so are duplicate keys,
NaN and Infinity, and YAML values JSON has no word for (dates, binary, sets).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import urlsplit

import yaml

from sipline.handlers.actions import DocumentError
from sipline.swml.expressions import (
    Condition,
    ExpressionError,
    check_text,
    has_placeholder,
    is_plain_path,
    parse_condition,
    placeholder_path,
)

PARSE_ERROR = 12100
VERSION = "1.0.0"
MAX_BYTES = 64 * 1024
MAX_DEPTH = 32
MAX_NODES = 10_000
MAX_TEXT = 2048
MAX_PARALLEL = 10  # destinations rung together (LaML allows 10 <Sip> per <Dial>)
MAX_SERIAL = 10  # groups tried one after the other
TIMEOUT_SECONDS = (1, 600)
MAX_DURATION_SECONDS = (1, 14400)
GOTO_MAX = (1, 100)
SLEEP_FOREVER = -1
SLEEP_MAX_MS = 14_400_000

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
HANGUP_REASONS = ("hangup", "busy", "decline")
CALL_STATE_EVENTS = ("created", "ringing", "answered", "ended")

NEEDS_MEDIA = frozenset(
    {
        "ai",
        "ai_sidecar",
        "amazon_bedrock",
        "denoise",
        "detect_machine",
        "enter_queue",
        "join_conference",
        "join_room",
        "live_transcribe",
        "live_translate",
        "pay",
        "play",
        "prompt",
        "receive_fax",
        "record",
        "record_call",
        "send_digits",
        "send_fax",
        "stop_denoise",
        "stop_record_call",
        "stop_stream",
        "stop_tap",
        "stream",
        "tap",
        "transcribe",
        "transcribe_stop",
    }
)
NOT_SUPPORTED = {
    "send_sms": "sipline has no messaging",
    "request": "a call handler here makes no HTTP requests mid-call: look the data up when serving the document",
    "sip_refer": "sipline does not send REFER: connect to the destination instead",
    "user_event": "sipline has no event channel to send user events on",
}
RUNS = "answer, connect, cond, execute, goto, hangup, label, return, set, sleep, switch, transfer and unset run here"

_WRONG_TYPE = "relay_script_element_wrong_type"
_DUPLICATED = "relay_script_element_duplicated"
_MISSING_NAME = "relay_script_method_missing_name"
_TOKEN = re.compile(r"[A-Za-z0-9!%*_+`'~.\-]+")  # RFC 3261 token: a header name
_CODEC = re.compile(r"[A-Za-z0-9._/@\-]+")
_NUMBER = re.compile(r"\+?[0-9]{1,32}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# What a document holds. String fields may hold %{...} placeholders, expanded when the method runs;
# `int | str` and `bool | str` fields are a placeholder when they are a string.

Block = tuple["Method", ...]


@dataclass(frozen=True)
class Destination:
    to: str
    from_: str | None = None  # None: the connect's
    from_name: str | None = None
    username: str | None = None
    password: str | None = None
    timeout: int | str | None = None
    codecs: str | None = None  # comma-separated
    call_state_url: str | None = None
    call_state_events: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Switch:
    where: str
    variable: str  # a plain path: `connect_result`, `call.type`, `params.choice`
    cases: tuple[tuple[str, Block], ...]
    default: Block | None = None


@dataclass(frozen=True)
class CondBranch:
    when: Condition | None  # None: `else`
    then: Block


@dataclass(frozen=True)
class Cond:
    where: str
    branches: tuple[CondBranch, ...]


@dataclass(frozen=True)
class Connect:
    where: str
    groups: tuple[tuple[Destination, ...], ...]  # tried one after the other; each group rung together
    from_: str | None = None
    from_name: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    codecs: str | None = None
    timeout: int | str = 60
    max_duration: int | str = 14400
    answer_on_bridge: bool | str = False  # sipline always answers on bridge
    call_state_url: str | None = None
    call_state_events: tuple[str, ...] = ("ended",)
    result: Switch | Cond | None = None


@dataclass(frozen=True)
class Hangup:
    where: str
    reason: str = "hangup"


@dataclass(frozen=True)
class Sleep:
    where: str
    duration: int | str  # milliseconds; -1: until the call ends


@dataclass(frozen=True)
class Transfer:
    where: str
    dest: str  # a section, an http(s) URL, or an inline JSON document
    params: Mapping[str, object] = field(default_factory=dict)
    inline: Document | None = None


@dataclass(frozen=True)
class Execute:
    where: str
    dest: str
    params: Mapping[str, object] = field(default_factory=dict)
    inline: Document | None = None
    on_return: Block | None = None
    result: Switch | Cond | None = None


@dataclass(frozen=True)
class Goto:
    where: str
    label: str
    when: Condition | None = None
    max: int | str = 100


@dataclass(frozen=True)
class Label:
    where: str
    name: str


@dataclass(frozen=True)
class Return:
    where: str
    value: object = None


@dataclass(frozen=True)
class Set:
    where: str
    values: Mapping[str, object]


@dataclass(frozen=True)
class Unset:
    where: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Answer:
    where: str


Method = Connect | Hangup | Sleep | Transfer | Execute | Goto | Label | Return | Set | Unset | Switch | Cond | Answer


@dataclass(frozen=True)
class Document:
    sections: Mapping[str, Block]
    labels: Mapping[str, Mapping[str, int]]  # section -> label -> index of the label in it
    base_url: str = ""


# Errors: raised inside this module, turned into a DocumentError once, in parse().


class Invalid(Exception):
    """Why a document cannot run; `error()` is the DocumentError it becomes (the interpreter raises it
    too, for what only shows once variables are expanded)."""

    def __init__(self, message: str, swml_error: str = "relay_script_element_invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.swml_error = swml_error

    def error(self, base_url: str) -> DocumentError:
        details = {"swml_error": self.swml_error}
        if base_url:
            details["url"] = base_url
        return DocumentError(PARSE_ERROR, self.message, details)


def _fail(where: str, message: str, swml_error: str = "relay_script_method_parameter_invalid_value") -> NoReturn:
    raise Invalid(f"{where}: {message}", swml_error)


def parse(body: bytes, content_type: str | None, base_url: str) -> Document | DocumentError:
    """The document in `body` (JSON or YAML, by `content_type`; otherwise JSON, then YAML)."""
    try:
        return _document(_load(body, content_type), base_url)
    except Invalid as invalid:
        return invalid.error(base_url)
    except RecursionError:
        return Invalid("the document is nested too deeply", "relay_script_nested_too_deep").error(base_url)


# Loading


def _load(body: bytes, content_type: str | None) -> object:
    if len(body) > MAX_BYTES:
        raise Invalid(f"the document is {len(body)} bytes; at most {MAX_BYTES} are read", "relay_script_parse_error")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Invalid(f"the document is not UTF-8 (byte {error.start})", "relay_script_parse_error") from None
    media = (content_type or "").split(";")[0].strip().lower()
    if media in JSON_TYPES:
        return _plain(_load_json(text))
    if media in YAML_TYPES:
        return _plain(_load_yaml(text))
    try:
        return _plain(_load_json(text))
    except _NotJson as not_json:
        try:
            return _plain(_load_yaml(text))
        except _NotYaml as not_yaml:
            raise Invalid(
                f"the document is neither JSON ({not_json.reason}) nor YAML ({not_yaml.reason})",
                "relay_script_parse_error",
            ) from None


class _NotJson(Invalid):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the document is not valid JSON: {reason}", "relay_script_parse_error")
        self.reason = reason


class _NotYaml(Invalid):
    def __init__(self, reason: str) -> None:
        super().__init__(f"the document is not valid YAML: {reason}", "relay_script_parse_error")
        self.reason = reason


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    mapping: dict[str, object] = {}
    for key, value in pairs:
        if key in mapping:
            raise Invalid(f"the key {key[:60]!r} appears twice in one object", _DUPLICATED)
        mapping[key] = value
    return mapping


def _json_constant(name: str) -> NoReturn:
    raise Invalid(f"{name} is not a number SWML accepts", "relay_script_parse_error")


def _json_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise Invalid(f"{text[:40]} is too large a number", "relay_script_parse_error")
    return number


def _load_json(text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant, parse_float=_json_float)
    except json.JSONDecodeError as error:
        raise _NotJson(f"{error.msg} at line {error.lineno} column {error.colno}") from None
    except ValueError as error:  # an integer too long to convert
        raise Invalid(f"the document is not valid JSON: {error}", "relay_script_parse_error") from None


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader that counts and bounds the nodes it builds, and refuses aliases, merge keys
    and duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._nodes = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            raise Invalid("YAML aliases (*name) are not accepted: write the value out", "relay_script_parse_error")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise Invalid(f"the document has more than {MAX_NODES} values", "relay_script_parse_error")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise Invalid(f"the document is nested more than {MAX_DEPTH} deep", "relay_script_nested_too_deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise Invalid("YAML merge keys (<<) are not accepted", "relay_script_parse_error")
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise Invalid("a YAML mapping key must be a plain value", "relay_script_parse_error") from None
            if duplicate:
                raise Invalid(f"the key {str(key)[:60]!r} appears twice in one mapping", _DUPLICATED)
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str) -> object:
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        return loader.get_single_data()
    except yaml.YAMLError as error:
        raise _NotYaml(" ".join(str(error).split())[:200]) from None
    except ValueError as error:  # a timestamp or integer YAML recognised but cannot build
        raise _NotYaml(str(error)[:200]) from None
    finally:
        if loader is not None:
            loader.dispose()


def _plain(tree: object) -> object:
    """The loaded tree as JSON values only, keys as strings, within the depth and size bounds."""
    count = 0

    def walk(value: object, depth: int) -> object:
        nonlocal count
        count += 1
        if count > MAX_NODES:
            raise Invalid(f"the document has more than {MAX_NODES} values", "relay_script_parse_error")
        if depth > MAX_DEPTH:
            raise Invalid(f"the document is nested more than {MAX_DEPTH} deep", "relay_script_nested_too_deep")
        if isinstance(value, dict):
            mapping: dict[str, object] = {}
            for key, item in value.items():
                if isinstance(key, int) and not isinstance(key, bool):
                    key = str(key)
                if not isinstance(key, str):
                    raise Invalid(f"the key {str(key)[:40]!r} is not a string: quote it", _WRONG_TYPE)
                if key in mapping:
                    raise Invalid(
                        f"the key {key[:60]!r} appears twice in one mapping", "relay_script_element_duplicated"
                    )
                mapping[key] = walk(item, depth + 1)
            return mapping
        if isinstance(value, list):
            return [walk(item, depth + 1) for item in value]
        if isinstance(value, float):
            if not math.isfinite(value):
                raise Invalid("NaN and Infinity are not numbers SWML accepts", "relay_script_parse_error")
            return value
        if value is None or isinstance(value, str | int | bool):
            return value
        raise Invalid(
            f"a YAML {type(value).__name__} value ({str(value)[:40]!r}) is not accepted: quote it to make it a string",
            _WRONG_TYPE,
        )

    return walk(tree, 0)


# Validation


@dataclass(frozen=True)
class _Context:
    sections: frozenset[str]
    labels: Mapping[str, int]  # the labels of the section being read
    section: str
    base_url: str


def _document(tree: object, base_url: str) -> Document:
    if not isinstance(tree, dict):
        raise Invalid(
            'an SWML document is a mapping: {"version": "1.0.0", "sections": {"main": [...]}}',
            _WRONG_TYPE,
        )
    unknown = sorted(set(tree) - {"version", "sections"})
    if unknown:
        raise Invalid(
            f"unknown top-level element {unknown[0][:60]!r}: a document has version and sections",
            "relay_script_element_undefined",
        )
    if "version" in tree and tree["version"] != VERSION:
        raise Invalid(
            f'version: {str(tree["version"])[:40]!r} is not supported; use "{VERSION}" (quoted in YAML)',
            "relay_script_version_invalid",
        )
    if "sections" not in tree:
        raise Invalid("sections: missing", "relay_script_sections_missing")
    sections = tree["sections"]
    if not isinstance(sections, dict):
        raise Invalid("sections: must be a mapping of section names to lists of methods", _WRONG_TYPE)
    if "main" not in sections:
        raise Invalid("sections: the main section is missing", "relay_script_main_section_missing")
    names = frozenset(sections)
    labels: dict[str, dict[str, int]] = {}
    for name, steps in sections.items():
        where = f"sections.{name}"
        if not isinstance(steps, list):
            raise Invalid(f"{where}: a section is a list of methods", _WRONG_TYPE)
        if not steps:
            raise Invalid(f"{where}: the section has no methods", "relay_script_section_code_missing")
        labels[name] = _labels(steps, where)
    built = {
        name: _block(steps, f"sections.{name}", _Context(names, labels[name], name, base_url))
        for name, steps in sections.items()
    }
    return Document(built, labels, base_url)


def _labels(steps: list[object], where: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, step in enumerate(steps):
        if isinstance(step, dict) and len(step) == 1 and "label" in step:
            name = _label_name(step["label"], f"{where}[{index}].label")
            if name in found:
                _fail(f"{where}[{index}].label", f"the label {name!r} is already at index {found[name]}")
            found[name] = index
    return found


def _label_name(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail(where, "a label is a non-empty string", _WRONG_TYPE)
    if has_placeholder(value) or _CONTROL.search(value) or len(value) > 256:
        _fail(where, "a label is a plain name (no variables, at most 256 characters)")
    return value


def _block(steps: object, where: str, context: _Context) -> Block:
    if not isinstance(steps, list):
        _fail(where, "must be a list of methods", _WRONG_TYPE)
    return tuple(_method(step, f"{where}[{index}]", context) for index, step in enumerate(steps))


def _method(step: object, where: str, context: _Context) -> Method:
    if isinstance(step, str):
        name, args = step, None
    elif isinstance(step, dict) and len(step) == 1:
        ((name, args),) = step.items()
    elif isinstance(step, dict):
        names = ", ".join(sorted(step)[:5]) or "none"
        _fail(
            where,
            f"a method is a mapping with exactly one key (its name); got {names}",
            _MISSING_NAME,
        )
    else:
        _fail(
            where,
            'a method is a mapping with one key ({"hangup": {}}) or the name of a method without arguments',
            _MISSING_NAME,
        )
    shown = name[:60]
    if name in NEEDS_MEDIA:
        _fail(
            f"{where}.{shown}",
            f"{name} needs media (it plays, records or listens to audio), which sipline does not have; {RUNS}",
            "relay_script_method_undefined",
        )
    if name in NOT_SUPPORTED:
        _fail(f"{where}.{shown}", f"{name} is not supported: {NOT_SUPPORTED[name]}", "relay_script_method_undefined")
    builder = _BUILDERS.get(name)
    if builder is None:
        _fail(f"{where}", f"{shown!r} is not an SWML method sipline knows; {RUNS}", "relay_script_method_undefined")
    if isinstance(step, str) and name not in _BARE:
        _fail(f"{where}.{name}", f"{name} needs arguments", "relay_script_method_parameter_missing")
    return builder(args, f"{where}.{name}", context)


# Field readers


def _fields(
    args: object,
    where: str,
    allowed: Iterable[str],
    required: Iterable[str] = (),
    refused: Mapping[str, str] | None = None,
) -> dict[str, object]:
    refused = refused or {}
    if args is None:
        args = {}
    if not isinstance(args, dict):
        _fail(where, "must be a mapping of fields", _WRONG_TYPE)
    allowed = set(allowed)
    for key in args:
        if key in refused:
            _fail(f"{where}.{key}", refused[key], "relay_script_method_parameter_undefined")
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            _fail(f"{where}", f"unknown field {key[:60]!r} (known: {known})", "relay_script_method_parameter_undefined")
    for key in required:
        if key not in args:
            _fail(f"{where}.{key}", "missing", "relay_script_method_parameter_missing")
    return args


def _text(value: object, where: str, *, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        _fail(where, f"must be a string, got {_type_name(value)} (quote it in YAML)", _WRONG_TYPE)
    check_line(value, where, limit)
    _placeholders(value, where)
    return value


def check_line(text: str, where: str, limit: int = MAX_TEXT) -> str:
    """One line of text bound for a SIP message or a URL: bounded, without control characters."""
    if len(text) > limit:
        _fail(where, f"at most {limit} characters")
    if _CONTROL.search(text):
        _fail(where, "control characters (line breaks, tabs, NUL) are not allowed")
    return text


def _placeholders(text: str, where: str) -> None:
    try:
        check_text(text)
    except ExpressionError as error:
        _fail(where, str(error))


def _json_value(value: object, where: str) -> object:
    """Any JSON value (set, return, params); its strings may hold placeholders."""
    if isinstance(value, str):
        _placeholders(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _json_value(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _json_value(item, f"{where}[{index}]")
    return value


def _mapping(value: object, where: str) -> dict[str, object]:
    if not isinstance(value, dict):
        _fail(where, f"must be a mapping, got {_type_name(value)}", _WRONG_TYPE)
    _json_value(value, where)
    return value


def _integer(value: object, where: str, bounds: tuple[int, int], *, also: Iterable[int] = ()) -> int | str:
    if isinstance(value, str) and has_placeholder(value):
        return _text(value, where)
    if not isinstance(value, int) or isinstance(value, bool):
        _fail(where, f"must be an integer, got {_type_name(value)}", _WRONG_TYPE)
    return check_integer(value, where, bounds, also=also)


def check_integer(value: int, where: str, bounds: tuple[int, int], *, also: Iterable[int] = ()) -> int:
    low, high = bounds
    if not low <= value <= high and value not in set(also):
        extra = "".join(f" or {v}" for v in also)
        _fail(where, f"must be from {low} to {high}{extra}, got {str(value)[:40]}")
    return value


def _boolean(value: object, where: str) -> bool | str:
    if isinstance(value, str) and has_placeholder(value):
        return _text(value, where)
    if not isinstance(value, bool):
        _fail(where, f"must be true or false, got {_type_name(value)}", _WRONG_TYPE)
    return value


def _choice(value: object, where: str, choices: tuple[str, ...]) -> str:
    text = _text(value, where)
    if not has_placeholder(text):
        check_choice(text, where, choices)
    return text


def check_choice(text: str, where: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        _fail(where, f"must be one of {', '.join(choices)}, got {text[:40]!r}")
    return text


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


# Targets, URLs and destinations: checked here when written out, by the interpreter after expansion.


def check_target(text: str, where: str) -> str:
    """`to`: a sip:/sips: URI or a number; the other kinds SignalWire dials are refused by name."""
    check_line(text, where, 512)
    lowered = text.lower()
    if lowered.startswith(("sip:", "sips:")):
        if len(text.split(":", 1)[1].strip()) == 0 or any(c in text for c in ' <>"'):
            _fail(where, f"{text[:60]!r} is not a SIP URI")
        return "sip"
    if _NUMBER.fullmatch(text):
        return "number"
    if lowered.startswith("queue:"):
        _fail(where, "queues need media (hold music), which sipline does not have")
    if lowered.startswith("stream:"):
        _fail(where, "streams need media, which sipline does not have")
    if text.startswith("/") or lowered.startswith("call:"):
        _fail(where, "Call Fabric resources and calls are not dialled here: use a sip: URI or a number")
    _fail(where, f"{text[:60]!r} is neither a sip: URI nor a number (+15551230000, or an extension's digits)")


def check_url(text: str, where: str) -> str:
    check_line(text, where)
    try:
        parts = urlsplit(text)
        valid = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        valid = False
    if not valid:
        _fail(where, f"{text[:60]!r} is not an http(s) URL")
    return text


def check_header(name: str, value: str, where: str) -> tuple[str, str]:
    if not _TOKEN.fullmatch(name):
        _fail(where, f"{name[:60]!r} is not a SIP header name")
    if _CONTROL.search(value) or len(value) > 1024:
        _fail(where, "a header value is at most 1024 characters, without line breaks")
    return name, value


def check_codecs(text: str, where: str) -> tuple[str, ...]:
    codecs = tuple(codec.strip() for codec in text.split(",") if codec.strip())
    for codec in codecs:
        if not _CODEC.fullmatch(codec):
            _fail(where, f"{codec[:40]!r} is not a codec name (PCMU,PCMA,OPUS)")
    return codecs


def dest_kind(text: str, sections: Iterable[str]) -> str | None:
    """What a transfer or execute `dest` names: "section", "url", "inline" (a JSON document) or None."""
    if text in sections:
        return "section"
    if text.lstrip().startswith("{"):
        return "inline"
    if text.lower().startswith(("http://", "https://")):
        return "url"
    return None


def inline_document(text: str, where: str, base_url: str) -> Document:
    parsed = parse(text.encode(), "application/json", base_url)
    if isinstance(parsed, DocumentError):
        _fail(where, f"the inline document: {parsed.message}")
    return parsed


def check_dest(text: str, where: str, sections: Iterable[str], base_url: str) -> tuple[str, Document | None]:
    kind = dest_kind(text, sections)
    if kind == "inline":
        return "inline", inline_document(text, where, base_url)
    if kind == "url":
        check_url(text, where)
        return "url", None
    if kind == "section":
        return "section", None
    if text.lower().startswith("relay:"):
        _fail(where, "RELAY applications are not supported")
    _fail(where, f"{text[:60]!r} is not a section of this document, an http(s) URL or an inline JSON document")


# The methods


def _connect(args: object, where: str, context: _Context) -> Connect:
    fields = _fields(args, where, _CONNECT_FIELDS, refused=_CONNECT_REFUSED)
    _defaults_only(fields, where)
    modes = [mode for mode in ("to", "serial", "parallel", "serial_parallel") if mode in fields]
    if len(modes) != 1:
        _fail(
            where,
            "give exactly one of to, serial, parallel and serial_parallel"
            + (f" (got {', '.join(modes)})" if modes else ""),
            "relay_script_method_parameter_conflict" if modes else "relay_script_method_parameter_missing",
        )
    mode = modes[0]
    groups: list[tuple[Destination, ...]]
    if mode == "to":
        groups = [(_destination({k: fields[k] for k in ("to", "username", "password") if k in fields}, where),)]
    else:
        for key in ("username", "password"):
            if key in fields:
                _fail(f"{where}.{key}", f"with {mode}, set username and password on each destination")
        listing = _list(fields[mode], f"{where}.{mode}", MAX_SERIAL if mode != "parallel" else MAX_PARALLEL)
        if mode == "serial":
            groups = [(_destination(item, f"{where}.serial[{i}]"),) for i, item in enumerate(listing)]
        elif mode == "parallel":
            groups = [tuple(_destination(item, f"{where}.parallel[{i}]") for i, item in enumerate(listing))]
        else:
            groups = []
            for i, inner in enumerate(listing):
                members = _list(inner, f"{where}.serial_parallel[{i}]", MAX_PARALLEL)
                groups.append(
                    tuple(_destination(item, f"{where}.serial_parallel[{i}][{j}]") for j, item in enumerate(members))
                )
    connect = Connect(
        where=where,
        groups=tuple(groups),
        from_=_text(fields["from"], f"{where}.from", limit=256) if "from" in fields else None,
        from_name=_text(fields["from_name"], f"{where}.from_name", limit=256) if "from_name" in fields else None,
        headers=_headers(fields["headers"], f"{where}.headers") if "headers" in fields else (),
        codecs=_codecs(fields["codecs"], f"{where}.codecs") if "codecs" in fields else None,
        timeout=_integer(fields.get("timeout", 60), f"{where}.timeout", TIMEOUT_SECONDS),
        max_duration=_integer(fields.get("max_duration", 14400), f"{where}.max_duration", MAX_DURATION_SECONDS),
        answer_on_bridge=_boolean(fields.get("answer_on_bridge", False), f"{where}.answer_on_bridge"),
        call_state_url=_url(fields["call_state_url"], f"{where}.call_state_url")
        if "call_state_url" in fields
        else None,
        call_state_events=_events(fields.get("call_state_events", ["ended"]), f"{where}.call_state_events"),
        result=_branching(fields["result"], f"{where}.result", context, "connect_result")
        if "result" in fields
        else None,
    )
    _same_in_each_group(connect, where, mode)
    return connect


_DESTINATION_FIELDS = (
    "to",
    "from",
    "from_name",
    "username",
    "password",
    "timeout",
    "codecs",
    "call_state_url",
    "call_state_events",
    "confirm",
    "confirm_timeout",
    "encryption",
)
_CONNECT_FIELDS = (
    "to",
    "serial",
    "parallel",
    "serial_parallel",
    "from",
    "from_name",
    "headers",
    "codecs",
    "timeout",
    "max_duration",
    "answer_on_bridge",
    "username",
    "password",
    "call_state_url",
    "call_state_events",
    "result",
    "webrtc_media",
    "encryption",
    "confirm",
    "confirm_timeout",
)
_STREAM = "stream destinations need media, which sipline does not have"
_CONNECT_REFUSED = {
    "ringback": "ringback plays audio: it needs media, which sipline does not have (the callee's ringing is passed on)",
    "transfer_after_bridge": "transfer_after_bridge is not supported: put the methods after the connect",
    "execute_after_queue": "queues are not supported",
    "status_url": "connect status events are not sent: use call_state_url",
    "session_timeout": "session_timeout is not supported",
    "name": _STREAM,
    "codec": _STREAM,
    "realtime": _STREAM,
    "status_url_method": _STREAM,
    "authorization_bearer_token": _STREAM,
    "custom_parameters": _STREAM,
}


def _defaults_only(fields: Mapping[str, object], where: str) -> None:
    """Fields sipline accepts only at the value that changes nothing."""
    if fields.get("webrtc_media", False) is not False:
        _fail(f"{where}.webrtc_media", "WebRTC media is not offered: only false is accepted")
    if fields.get("encryption", "optional") != "optional":
        _fail(f"{where}.encryption", "set encryption on the endpoint instead: only optional is accepted here")
    for key in ("confirm", "confirm_timeout"):
        if key in fields:
            _fail(f"{where}.{key}", "confirm runs SWML on the callee's leg before bridging, which sipline does not do")


def _list(value: object, where: str, limit: int) -> list[object]:
    if not isinstance(value, list) or not value:
        _fail(where, "must be a non-empty list", _WRONG_TYPE)
    if len(value) > limit:
        _fail(where, f"at most {limit} entries")
    return value


def _destination(value: object, where: str) -> Destination:
    fields = _fields(value, where, _DESTINATION_FIELDS, required=("to",), refused=_CONNECT_REFUSED)
    _defaults_only(fields, where)
    to = _text(fields["to"], f"{where}.to", limit=512)
    if not has_placeholder(to):
        check_target(to, f"{where}.to")
    return Destination(
        to=to,
        from_=_text(fields["from"], f"{where}.from", limit=256) if "from" in fields else None,
        from_name=_text(fields["from_name"], f"{where}.from_name", limit=256) if "from_name" in fields else None,
        username=_text(fields["username"], f"{where}.username", limit=256) if "username" in fields else None,
        password=_text(fields["password"], f"{where}.password", limit=256) if "password" in fields else None,
        timeout=_integer(fields["timeout"], f"{where}.timeout", TIMEOUT_SECONDS) if "timeout" in fields else None,
        codecs=_codecs(fields["codecs"], f"{where}.codecs") if "codecs" in fields else None,
        call_state_url=_url(fields["call_state_url"], f"{where}.call_state_url")
        if "call_state_url" in fields
        else None,
        call_state_events=_events(fields["call_state_events"], f"{where}.call_state_events")
        if "call_state_events" in fields
        else None,
    )


def _same_in_each_group(connect: Connect, where: str, mode: str) -> None:
    """A group rung together is one Dial, which has one caller id, display name and timeout."""
    for g, group in enumerate(connect.groups):
        for name, get in (
            ("from", lambda d: d.from_ if d.from_ is not None else connect.from_),
            ("from_name", lambda d: d.from_name if d.from_name is not None else connect.from_name),
            ("timeout", lambda d: d.timeout if d.timeout is not None else connect.timeout),
        ):
            values = [get(d) for d in group]
            for i, value in enumerate(values):
                if value != values[0]:
                    place = f"{where}.parallel[{i}]" if mode == "parallel" else f"{where}.serial_parallel[{g}][{i}]"
                    _fail(
                        f"{place}.{name}",
                        f"destinations rung together share one {name} (sipline rings them as one call attempt): "
                        f"set it on the connect, or dial them in serial",
                    )


def _headers(value: object, where: str) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[object, object]]
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = []
        for i, item in enumerate(value):
            header = _fields(item, f"{where}[{i}]", ("name", "value"), required=("name", "value"))
            pairs.append((header["name"], header["value"]))
    else:
        _fail(
            where,
            "must be a list of {name, value} (or a mapping of names to values)",
            _WRONG_TYPE,
        )
    if len(pairs) > 32:
        _fail(where, "at most 32 headers")
    headers = []
    for i, (name, text) in enumerate(pairs):
        place = f"{where}[{i}]"
        name = _text(name, f"{place}.name", limit=128)
        if has_placeholder(name):
            _fail(f"{place}.name", "a header name is written out, without variables")
        text = _text(text, f"{place}.value", limit=1024)
        headers.append(check_header(name, text, place))
    return tuple(headers)


def _codecs(value: object, where: str) -> str:
    if isinstance(value, list):
        value = ",".join(_text(item, f"{where}[{i}]", limit=64) for i, item in enumerate(value))
    text = _text(value, where, limit=512)
    if not has_placeholder(text):
        check_codecs(text, where)
    return text


def _url(value: object, where: str) -> str:
    text = _text(value, where)
    if not has_placeholder(text):
        check_url(text, where)
    return text


def _events(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        _fail(where, f"must be a list of {', '.join(CALL_STATE_EVENTS)}", _WRONG_TYPE)
    return tuple(_choice(item, f"{where}[{i}]", CALL_STATE_EVENTS) for i, item in enumerate(value))


def _branching(value: object, where: str, context: _Context, variable: str) -> Switch | Cond:
    """A `result`: a switch (a mapping) on `variable` unless it names another, or a cond (a list)."""
    if isinstance(value, list):
        return _cond(value, where, context)
    fields = _fields(value, where, ("variable", "case", "default"), required=("case",))
    return _switch({"variable": variable, **fields}, where, context)


def _hangup(args: object, where: str, context: _Context) -> Hangup:
    fields = _fields(args, where, ("reason",))
    return Hangup(where, _choice(fields.get("reason", "hangup"), f"{where}.reason", HANGUP_REASONS))


def _sleep(args: object, where: str, context: _Context) -> Sleep:
    if isinstance(args, dict):
        args = _fields(args, where, ("duration",), required=("duration",))["duration"]
        where = f"{where}.duration"
    return Sleep(where, _integer(args, where, (0, SLEEP_MAX_MS), also=(SLEEP_FOREVER,)))


def _dest(
    fields: Mapping[str, object], where: str, context: _Context
) -> tuple[str, Mapping[str, object], Document | None]:
    """`dest` (an inline document is parsed now; one with variables, once they are expanded) and
    `params`; `meta` is user data SignalWire ignores, and so does sipline."""
    dest = fields["dest"]
    if isinstance(dest, str) and dest.lstrip().startswith("{"):
        inline: Document | None = inline_document(dest, f"{where}.dest", context.base_url)
    else:
        dest = _text(dest, f"{where}.dest")
        inline = None
        if not has_placeholder(dest):
            check_dest(dest, f"{where}.dest", context.sections, context.base_url)
    params = _mapping(fields["params"], f"{where}.params") if "params" in fields else {}
    if "meta" in fields:
        _mapping(fields["meta"], f"{where}.meta")
    return dest, params, inline


def _transfer(args: object, where: str, context: _Context) -> Transfer:
    fields = _fields(args, where, ("dest", "params", "meta"), required=("dest",))
    dest, params, inline = _dest(fields, where, context)
    return Transfer(where, dest, params, inline)


def _execute(args: object, where: str, context: _Context) -> Execute:
    fields = _fields(args, where, ("dest", "params", "meta", "on_return", "result"), required=("dest",))
    dest, params, inline = _dest(fields, where, context)
    return Execute(
        where,
        dest,
        params,
        inline,
        on_return=_block(fields["on_return"], f"{where}.on_return", context) if "on_return" in fields else None,
        result=_branching(fields["result"], f"{where}.result", context, "return_value") if "result" in fields else None,
    )


def _goto(args: object, where: str, context: _Context) -> Goto:
    if isinstance(args, str):
        args = {"label": args}
    fields = _fields(args, where, ("label", "when", "max"), required=("label",))
    label = _text(fields["label"], f"{where}.label", limit=256)
    if not has_placeholder(label) and label not in context.labels:
        _fail(f"{where}.label", f"there is no label {label[:60]!r} in section {context.section[:60]!r}")
    when = _condition(fields["when"], f"{where}.when") if "when" in fields else None
    return Goto(where, label, when, _integer(fields.get("max", 100), f"{where}.max", GOTO_MAX))


def _condition(value: object, where: str) -> Condition:
    text = value if isinstance(value, str) else None
    if text is None:
        _fail(where, f"a condition is a string, got {_type_name(value)}", _WRONG_TYPE)
    try:
        return parse_condition(text)
    except ExpressionError as error:
        _fail(where, str(error))


def _label(args: object, where: str, context: _Context) -> Label:
    return Label(where, _label_name(args, where))


def _return(args: object, where: str, context: _Context) -> Return:
    return Return(where, None if args == {} else _json_value(args, where))


def _set(args: object, where: str, context: _Context) -> Set:
    if not isinstance(args, dict) or not args:
        _fail(where, "must be a mapping of variable names to values", _WRONG_TYPE)
    for name, value in args.items():
        _variable_name(name, f"{where}.{name[:60]}")
        _json_value(value, f"{where}.{name}")
    return Set(where, args)


def _variable_name(name: str, where: str) -> str:
    if not _VARIABLE.fullmatch(name) or len(name) > 128:
        _fail(where, "a variable name is letters, digits and _, not starting with a digit")
    return name


def _unset(args: object, where: str, context: _Context) -> Unset:
    names = [args] if isinstance(args, str) else args
    if not isinstance(names, list) or not names:
        _fail(where, "must be a variable name or a list of them", _WRONG_TYPE)
    checked = []
    for i, name in enumerate(names):
        place = f"{where}[{i}]" if isinstance(args, list) else where
        if not isinstance(name, str):
            _fail(place, "must be a variable name", _WRONG_TYPE)
        checked.append(_variable_name(name, place))
    return Unset(where, tuple(checked))


def _switch_method(args: object, where: str, context: _Context) -> Switch:
    fields = _fields(args, where, ("variable", "case", "default"), required=("variable", "case"))
    return _switch(fields, where, context)


def _switch(fields: Mapping[str, object], where: str, context: _Context) -> Switch:
    variable = _text(fields["variable"], f"{where}.variable", limit=256)
    if not is_plain_path(placeholder_path(variable)):
        _fail(f"{where}.variable", "must be a variable path such as connect_result or call.type")
    cases = fields["case"]
    if not isinstance(cases, dict):
        _fail(f"{where}.case", "must be a mapping of values to lists of methods", _WRONG_TYPE)
    return Switch(
        where=where,
        variable=placeholder_path(variable),
        cases=tuple((key, _block(block, f"{where}.case.{key}", context)) for key, block in cases.items()),
        default=_block(fields["default"], f"{where}.default", context) if "default" in fields else None,
    )


def _cond_method(args: object, where: str, context: _Context) -> Cond:
    return _cond(args, where, context)


def _cond(value: object, where: str, context: _Context) -> Cond:
    if not isinstance(value, list) or not value:
        _fail(where, "must be a non-empty list of {when, then} and {else}", _WRONG_TYPE)
    branches: list[CondBranch] = []
    for i, item in enumerate(value):
        place = f"{where}[{i}]"
        fields = _fields(item, place, ("when", "then", "else"))
        if "when" in fields:
            if "then" not in fields:
                _fail(f"{place}.then", "missing", "relay_script_method_parameter_missing")
            condition = _condition(fields["when"], f"{place}.when")
            branches.append(CondBranch(condition, _block(fields["then"], f"{place}.then", context)))
        elif "then" in fields:
            _fail(f"{place}.when", "missing", "relay_script_method_parameter_missing")
        if "else" in fields:
            branches.append(CondBranch(None, _block(fields["else"], f"{place}.else", context)))
        if not fields:
            _fail(place, "give when and then, or else", "relay_script_method_parameter_missing")
    return Cond(where, tuple(branches))


def _answer(args: object, where: str, context: _Context) -> Answer:
    fields = _fields(args, where, ("max_duration", "codecs", "username", "password"))
    if "max_duration" in fields:
        _integer(fields["max_duration"], f"{where}.max_duration", MAX_DURATION_SECONDS)
    if "codecs" in fields:
        _codecs(fields["codecs"], f"{where}.codecs")
    for key in ("username", "password"):
        if key in fields:
            _text(fields[key], f"{where}.{key}", limit=256)
    return Answer(where)


_BUILDERS: dict[str, Callable[[object, str, _Context], Method]] = {
    "answer": _answer,
    "cond": _cond_method,
    "connect": _connect,
    "execute": _execute,
    "goto": _goto,
    "hangup": _hangup,
    "label": _label,
    "return": _return,
    "set": _set,
    "sleep": _sleep,
    "switch": _switch_method,
    "transfer": _transfer,
    "unset": _unset,
}
_BARE = frozenset({"answer", "hangup", "return"})
