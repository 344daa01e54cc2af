"""SIP profile rules: the project's defaults that endpoints without their own values follow."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import fields as f
from .errors import ValidationFailed
from .values import CIPHERS, CODECS, PROFILE_ENCRYPTION

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def domain_identifier(value: Any) -> str:
    s = f.text(63, nullable=False)(value)
    if not isinstance(s, str) or not _LABEL.fullmatch(s):
        raise f.FieldError(
            "must be 1 to 63 lower-case letters, digits or hyphens, not starting or ending with a hyphen"
        )
    return s


def _non_empty(rule: f.Rule) -> f.Rule:
    def checked(value: Any) -> list[str]:
        out = rule(value)
        if not out:
            raise f.FieldError("must list at least one value")
        return list(out)

    return checked


RULES: dict[str, f.Rule] = {
    "domain_identifier": domain_identifier,
    "default_codecs": _non_empty(f.list_of(CODECS)),
    "default_ciphers": _non_empty(f.list_of(CIPHERS)),
    "default_encryption": f.one_of(PROFILE_ENCRYPTION, nullable=False),
    "default_send_as": f.phone_number,
}
READ_ONLY = frozenset({"domain"})


def change(current: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """The profile after a PUT (fields not sent stay), or ValidationFailed with every problem."""
    changes, problems = f.clean(raw, RULES, READ_ONLY)
    if problems:
        raise ValidationFailed(problems)
    return {**current, **changes}


def sip_domain(domain_identifier: str, base_domain: str) -> str:
    return f"{domain_identifier}.{base_domain}"


def view(profile: Mapping[str, Any], base_domain: str) -> dict[str, Any]:
    return {
        "domain": sip_domain(profile["domain_identifier"], base_domain),
        "domain_identifier": profile["domain_identifier"],
        "default_codecs": list(profile["default_codecs"]),
        "default_ciphers": list(profile["default_ciphers"]),
        "default_encryption": profile["default_encryption"],
        "default_send_as": profile.get("default_send_as"),
    }
