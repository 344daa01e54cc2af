"""The JSON body POSTed to fetch an SWML document (SignalWire's inbound-call webhook payload)."""

from __future__ import annotations

import json

from sipline.swml import CallInfo, SipData, request_body
from tests.swml.helpers import CALL


def test_request_body_has_call_vars_params_and_envs():
    body = request_body(CALL, {}, {})
    assert set(body) == {"call", "vars", "params", "envs"}
    assert body["vars"] == body["params"] == body["envs"] == {}


def test_the_call_object_has_signalwires_fields():
    call = request_body(CALL, {}, {})["call"]
    assert call == {
        "call_id": CALL.call_id,
        "node_id": "node-1",
        "segment_id": "segment-1",
        "call_state": "created",
        "direction": "inbound",
        "type": "sip",
        "from": "sip:alice@acme.sip.example.com",
        "to": "sip:1000@acme.sip.example.com",
        "headers": [{"name": "X-Account", "value": "42"}],
        "project_id": CALL.project_id,
        "space_id": CALL.space_id,
        "sip_data": {
            "sip_req_host": "acme.sip.example.com",
            "sip_req_uri": "",
            "sip_req_user": "1000",
            "sip_from_host": "",
            "sip_from_uri": "",
            "sip_from_user": "alice",
            "sip_to_host": "",
            "sip_to_uri": "",
            "sip_to_user": "",
            "sip_contact_user": "",
            "sip_contact_port": "",
            "sip_contact_uri": "",
            "sip_contact_host": "",
            "sip_contact_params": {},
        },
    }


def test_sip_data_is_left_out_when_unknown_or_not_a_sip_call():
    bare = CallInfo("c", "sip:a@b", "sip:c@d", "p")
    assert "sip_data" not in request_body(bare, {}, {})["call"]  # type: ignore[operator]
    phone = CallInfo("c", "+1555", "+1666", "p", type="phone", sip_data=SipData())
    assert "sip_data" not in request_body(phone, {}, {})["call"]  # type: ignore[operator]


def test_a_tag_is_sent_when_the_call_has_one():
    tagged = CallInfo("c", "sip:a@b", "sip:c@d", "p", tag="support-queue")
    assert request_body(tagged, {}, {})["call"]["tag"] == "support-queue"  # type: ignore[index]


def test_vars_params_and_envs_are_sent_as_given_and_the_body_is_json():
    body = request_body(CALL, {"prompt_value": "2", "n": 1}, {"where": {"dept": "sales"}}, {"api": "k"})
    assert body["vars"] == {"prompt_value": "2", "n": 1}
    assert body["params"] == {"where": {"dept": "sales"}}
    assert body["envs"] == {"api": "k"}
    assert json.loads(json.dumps(body)) == body
