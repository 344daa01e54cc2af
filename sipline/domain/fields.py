"""Field rules: each turns a raw client value into a clean one or raises FieldError.

Rules are plain functions so endpoint and profile validation share them and tests can call them
directly. A raw value is whatever JSON or a form decoded to; nothing here trusts its type.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .errors import Problem

Rule = Callable[[Any], Any]


class FieldError(ValueError):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# RFC 3261 §25.1 user part: unreserved / user-unreserved. '%' escapes are refused on purpose: the
# digest username a softphone sends must be the stored username byte for byte.
_SIP_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/]+")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldError("must be a string")
    return value


def text(max_length: int, *, nullable: bool = True) -> Rule:
    """Free text without control characters; '' and null clear a nullable field."""

    def rule(value: Any) -> str | None:
        if value is None and nullable:
            return None
        s = _string(value)
        if s == "" and nullable:
            return None
        if _CONTROL.search(s):
            raise FieldError("must not contain control characters")
        if len(s) > max_length:
            raise FieldError(f"is too long (maximum is {max_length} characters)")
        return s

    return rule


def username(value: Any) -> str:
    s = _string(value)
    if s == "":
        raise FieldError("can't be blank")
    if any(c.isspace() for c in s):
        raise FieldError("must not contain white space")
    if "@" in s:
        raise FieldError("must not contain @")
    if len(s) > 64:
        raise FieldError("is too long (maximum is 64 characters)")
    if not _SIP_USER.fullmatch(s):
        raise FieldError("must be a valid SIP user part (letters, digits and -_.!~*'()&=+$,;?/)")
    return s


def is_username(value: str) -> bool:
    """Could an endpoint have this user name? (A name none can have need not be looked up.)"""
    try:
        username(value)
    except FieldError:
        return False
    return True


def password(value: Any) -> str:
    s = _string(value)
    if len(s) < 8:
        raise FieldError("is too short (minimum is 8 characters)")
    if len(s) > 128:
        raise FieldError("is too long (maximum is 128 characters)")
    if _CONTROL.search(s):
        raise FieldError("must not contain control characters")
    return s


def phone_number(value: Any) -> str | None:
    """An E.164 number; null or '' means 'choose a purchased or verified number at random'."""
    if value is None:
        return None
    s = _string(value)
    if s == "":
        return None
    if s == "random":
        return s
    if not _E164.fullmatch(s):
        raise FieldError("must be an E.164 phone number such as +15551234567, or random")
    return s


def url(value: Any) -> str | None:
    if value is None:
        return None
    s = _string(value)
    if s == "":
        return None
    if len(s) > 2048:
        raise FieldError("is too long (maximum is 2048 characters)")
    if _CONTROL.search(s) or any(c.isspace() for c in s):
        raise FieldError("must be an absolute http or https URL")
    try:
        parts = urlsplit(s)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise FieldError("must be an absolute http or https URL") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FieldError("must be an absolute http or https URL")
    return s


def uuid_text(value: Any) -> str | None:
    if value is None:
        return None
    s = _string(value)
    if s == "":
        return None
    try:
        return str(uuid.UUID(s))
    except ValueError:
        raise FieldError("must be a valid UUID") from None


def one_of(choices: Sequence[str], *, nullable: bool = True, upper: bool = False) -> Rule:
    listed = ", ".join(choices)

    def rule(value: Any) -> str | None:
        if value is None or value == "":
            if nullable:
                return None
            raise FieldError(f"must be one of: {listed}")
        s = _string(value)
        if upper:
            s = s.upper()
        if s not in choices:
            raise FieldError(f"must be one of: {listed}")
        return s

    return rule


def list_of(choices: Sequence[str]) -> Rule:
    """A list drawn from choices, duplicates dropped, order kept (it is a preference order)."""
    listed = ", ".join(choices)

    def rule(value: Any) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise FieldError("must be an array of strings")
        out: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise FieldError("must be an array of strings")
            if item not in choices:
                raise FieldError(f"contains {item[:40]!r}; supported values are: {listed}")
            if item not in out:
                out.append(item)
        return out

    return rule


def clean(
    raw: Mapping[str, Any], rules: Mapping[str, Rule], read_only: Collection[str]
) -> tuple[dict[str, Any], list[Problem]]:
    """Apply each sent field's rule. Returns the clean values and every problem, not just the first."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in raw.items():
        if name in read_only:
            continue
        rule = rules.get(name)
        if rule is None:
            shown = name[:64]
            problems.append(
                Problem(shown, f"{shown} is not a known attribute", "Unknown Attribute", "unknown_parameter")
            )
            continue
        try:
            out[name] = rule(value)
        except FieldError as exc:
            problems.append(Problem(name, f"{name} {exc.detail}"))
    return out, problems
