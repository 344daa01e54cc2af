"""SIP endpoint rules: which fields exist, how a request changes a record, what a client sees.

The seed's update semantics live here: a patch holds only the fields the client sent; validation
runs on the record as it will be after the patch; `ciphers: []` / `codecs: []` store "no list of
my own" so the endpoint follows its project's profile, including later changes to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fields as f
from .errors import Problem, ValidationFailed
from .values import (
    CALL_FLOW_VERSIONS,
    CALL_HANDLERS,
    CIPHERS,
    CODECS,
    ENDPOINT_ENCRYPTION,
    HANDLER_REQUIRES,
    HANDLER_RESOURCE,
    HTTP_METHODS,
)

_method = f.one_of(HTTP_METHODS, upper=True)

# Every writable field and its rule, in the order SignalWire documents them.
RULES: dict[str, f.Rule] = {
    "username": f.username,
    "password": f.password,
    "caller_id": f.text(255),
    "send_as": f.phone_number,
    "ciphers": f.list_of(CIPHERS),
    "codecs": f.list_of(CODECS),
    "encryption": f.one_of(ENDPOINT_ENCRYPTION, nullable=False),
    "call_handler": f.one_of(CALL_HANDLERS),
    "call_request_url": f.url,
    "call_request_method": _method,
    "call_fallback_url": f.url,
    "call_fallback_method": _method,
    "call_status_callback_url": f.url,
    "call_status_callback_method": _method,
    "call_laml_application_id": f.text(255),
    "call_dialogflow_agent_id": f.text(255),
    "call_relay_topic": f.text(255),
    "call_relay_topic_status_callback_url": f.url,
    "call_relay_context": f.text(255),
    "call_relay_context_status_callback_url": f.url,
    "call_relay_application": f.text(255),
    "call_video_room_id": f.uuid_text,
    "call_flow_id": f.uuid_text,
    "call_flow_version": f.one_of(CALL_FLOW_VERSIONS),
    "call_ai_agent_id": f.uuid_text,
    "call_relay_script_url": f.url,
}
REQUIRED_ON_CREATE = ("username", "password")
# Sent back by clients that PUT what they GET; accepted and ignored.
READ_ONLY = frozenset({"id", "type", "calling_handler_resource_id"})
# Stored columns: everything writable but the password, which is stored sealed.
STORED = tuple(name for name in RULES if name != "password")
CALL_FIELDS = tuple(name for name in RULES if name.startswith("call_"))


def parse_patch(raw: Mapping[str, Any], *, creating: bool) -> tuple[dict[str, Any], list[Problem]]:
    """Clean the fields a client sent. Returns the patch and every problem found, not just the first."""
    patch, problems = f.clean(raw, RULES, READ_ONLY)
    if creating:
        for name in REQUIRED_ON_CREATE:
            if name not in raw:
                problems.append(Problem(name, f"{name} can't be blank", "Missing Attribute", "missing_parameter"))
    return patch, problems


def empty_record() -> dict[str, Any]:
    record: dict[str, Any] = dict.fromkeys(STORED)
    record["encryption"] = "default"
    return record


def apply_patch(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """The record after the patch. An empty cipher or codec list means 'follow the profile'."""
    merged = dict(current)
    for name, value in patch.items():
        if name == "password":
            continue
        if name in ("ciphers", "codecs") and not value:
            value = None
        merged[name] = value
    return merged


def changed_fields(current: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """The stored fields whose value differs between two versions of a record."""
    return {name: record.get(name) for name in STORED if record.get(name) != current.get(name)}


def record_problems(record: Mapping[str, Any]) -> list[Problem]:
    """Rules that span fields, checked on the merged record (seed: 'validation on the merged record')."""
    handler = record.get("call_handler")
    needed = HANDLER_REQUIRES.get(handler) if handler else None
    if needed and not record.get(needed):
        return [
            Problem(
                needed,
                f"{needed} is required when call_handler is {handler}",
                "Missing Attribute",
                "missing_parameter",
            )
        ]
    return []


def change(current: Mapping[str, Any] | None, raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a create (current is None) or an update; return (new record, patch) or raise."""
    patch, problems = parse_patch(raw, creating=current is None)
    record = apply_patch(current if current is not None else empty_record(), patch)
    named = {p.attribute for p in problems}
    problems += [p for p in record_problems(record) if p.attribute not in named and "call_handler" not in named]
    if problems:
        raise ValidationFailed(problems)
    return record, patch


def view(record: Mapping[str, Any], endpoint_id: str, profile: Mapping[str, Any]) -> dict[str, Any]:
    """What a client sees: every field, the profile's defaults filled in where the endpoint has none."""
    out: dict[str, Any] = {"type": "sip_endpoint", "id": endpoint_id}
    for name in STORED:
        out[name] = record.get(name)
    out["ciphers"] = list(record.get("ciphers") or profile["default_ciphers"])
    out["codecs"] = list(record.get("codecs") or profile["default_codecs"])
    out["send_as"] = record.get("send_as") or profile.get("default_send_as")
    resource_field = HANDLER_RESOURCE.get(record.get("call_handler") or "")
    out["calling_handler_resource_id"] = record.get(resource_field) if resource_field else None
    return out


def effective_encryption(record: Mapping[str, Any], profile: Mapping[str, Any]) -> str:
    """'required' or 'optional': what the SIP server enforces for this endpoint."""
    own = record.get("encryption") or "default"
    return str(profile["default_encryption"] if own == "default" else own)
