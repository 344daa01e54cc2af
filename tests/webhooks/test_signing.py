"""Signatures: Twilio's algorithm for forms and queries, SignalWire's for JSON bodies."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from twilio.request_validator import RequestValidator

from sipline.webhooks import headers, json_signature, signature

KEY = "PSK_0123456789abcdef0123456789abcdef01234567"


def test_twilios_documented_example_signs_the_same() -> None:
    # twilio.com/docs/usage/webhooks/webhooks-security: auth token 12345, this URL and these parameters.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    assert signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_parameters_are_signed_sorted_by_name_whatever_their_order() -> None:
    url = "https://example.com/voice"
    forward = {"To": "sip:bob@x", "AccountSid": "p1", "From": "sip:alice@x", "Digits": ""}
    backward = dict(reversed(forward.items()))
    assert signature(KEY, url, forward) == signature(KEY, url, backward)
    assert RequestValidator(KEY).validate(url, forward, signature(KEY, url, backward))
    assert signature(KEY, url, None) == signature(KEY, url, {}) != signature(KEY, url, forward)


def test_a_form_request_carries_the_same_signature_in_both_headers() -> None:
    url = "https://example.com/voice?x=1"
    made = headers(KEY, url, {"CallSid": "CA1", "From": "sip:a@b"})
    assert made["X-SignalWire-Signature"] == made["X-Twilio-Signature"]
    assert RequestValidator(KEY).validate(url, {"CallSid": "CA1", "From": "sip:a@b"}, made["X-Twilio-Signature"])


def test_a_json_request_is_signed_as_signalwire_signs_json_and_twilio_covers_the_url() -> None:
    url = "https://example.com/swml"
    body = b'{"call":{"call_id":"c1"},"vars":{}}'
    made = headers(KEY, url, json_body=body)
    # SignalWire's validators (signalwire-python request_validator.py, signalwire-js validateRequest.ts):
    # lowercase hex HMAC-SHA1 of the URL followed by the raw body.
    expected = hmac.new(KEY.encode(), (url + body.decode()).encode(), hashlib.sha1).hexdigest()
    assert made["X-SignalWire-Signature"] == expected == json_signature(KEY, url, body)
    assert RequestValidator(KEY).validate(url, {}, made["X-Twilio-Signature"])
    assert json_signature(KEY, url, body + b" ") != expected


def test_a_request_has_a_form_or_a_json_body_not_both() -> None:
    with pytest.raises(ValueError):
        headers(KEY, "https://example.com/", {"a": "1"}, json_body=b"{}")


def test_another_key_gives_another_signature() -> None:
    url = "https://example.com/voice"
    assert not RequestValidator("another key").validate(url, {"a": "1"}, signature(KEY, url, {"a": "1"}))
