"""The vocabularies of the SignalWire contract (reference/signalwire-sip-endpoints.openapi.yaml)."""

from __future__ import annotations

CODECS = ("OPUS", "G722", "PCMU", "PCMA", "VP8", "H264")
CIPHERS = (
    "AEAD_AES_256_GCM_8",
    "AES_256_CM_HMAC_SHA1_80",
    "AES_CM_128_HMAC_SHA1_80",
    "AES_256_CM_HMAC_SHA1_32",
    "AES_CM_128_HMAC_SHA1_32",
)
ENDPOINT_ENCRYPTION = ("default", "required", "optional")
PROFILE_ENCRYPTION = ("required", "optional")
HTTP_METHODS = ("GET", "POST")
CALL_FLOW_VERSIONS = ("working_copy", "current_deployed")

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
CALL_HANDLERS = tuple(HANDLER_REQUIRES)

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
