"""Wire shapes (msgspec Structs): what responses look like, and the request bodies we document.

Request bodies are parsed by sipline.api.bodies and validated by sipline.domain, which reports every
problem at once in SignalWire's envelope; these Structs give the OpenAPI document its schemas.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar.openapi import ResponseSpec
from msgspec import UNSET, UnsetType

from sipline.domain.calls import CallDirection, CallStatus
from sipline.domain.values import (
    CallFlowVersion,
    CallHandler,
    Cipher,
    Codec,
    Encryption,
    ProfileEncryption,
)
from sipline.domain.values import HttpMethod as Method


class SipEndpoint(msgspec.Struct, kw_only=True):
    type: Literal["sip_endpoint"] = "sip_endpoint"
    id: str
    username: str
    caller_id: str | None
    send_as: str | None
    ciphers: list[Cipher]
    codecs: list[Codec]
    encryption: Encryption
    call_handler: CallHandler | None
    calling_handler_resource_id: str | None
    call_request_url: str | None
    call_request_method: Method | None
    call_fallback_url: str | None
    call_fallback_method: Method | None
    call_status_callback_url: str | None
    call_status_callback_method: Method | None
    call_laml_application_id: str | None
    call_dialogflow_agent_id: str | None
    call_relay_topic: str | None
    call_relay_topic_status_callback_url: str | None
    call_relay_context: str | None
    call_relay_context_status_callback_url: str | None
    call_relay_application: str | None
    call_video_room_id: str | None
    call_flow_id: str | None
    call_flow_version: CallFlowVersion | None
    call_ai_agent_id: str | None
    call_relay_script_url: str | None


class PaginationLinks(msgspec.Struct, omit_defaults=True):
    self: str
    first: str
    next: str | None = None
    prev: str | None = None


class SipEndpointList(msgspec.Struct):
    links: PaginationLinks
    data: list[SipEndpoint]


class SipProfile(msgspec.Struct):
    domain: str
    domain_identifier: str
    default_codecs: list[Codec]
    default_ciphers: list[Cipher]
    default_encryption: ProfileEncryption
    default_send_as: str | None


class _EndpointFields(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    caller_id: str | UnsetType | None = UNSET
    send_as: str | UnsetType | None = UNSET
    ciphers: list[Cipher] | UnsetType = UNSET
    codecs: list[Codec] | UnsetType = UNSET
    encryption: Encryption | UnsetType = UNSET
    call_handler: CallHandler | UnsetType | None = UNSET
    call_request_url: str | UnsetType | None = UNSET
    call_request_method: Method | UnsetType | None = UNSET
    call_fallback_url: str | UnsetType | None = UNSET
    call_fallback_method: Method | UnsetType | None = UNSET
    call_status_callback_url: str | UnsetType | None = UNSET
    call_status_callback_method: Method | UnsetType | None = UNSET
    call_laml_application_id: str | UnsetType | None = UNSET
    call_dialogflow_agent_id: str | UnsetType | None = UNSET
    call_relay_topic: str | UnsetType | None = UNSET
    call_relay_topic_status_callback_url: str | UnsetType | None = UNSET
    call_relay_context: str | UnsetType | None = UNSET
    call_relay_context_status_callback_url: str | UnsetType | None = UNSET
    call_relay_application: str | UnsetType | None = UNSET
    call_video_room_id: str | UnsetType | None = UNSET
    call_flow_id: str | UnsetType | None = UNSET
    call_flow_version: CallFlowVersion | UnsetType | None = UNSET
    call_ai_agent_id: str | UnsetType | None = UNSET
    call_relay_script_url: str | UnsetType | None = UNSET


class CreateSipEndpointRequest(_EndpointFields, kw_only=True, forbid_unknown_fields=True):
    username: str
    password: str


class UpdateSipEndpointRequest(_EndpointFields, kw_only=True, forbid_unknown_fields=True):
    username: str | UnsetType = UNSET
    password: str | UnsetType = UNSET


class UpdateSipProfileRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    domain_identifier: str | UnsetType = UNSET
    default_codecs: list[Codec] | UnsetType = UNSET
    default_ciphers: list[Cipher] | UnsetType = UNSET
    default_encryption: ProfileEncryption | UnsetType = UNSET
    default_send_as: str | UnsetType | None = UNSET


class ErrorItem(msgspec.Struct, omit_defaults=True):
    detail: str
    status: str
    title: str
    code: str
    attribute: str | None = None


class ValidationErrorBody(msgspec.Struct):
    errors: list[ErrorItem]


class SimpleError(msgspec.Struct):
    error: str


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented error responses of an operation, in SignalWire's shapes."""
    specs = {
        400: ResponseSpec(ValidationErrorBody, description="Malformed body", generate_examples=False),
        401: ResponseSpec(SimpleError, description="Missing or wrong credentials", generate_examples=False),
        403: ResponseSpec(ValidationErrorBody, description="The token lacks the voice scope", generate_examples=False),
        404: ResponseSpec(SimpleError, description="No such endpoint in this project", generate_examples=False),
        413: ResponseSpec(ValidationErrorBody, description="Body over 64 KiB", generate_examples=False),
        415: ResponseSpec(ValidationErrorBody, description="Unsupported content type", generate_examples=False),
        422: ResponseSpec(ValidationErrorBody, description="Validation failed", generate_examples=False),
    }
    return {status: specs[status] for status in statuses}


# The LaML (Twilio-compatible) Calls resource, /api/laml/2010-04-01/Accounts/{AccountSid}/Calls.


class Call(msgspec.Struct, kw_only=True):
    sid: str
    account_sid: str
    date_created: str | None  # RFC 2822, as every date of the LaML API
    date_updated: str | None
    parent_call_sid: str | None
    to: str
    formatted_to: str
    from_: str = msgspec.field(name="from")
    formatted_from: str
    phone_number_sid: str | None
    status: CallStatus
    start_time: str | None
    end_time: str | None
    duration: str | None  # whole seconds from answer to end; "0" if never answered; null while ongoing
    price: str | None
    price_unit: str
    direction: CallDirection
    answered_by: str | None
    api_version: str
    forwarded_from: str | None
    group_sid: str | None
    caller_name: str | None
    uri: str
    subresource_uris: dict[str, str]
    sip_result_code: int | None


class CallList(msgspec.Struct):
    calls: list[Call]
    uri: str
    first_page_uri: str
    next_page_uri: str | None
    previous_page_uri: str | None
    page: int
    page_size: int
    start: int
    end: int


class LamlError(msgspec.Struct):
    """Twilio's error body, which SignalWire's compatibility API returns as well."""

    code: int
    message: str
    more_info: str
    status: int


def laml_error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """The documented error responses of a LaML operation, in Twilio's shape."""
    descriptions = {
        400: "Malformed request parameter (code 20001)",
        401: "Missing or wrong credentials (code 20003)",
        403: "The token lacks the voice scope (code 20403)",
        404: "No such account or call (code 20404)",
    }
    return {
        status: ResponseSpec(LamlError, description=descriptions[status], generate_examples=False)
        for status in statuses
    }
