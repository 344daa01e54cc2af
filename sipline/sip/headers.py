"""Header fields and the grammar of their values (RFC 3261 §7.3, §19.1, §20, §25.1).

Parsers here are strict and raise `SipParseError`; the `Headers` container itself stays lenient
(it stores what was received) so that one odd header never hides the ones a response needs.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass
from typing import TypeVar

from sipline.sip.errors import SipParseError

_V = TypeVar("_V")

TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")

# RFC 3261 §7.3.3 and the IANA registry: the one-letter names that must be treated as the long ones.
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "f": "From",
    "t": "To",
    "v": "Via",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "e": "Content-Encoding",
    "s": "Subject",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
}

_KNOWN_NAMES = (
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Alert-Info",
    "Allow",
    "Allow-Events",
    "Authentication-Info",
    "Authorization",
    "Call-ID",
    "Call-Info",
    "Contact",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-Type",
    "CSeq",
    "Date",
    "Error-Info",
    "Event",
    "Expires",
    "From",
    "In-Reply-To",
    "Max-Forwards",
    "MIME-Version",
    "Min-Expires",
    "Organization",
    "Path",
    "Priority",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Require",
    "Record-Route",
    "Refer-To",
    "Referred-By",
    "Reply-To",
    "Require",
    "Retry-After",
    "Route",
    "Server",
    "Service-Route",
    "Session-Expires",
    "Subject",
    "Supported",
    "Timestamp",
    "To",
    "Unsupported",
    "User-Agent",
    "Via",
    "Warning",
    "WWW-Authenticate",
)
_CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN_NAMES}

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1). Auth headers and Date contain
# commas inside one value, so they are deliberately absent.
_LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Error-Info",
        "In-Reply-To",
        "Path",
        "Proxy-Require",
        "Record-Route",
        "Require",
        "Route",
        "Service-Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    )
)


class _Recent(dict[str, _V]):
    """Recent results keyed by sender-chosen text (header names, URIs): cleared when full, so a
    sender can never grow it past `size`, and the same few keys of real traffic stay cheap."""

    def __init__(self, size: int = 1024) -> None:
        super().__init__()
        self.size = size

    def keep(self, key: str, value: _V) -> _V:
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


_CANONICAL_CACHE: _Recent[str] = _Recent()
_KEY_CACHE: _Recent[str] = _Recent()  # name as given -> lowercased canonical name
_VALID_NAMES: _Recent[bool] = _Recent()  # names seen to match TOKEN_RE


def field_names(name: str) -> tuple[str, str] | None:
    """(canonical name, lookup key) for the text before a header line's colon; None when that is
    not a token followed by optional SP/HT (a malformed line). Remembered: the same dozen recur."""
    names = _FIELD_NAMES.get(name)
    if names is not None:
        return names
    stripped = name.rstrip(" \t")
    if not is_token(stripped):
        return None
    canonical = canonical_name(stripped)
    return _FIELD_NAMES.keep(name, (canonical, canonical.lower()))


_FIELD_NAMES: _Recent[tuple[str, str]] = _Recent()  # only names that passed is_token


def is_token(name: str) -> bool:
    """TOKEN_RE.fullmatch for header and parameter names, remembered: the same few arrive every time."""
    if name in _VALID_NAMES:
        return True
    if TOKEN_RE.fullmatch(name) is None:
        return False
    return _VALID_NAMES.keep(name, True)


def canonical_name(name: str) -> str:
    """Full, conventionally capitalised header name; unknown names are kept as sent."""
    cached = _CANONICAL_CACHE.get(name)
    return cached if cached is not None else _CANONICAL_CACHE.keep(name, _canonical_name(name))


def _canonical_name(name: str) -> str:
    name = name.strip()
    lower = name.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, name)


def split_outside(value: str, sep: str) -> list[str] | None:
    """Split on `sep` outside quoted strings and <...>; None when quotes or brackets are unbalanced."""
    if '"' not in value and "<" not in value:
        return value.split(sep)  # nothing to be outside of: the common case, at C speed
    parts: list[str] = []
    start = 0
    in_quotes = in_angle = escaped = False
    for index, char in enumerate(value):
        if in_quotes:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_quotes = False
        elif in_angle:
            if char == ">":
                in_angle = False
        elif char == '"':
            in_quotes = True
        elif char == "<":
            in_angle = True
        elif char == sep:
            parts.append(value[start:index])
            start = index + 1
    if in_quotes or in_angle:
        return None
    parts.append(value[start:])
    return parts


class Headers:
    """Ordered multi-map of header fields with case-insensitive, compact-form-aware names.

    Every field in it has a canonical token name and a value without CR or LF (`add` checks, the
    parser and `add_parsed` guarantee it), so fields may be copied from one Headers to another as is.
    """

    __slots__ = ("_derived", "_fields", "_keys")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = []
        self._keys: list[str] = []  # lowercased canonical name of each field, for lookups
        # Values computed from these fields by `derived` (top Via, CSeq...): dropped on any change.
        self._derived: dict[Callable[[Headers], object], object] | None = None
        for name, value in fields:
            self.add(name, value)

    @classmethod
    def from_parsed(cls, fields: list[tuple[str, str]], keys: list[str]) -> Headers:
        """Take over lists of fields that already meet the class's promise (canonical token names,
        stripped values without CR or LF) and their keys (`field_names`); the parser's shortcut."""
        headers = cls.__new__(cls)
        headers._fields, headers._keys, headers._derived = fields, keys, None
        return headers

    @staticmethod
    def _key(name: str) -> str:
        key = _KEY_CACHE.get(name)
        return key if key is not None else _KEY_CACHE.keep(name, canonical_name(name).lower())

    def derived(self, compute: Callable[[Headers], _V]) -> _V:
        """`compute(self)`, computed once until the fields change; `compute` must read only them.

        Several layers ask one message for its top Via or CSeq; this parses them once per message.
        """
        derived = self._derived
        if derived is None:
            derived = self._derived = {}
        elif compute in derived:
            return derived[compute]  # type: ignore[return-value]  # stored by this very function
        value = derived[compute] = compute(self)
        return value

    def add(self, name: str, value: str) -> None:
        if not is_token(name.strip()):
            raise ValueError(f"invalid header name {name!r}")
        if "\r" in value or "\n" in value:
            # A raw line break would let a value inject extra header fields when serialised.
            raise ValueError("header values cannot contain line breaks")
        canonical = canonical_name(name)
        self._fields.append((canonical, value.strip()))
        self._keys.append(canonical.lower())
        self._derived = None

    def add_parsed(self, name: str, value: str) -> None:
        """`add` for a field whose name already matched TOKEN_RE and whose value has no CR or LF
        (the parser's, or a copy from a parsed message): the same result without the checks."""
        names = _FIELD_NAMES.get(name) or field_names(name)  # the first: field_names' cache, inline
        if names is None:  # not a token after all: the caller broke its promise
            raise ValueError(f"invalid header name {name!r}")
        self._fields.append((names[0], value.strip()))
        self._keys.append(names[1])
        self._derived = None

    def pick(self, every: str, firsts: tuple[str, ...]) -> Headers:
        """A new Headers: every field named `every`, then the first field of each of `firsts`
        (those present). The fields are taken as they are: they met this class's promise here."""
        key = _KEY_CACHE.get(every) or self._key(every)
        fields = [field for field_key, field in zip(self._keys, self._fields, strict=True) if field_key == key]
        keys = [key] * len(fields)
        for name in firsts:
            key = _KEY_CACHE.get(name) or self._key(name)
            if key in self._keys:
                fields.append(self._fields[self._keys.index(key)])
                keys.append(key)
        return Headers.from_parsed(fields, keys)

    def position(self, name: str) -> int | None:
        """Index (in `items()`) of the first field of that name, or None."""
        key = _KEY_CACHE.get(name) or self._key(name)
        return self._keys.index(key) if key in self._keys else None

    def replace_value(self, index: int, value: str) -> None:
        """Give the field at `index` (of `items()`) a new value, built from parsed values."""
        if "\r" in value or "\n" in value:
            raise ValueError("header values cannot contain line breaks")
        self._fields[index] = (self._fields[index][0], value.strip())
        self._derived = None

    def first(self, name: str) -> str | None:
        """The first field of that name as received (no list splitting), or None."""
        key = _KEY_CACHE.get(name) or self._key(name)
        try:
            return self._fields[self._keys.index(key)][1]
        except ValueError:
            return None

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one, kept at the position of the first."""
        key = self._key(name)
        position = self._keys.index(key) if key in self._keys else None
        self.remove(name)
        self.add(name, value)
        if position is not None:
            self._fields.insert(position, self._fields.pop())
            self._keys.insert(position, self._keys.pop())

    def remove(self, name: str) -> None:
        key = self._key(name)
        if key in self._keys:
            kept = [(k, f) for k, f in zip(self._keys, self._fields, strict=True) if k != key]
            self._keys = [k for k, _ in kept]
            self._fields = [f for _, f in kept]
            self._derived = None

    def get_all(self, name: str) -> list[str]:
        key = _KEY_CACHE.get(name) or self._key(name)
        values = [f[1] for k, f in zip(self._keys, self._fields, strict=True) if k == key]
        if key not in _LIST_HEADERS:
            return values
        result: list[str] = []
        for value in values:
            if "," not in value:  # the common case: one element, nothing to split
                value = value.strip()
                if value:
                    result.append(value)
                continue
            parts = split_outside(value, ",")
            if parts is None:
                # Unbalanced: hand it over whole, the element parser will reject it with a reason.
                result.append(value)
            else:
                result.extend(p.strip() for p in parts if p.strip())
        return result

    def get(self, name: str) -> str | None:
        key = _KEY_CACHE.get(name) or self._key(name)  # inline: the hot path is a cache hit
        try:
            first = self._fields[self._keys.index(key)][1]
        except ValueError:
            return None
        if key not in _LIST_HEADERS:
            return first
        if "," not in first and first.strip():  # one element: no list to split (the usual case)
            return first.strip()
        values = self.get_all(name)
        return values[0] if values else None

    def count(self, name: str) -> int:
        """Number of header lines (not list elements) carrying that name."""
        return self._keys.count(_KEY_CACHE.get(name) or self._key(name))

    def lookup_keys(self) -> list[str]:
        """The lookup key of each field, in order: its canonical name, lowercased."""
        return list(self._keys)

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def copy(self) -> Headers:
        return Headers.from_parsed(list(self._fields), list(self._keys))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (_KEY_CACHE.get(name) or self._key(name)) in self._keys

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._fields))

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(n.lower(), v) for n, v in self._fields] == [(n.lower(), v) for n, v in other._fields]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({self._fields!r})"


class Params(Mapping[str, "str | None"]):
    """Parameters of a URI, Via or name-addr: an immutable, hashable mapping in received order.

    Parsed values are cached and shared (see `parse_uri`), so nothing may change them in place;
    a changed copy is made with `with_changes`.
    """

    __slots__ = ("_hash", "_map")

    def __init__(self, items: Iterable[tuple[str, str | None]] = ()) -> None:
        self._map: dict[str, str | None] = dict(items)
        self._hash: int | None = None

    @classmethod
    def _owning(cls, mapping: dict[str, str | None]) -> Params:
        """Params over `mapping` itself, not a copy: for a parser's own dict, never touched again."""
        params = cls.__new__(cls)
        params._map = mapping
        params._hash = None
        return params

    def __getitem__(self, name: str) -> str | None:
        return self._map[name]

    # The Mapping mixins would go through __getitem__ in Python; the dict's own are the same, in C.
    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return self._map.get(name, default)

    def keys(self) -> KeysView[str]:
        return self._map.keys()

    def items(self) -> ItemsView[str, str | None]:
        return self._map.items()

    def values(self) -> ValuesView[str | None]:
        return self._map.values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, name: object) -> bool:
        return name in self._map

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(tuple(self._map.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return self._map == other._map
        if isinstance(other, Mapping):
            return self._map == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Params({self._map!r})"

    def with_changes(self, **changes: str | None) -> Params:
        """A copy with these parameters set (added at the end when new)."""
        return Params({**self._map, **changes}.items())

    def without(self, *names: str) -> Params:
        return Params((k, v) for k, v in self._map.items() if k not in names)


NO_PARAMS = Params()


# --- quoted strings and parameters (RFC 3261 §25.1) -------------------------------------------

_GEN_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~\[\]:]+")


def unquote(text: str) -> str:
    """Contents of a complete quoted-string with quoted-pairs resolved."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        raise SipParseError("expected a quoted string")
    out: list[str] = []
    escaped = False
    for char in text[1:-1]:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            raise SipParseError("unescaped quote inside a quoted string")
        else:
            out.append(char)
    if escaped:
        raise SipParseError("quoted string ends with a lone backslash")
    return "".join(out)


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_params(text: str) -> Params:
    """`;name[=value]` pairs (generic-param) with LWS tolerated; names are lowercased."""
    text = text.strip()
    if not text:
        return NO_PARAMS
    if not text.startswith(";"):
        raise SipParseError(f"unexpected text before parameters: {text[:40]!r}")
    parts = split_outside(text[1:], ";")
    if parts is None:
        raise SipParseError("unbalanced quotes in parameters")
    params: dict[str, str | None] = {}
    for part in parts:
        name, sep, raw = part.partition("=")
        name = name.strip()
        if not is_token(name):
            raise SipParseError(f"invalid parameter name {name!r}")
        value: str | None = None
        if sep:
            raw = raw.strip()
            if raw.startswith('"'):
                value = unquote(raw)
            elif _GEN_VALUE_RE.fullmatch(raw):
                value = raw
            else:
                raise SipParseError(f"invalid value for parameter {name!r}")
        params[name.lower()] = value
    return Params._owning(params)


def generate_tag() -> str:
    """From/To tag: 64 random bits are plenty for global uniqueness (RFC 3261 §19.3)."""
    return secrets.token_hex(8)


def generate_branch() -> str:
    """Via branch with the RFC 3261 magic cookie, so peers treat it as a transaction id."""
    return "z9hG4bK" + secrets.token_hex(12)


# --- URIs (RFC 3261 §19.1) ------------------------------------------------------------------

_SCHEME_URI_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):([^\s<>\"]+)")
_USER_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+")
_PASSWORD_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*")
_PARAMCHAR_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})+")
_HEADERS_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$&=]|%[0-9A-Fa-f]{2})*")
_HOSTPORT_RE = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?\.?)(?::(?P<port>[0-9]{1,5}))?"
)
_PCT_RE = re.compile(r"%([0-9A-Fa-f]{2})")


def _pct_decode(text: str) -> str:
    """Resolve %HH escapes; the grammar check before this guarantees they are well formed."""
    if "%" not in text:
        return text
    raw = bytearray()
    for chunk in re.split(r"(%[0-9A-Fa-f]{2})", text):
        if _PCT_RE.fullmatch(chunk):
            raw.append(int(chunk[1:], 16))
        else:
            raw.extend(chunk.encode("utf-8"))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("escaped characters do not form UTF-8") from None


@dataclass(frozen=True)
class SipUri:
    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None = None
    params: Params = NO_PARAMS
    headers: str | None = None


def parse_uri(text: str) -> SipUri:
    """A sip: or sips: URI; user, password and parameters are percent-decoded.

    One request names the same URIs several times (Request-URI, To, Contact, each checked while
    parsing and read again by the registrar), so recent results are kept; a SipUri is immutable
    (its params are a `Params`). Errors are not kept: they raise each time.
    """
    cached = _URI_CACHE.get(text)
    return cached if cached is not None else _URI_CACHE.keep(text, _parse_uri(text))


_URI_CACHE: _Recent[SipUri] = _Recent()


def _parse_uri(text: str) -> SipUri:
    match = _SCHEME_URI_RE.fullmatch(text)
    if not match or match[1].lower() not in ("sip", "sips"):
        raise SipParseError(f"not a SIP URI: {text[:80]!r}")
    rest = match[2]
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        raw_user, colon, raw_password = userinfo.partition(":")
        if not _USER_RE.fullmatch(raw_user) or (colon and not _PASSWORD_RE.fullmatch(raw_password)):
            raise SipParseError("invalid user part in SIP URI")
        user = _pct_decode(raw_user)
        password = _pct_decode(raw_password) if colon else None
    rest, question, headers = rest.partition("?")
    if question and not _HEADERS_RE.fullmatch(headers):
        raise SipParseError("invalid headers component in SIP URI")
    hostport, semi, param_text = rest.partition(";")
    hp = _HOSTPORT_RE.fullmatch(hostport)
    if not hp:
        raise SipParseError("invalid host in SIP URI")
    port = int(hp["port"]) if hp["port"] else None
    if port is not None and port > 65535:
        raise SipParseError("port out of range in SIP URI")
    params: dict[str, str | None] = {}
    if semi:
        for part in param_text.split(";"):
            name, eq, value = part.partition("=")
            if not _PARAMCHAR_RE.fullmatch(name) or (eq and not _PARAMCHAR_RE.fullmatch(value)):
                raise SipParseError("invalid parameter in SIP URI")
            params[_pct_decode(name).lower()] = _pct_decode(value) if eq else None
    return SipUri(
        scheme=match[1].lower(),
        user=user,
        password=password,
        host=hp["host"].lower(),
        port=port,
        params=Params._owning(params) if params else NO_PARAMS,
        headers=headers if question else None,
    )


def check_uri(text: str) -> None:
    """Any absolute URI (RFC 3261 §25.1 absoluteURI, loosely); SIP URIs are checked fully."""
    if text in _URI_CACHE:
        return  # parsed (so valid) a moment ago
    match = _SCHEME_URI_RE.fullmatch(text)
    if not match:
        raise SipParseError(f"invalid URI {text[:80]!r}")
    if match[1].lower() in ("sip", "sips"):
        parse_uri(text)


def uris_equal(a: SipUri, b: SipUri) -> bool:
    """RFC 3261 §19.1.4 URI comparison (escapes already resolved by parse_uri)."""
    if (a.scheme, a.user, a.password, a.host, a.port) != (b.scheme, b.user, b.password, b.host, b.port):
        return False
    for name in a.params.keys() | b.params.keys():
        in_a, in_b = name in a.params, name in b.params
        if in_a and in_b:
            va, vb = a.params[name], b.params[name]
            if (va or "").lower() != (vb or "").lower() or (va is None) != (vb is None):
                return False
        elif name in ("transport", "user", "ttl", "method", "maddr"):
            # These must appear in both or neither; any other one-sided parameter is ignored.
            return False
    return a.headers == b.headers


# --- name-addr / addr-spec (RFC 3261 §20.10, §25.1) -----------------------------------------


@dataclass(frozen=True)
class NameAddr:
    display: str | None
    uri: str
    params: Params = NO_PARAMS


_QUOTED_PREFIX_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)  # unrolled, as digest's _AUTH_PARAM_RE
_DISPLAY_TOKENS_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+(?:\s+[A-Za-z0-9\-.!%*_+`'~]+)*")


def parse_name_addr(text: str) -> NameAddr:
    """From/To/Contact/Route value, cached like `parse_uri` (see `_parse_name_addr`)."""
    cached = _NAME_ADDR_CACHE.get(text)
    return cached if cached is not None else _NAME_ADDR_CACHE.keep(text, _parse_name_addr(text))


_NAME_ADDR_CACHE: _Recent[NameAddr] = _Recent()


def _parse_name_addr(text: str) -> NameAddr:
    """From/To/Contact/Route value: `["display"] <uri> ;params` or a bare addr-spec `uri;params`.

    In the bare form everything after the first ';' is a header parameter (RFC 3261 §20.10), which is
    why a URI with ',', '?' or ';' of its own must be enclosed in <>.
    """
    text = text.strip()
    display: str | None = None
    if text.startswith('"'):
        quoted = _QUOTED_PREFIX_RE.match(text)
        if not quoted:
            raise SipParseError("unterminated quoted display name")
        display = unquote(quoted[0])
        rest = text[quoted.end() :].lstrip()
        if not rest.startswith("<"):
            raise SipParseError("quoted display name must be followed by <URI>")
    else:
        lt = text.find("<")
        if lt < 0:
            uri, semi, param_text = text.partition(";")
            uri = uri.strip()
            if "?" in uri or "," in uri:
                raise SipParseError("a URI with '?' or ',' must be enclosed in <>")
            check_uri(uri)
            return NameAddr(None, uri, parse_params(semi + param_text))
        words = text[:lt].strip()
        if words and not _DISPLAY_TOKENS_RE.fullmatch(words):
            raise SipParseError("display name with non-token characters must be quoted")
        display = " ".join(words.split()) or None
        rest = text[lt:]
    gt = rest.find(">")
    if gt < 0:
        raise SipParseError("missing '>' after URI")
    uri = rest[1:gt]
    if uri != uri.strip():
        raise SipParseError("whitespace inside <> around the URI")
    check_uri(uri)
    return NameAddr(display, uri, parse_params(rest[gt + 1 :]))


# --- Via (RFC 3261 §20.42) ------------------------------------------------------------------

_VIA_RE = re.compile(
    r"(?P<name>[A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*(?P<version>[A-Za-z0-9\-.!%*_+`'~]+)\s*/\s*"
    r"(?P<transport>[A-Za-z0-9\-.!%*_+`'~]+)\s+(?P<rest>\S.*)",
    re.S,
)
_SENT_BY_RE = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?\.?)(?:\s*:\s*(?P<port>[0-9]{1,5}))?"
)


@dataclass(frozen=True)
class Via:
    protocol: str
    transport: str
    host: str
    port: int | None = None
    params: Params = NO_PARAMS

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> str | None:
        """None when absent, '' when present without a value (RFC 3581 request form)."""
        if "rport" not in self.params:
            return None
        return self.params["rport"] or ""


def parse_via(text: str) -> Via:
    """One Via value (not a comma list): `SIP/2.0/UDP host[:port];params`, LWS tolerated.

    Cached like `parse_uri`: the top Via is parsed while checking a message and again to stamp it.
    """
    cached = _VIA_CACHE.get(text)
    return cached if cached is not None else _VIA_CACHE.keep(text, _parse_via(text))


_VIA_CACHE: _Recent[Via] = _Recent()


def remember_via(text: str, via: Via) -> None:
    """Tell `parse_via` the result for `text`, which the caller knows (it formatted `via` as `text`)."""
    _VIA_CACHE.keep(text, via)


def _parse_via(text: str) -> Via:
    match = _VIA_RE.fullmatch(text.strip())
    if not match:
        raise SipParseError("malformed Via sent-protocol")
    name, version, transport, rest = match.groups()
    semi = rest.find(";")
    sent_by, param_text = (rest, "") if semi < 0 else (rest[:semi], rest[semi:])
    sb = _SENT_BY_RE.fullmatch(sent_by.strip())
    if not sb:
        raise SipParseError("malformed Via sent-by")
    host, port_text = sb.groups()
    port = int(port_text) if port_text else None
    if port is not None and port > 65535:
        raise SipParseError("Via port out of range")
    transport = transport.upper()
    return Via(
        protocol=f"{name.upper()}/{version}/{transport}",
        transport=transport,
        host=host.lower(),
        port=port,
        params=parse_params(param_text),
    )
