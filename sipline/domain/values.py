"""The vocabularies of the SignalWire contract (reference/signalwire-sip-endpoints.openapi.yaml).

Each is written once, as a Literal type; the tuples the rules check against are derived from it,
and so are the API's wire models (sipline.api.models) and the OpenAPI document, so a value added
here is accepted, stored and shown everywhere. Column widths are held to these by a test.
"""

from __future__ import annotations

from typing import Literal, get_args

Codec = Literal["OPUS", "G722", "PCMU", "PCMA", "VP8", "H264"]
Cipher = Literal[
    "AEAD_AES_256_GCM_8",
    "AES_256_CM_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AES_CM_128_HMAC_SHA1_32",
]
Encryption = Literal["default", "required", "optional"]
ProfileEncryption = Literal["required", "optional"]
HttpMethod = Literal["GET", "POST"]
CallFlowVersion = Literal["working_copy", "current_deployed"]
CallHandler = Literal[
    "relay_context",
    "relay_topic",
    "relay_application",
    "relay_connector",
    "relay_script",
    "laml_webhooks",
    "laml_application",
    "dialogflow",
    "video_room",
    "call_flow",
    "ai_agent",
]

CODECS: tuple[str, ...] = get_args(Codec)
CIPHERS: tuple[str, ...] = get_args(Cipher)
ENDPOINT_ENCRYPTION: tuple[str, ...] = get_args(Encryption)
PROFILE_ENCRYPTION: tuple[str, ...] = get_args(ProfileEncryption)
HTTP_METHODS: tuple[str, ...] = get_args(HttpMethod)
CALL_FLOW_VERSIONS: tuple[str, ...] = get_args(CallFlowVersion)
CALL_HANDLERS: tuple[str, ...] = get_args(CallHandler)

# Each handler and the field it cannot work without ("only used (and required) when ...").
HANDLER_REQUIRES: dict[str, str | None] = {
    "relay_context": "call_relay_context",
    "relay_topic": "call_relay_topic",
    "relay_application": "call_relay_application",
    "relay_connector": None,
    "relay_script": "call_relay_script_url",
    "laml_webhooks": "call_request_url",
    "laml_application": "call_laml_application_id",
    "dialogflow": "call_dialogflow_agent_id",
    "video_room": "call_video_room_id",
    "call_flow": "call_flow_id",
    "ai_agent": "call_ai_agent_id",
}

# Handlers whose target is a resource with a UUID: its id is shown as calling_handler_resource_id.
HANDLER_RESOURCE = {
    "laml_application": "call_laml_application_id",
    "video_room": "call_video_room_id",
    "call_flow": "call_flow_id",
    "ai_agent": "call_ai_agent_id",
}

DEFAULT_CODECS = ["OPUS", "G722", "PCMU", "PCMA", "VP8", "H264"]
DEFAULT_CIPHERS = list(CIPHERS)
DEFAULT_ENCRYPTION = "optional"
