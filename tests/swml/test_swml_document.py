"""Reading SWML documents: formats, the document's shape, and each method's fields, defaults and bounds."""

from __future__ import annotations

import pytest

from sipline.handlers.actions import DocumentError
from sipline.swml import Document, parse
from sipline.swml.document import NEEDS_MEDIA, NOT_SUPPORTED
from tests.swml.helpers import as_json, parsed, refused, swml

CONNECT = {"connect": {"to": "sip:alice@example.com"}}
YAML = b"""
version: 1.0.0
sections:
  main:
    - connect:
        to: "sip:alice@example.com"
        from: "+15551112222"
"""


# Formats


def test_json_document_parses():
    assert isinstance(parse(as_json(swml(CONNECT)), "application/json", ""), Document)


@pytest.mark.parametrize("content_type", ["application/yaml", "text/x-yaml", "application/x-yaml"])
def test_yaml_document_parses_for_each_yaml_content_type(content_type):
    assert isinstance(parse(YAML, content_type, ""), Document)


def test_content_type_parameters_and_case_are_ignored():
    assert isinstance(parse(as_json(swml(CONNECT)), "Application/JSON; charset=utf-8", ""), Document)


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/octet-stream"])
def test_without_a_known_content_type_json_then_yaml_is_tried(content_type):
    assert isinstance(parse(as_json(swml(CONNECT)), content_type, ""), Document)
    assert isinstance(parse(YAML, content_type, ""), Document)


def test_json_content_type_does_not_fall_back_to_yaml():
    result = parse(YAML, "application/json", "")
    assert isinstance(result, DocumentError)
    assert "not valid JSON" in result.message


def test_neither_json_nor_yaml_says_both():
    result = parse(b"{main: [", None, "")
    assert isinstance(result, DocumentError)
    assert "neither JSON" in result.message and "nor YAML" in result.message


def test_a_utf8_byte_order_mark_is_accepted():
    assert isinstance(parse(b"\xef\xbb\xbf" + as_json(swml(CONNECT)), "application/json", ""), Document)


def test_a_document_that_is_not_utf8_is_refused():
    result = parse("version: 1.0.0 é".encode("latin-1"), None, "")
    assert isinstance(result, DocumentError)
    assert "UTF-8" in result.message


def test_errors_carry_the_document_url_and_signalwires_error_name():
    result = parse(as_json(swml({"play": {}})), "application/json", "https://app.example.com/swml")
    assert isinstance(result, DocumentError)
    assert result.details == {"swml_error": "relay_script_method_undefined", "url": "https://app.example.com/swml"}


# The document's shape


def test_version_may_be_left_out():
    assert isinstance(parse(as_json({"sections": {"main": [CONNECT]}}), "application/json", ""), Document)


@pytest.mark.parametrize("version", ["1.0.1", "2.0.0", 1.0, None])
def test_only_version_1_0_0_is_accepted(version):
    assert "version" in refused({"version": version, "sections": {"main": [CONNECT]}})


def test_unquoted_yaml_version_1_0_is_refused_with_advice():
    result = parse(b"version: 1.0\nsections:\n  main: [hangup]\n", "application/yaml", "")
    assert isinstance(result, DocumentError)
    assert "quoted" in result.message


def test_sections_are_required():
    assert "sections: missing" in refused({"version": "1.0.0"})


def test_the_main_section_is_required():
    assert "main section is missing" in refused({"version": "1.0.0", "sections": {"other": [CONNECT]}})


@pytest.mark.parametrize("document", [[], "main", 3, None])
def test_a_document_is_a_mapping(document):
    assert "mapping" in refused(document)


def test_unknown_top_level_elements_are_refused():
    assert "unknown top-level element 'routes'" in refused({**swml(CONNECT), "routes": []})


def test_a_section_is_a_non_empty_list():
    assert "sections.main: a section is a list" in refused({"sections": {"main": {"hangup": {}}}})
    assert "sections.other: the section has no methods" in refused(swml(CONNECT, other=[]))


def test_a_method_is_a_one_key_mapping():
    message = refused(swml({"hangup": {}, "connect": {}}))
    assert "sections.main[0]: a method is a mapping with exactly one key" in message
    assert "sections.main[0]" in refused(swml(["hangup"]))


@pytest.mark.parametrize("name", ["hangup", "return", "answer"])
def test_methods_without_arguments_may_be_bare_strings(name):
    parsed(swml(name))


def test_a_method_that_needs_arguments_is_not_a_bare_string():
    assert "sections.main[0].connect: connect needs arguments" in refused(swml("connect"))


@pytest.mark.parametrize("name", sorted(NEEDS_MEDIA))
def test_methods_that_need_media_are_refused_by_name(name):
    message = refused(swml(CONNECT, {name: {}}))
    assert message.startswith(f"sections.main[1].{name}: {name} needs media")


@pytest.mark.parametrize("name", sorted(NOT_SUPPORTED))
def test_methods_sipline_cannot_carry_out_are_refused_with_the_reason(name):
    assert f"{name} is not supported: {NOT_SUPPORTED[name]}" in refused(swml({name: {}}))


def test_unknown_methods_are_refused():
    message = refused(swml({"dial": {"to": "sip:a@b"}}))
    assert "sections.main[0]: 'dial' is not an SWML method" in message
    assert "connect" in message  # says what runs


def test_errors_name_the_section_index_and_field_in_other_sections_and_blocks():
    document = swml(
        {"execute": {"dest": "sub"}},
        sub=[{"switch": {"variable": "x", "case": {"a": [{"hangup": {"reason": "later"}}]}}}],
    )
    assert refused(document).startswith("sections.sub[0].switch.case.a[0].hangup.reason: must be one of")


# connect


def test_connect_needs_exactly_one_of_to_serial_parallel_and_serial_parallel():
    assert "give exactly one of to, serial" in refused(swml({"connect": {"from": "+15550001111"}}))
    both = {"connect": {"to": "sip:a@b", "serial": [{"to": "sip:c@d"}]}}
    assert "(got to, serial)" in refused(swml(both))


@pytest.mark.parametrize(
    "to", ["sip:alice@example.com", "sips:alice@example.com;transport=tls", "+15551230000", "1001"]
)
def test_connect_to_takes_a_sip_uri_or_a_number(to):
    parsed(swml({"connect": {"to": to}}))


@pytest.mark.parametrize(
    ("to", "says"),
    [
        ("queue:support", "queues need media"),
        ("stream:wss://example.com/audio", "streams need media"),
        ("/public/test_room", "Call Fabric resources"),
        ("alice@example.com", "neither a sip: URI nor a number"),
        ("sip:", "not a SIP URI"),
        ("sip:a b@c", "not a SIP URI"),
    ],
)
def test_connect_to_refuses_what_it_cannot_dial(to, says):
    message = refused(swml({"connect": {"to": to}}))
    assert message.startswith("sections.main[0].connect.to: ") and says in message


def test_an_unquoted_yaml_number_in_to_is_refused_with_advice():
    result = parse(b"sections:\n  main:\n    - connect:\n        to: +15551230000\n", "application/yaml", "")
    assert isinstance(result, DocumentError)
    assert "connect.to: must be a string, got a number (quote it in YAML)" in result.message


@pytest.mark.parametrize(("timeout", "ok"), [(1, True), (600, True), (0, False), (601, False), (-5, False)])
def test_connect_timeout_is_1_to_600_seconds(timeout, ok):
    document = swml({"connect": {"to": "sip:a@b", "timeout": timeout}})
    if ok:
        parsed(document)
    else:
        assert "connect.timeout: must be from 1 to 600" in refused(document)


@pytest.mark.parametrize("timeout", ["30", 30.5, True, None, [30]])
def test_connect_timeout_is_an_integer(timeout):
    assert "connect.timeout: must be an integer" in refused(swml({"connect": {"to": "sip:a@b", "timeout": timeout}}))


@pytest.mark.parametrize(("limit", "ok"), [(1, True), (14400, True), (0, False), (14401, False)])
def test_connect_max_duration_is_1_to_14400_seconds(limit, ok):
    document = swml({"connect": {"to": "sip:a@b", "max_duration": limit}})
    if ok:
        parsed(document)
    else:
        assert "connect.max_duration: must be from 1 to 14400" in refused(document)


def test_connect_answer_on_bridge_is_a_boolean():
    parsed(swml({"connect": {"to": "sip:a@b", "answer_on_bridge": True}}))
    assert "answer_on_bridge: must be true or false" in refused(
        swml({"connect": {"to": "sip:a@b", "answer_on_bridge": "yes"}})
    )


def test_connect_headers_are_a_list_of_name_and_value_or_a_mapping():
    parsed(swml({"connect": {"to": "sip:a@b", "headers": [{"name": "X-Account", "value": "42"}]}}))
    parsed(swml({"connect": {"to": "sip:a@b", "headers": {"X-Account": "42"}}}))
    missing = refused(swml({"connect": {"to": "sip:a@b", "headers": [{"name": "X-Account"}]}}))
    assert "connect.headers[0].value: missing" in missing


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ({"name": "X Bad", "value": "1"}, "not a SIP header name"),
        ({"name": "X-Inject", "value": "1\r\nVia: evil"}, "control characters"),
        ({"name": "X-Number", "value": 1}, "must be a string"),
    ],
)
def test_connect_headers_that_would_break_the_invite_are_refused(header, says):
    assert says in refused(swml({"connect": {"to": "sip:a@b", "headers": [header]}}))


def test_connect_codecs_are_comma_separated_or_a_list():
    parsed(swml({"connect": {"to": "sip:a@b", "codecs": "PCMU,PCMA,OPUS"}}))
    parsed(swml({"connect": {"to": "sip:a@b", "codecs": ["PCMU", "OPUS"]}}))
    assert "not a codec name" in refused(swml({"connect": {"to": "sip:a@b", "codecs": "PCMU;rm -rf"}}))


def test_connect_call_state_url_is_an_http_url_and_events_are_signalwires():
    parsed(
        swml(
            {
                "connect": {
                    "to": "sip:a@b",
                    "call_state_url": "https://user:pw@hooks.example.com/state",
                    "call_state_events": ["created", "ringing", "answered", "ended"],
                }
            }
        )
    )
    assert "call_state_url: 'ftp://x' is not an http(s) URL" in refused(
        swml({"connect": {"to": "sip:a@b", "call_state_url": "ftp://x"}})
    )
    assert "call_state_events[0]: must be one of created, ringing, answered, ended" in refused(
        swml({"connect": {"to": "sip:a@b", "call_state_events": ["completed"]}})
    )


def test_connect_username_and_password_belong_to_each_destination_when_dialling_several():
    parsed(swml({"connect": {"to": "sip:a@b", "username": "u", "password": "p"}}))
    parsed(swml({"connect": {"serial": [{"to": "sip:a@b", "username": "u", "password": "p"}]}}))
    message = refused(swml({"connect": {"serial": [{"to": "sip:a@b"}], "username": "u"}}))
    assert "connect.username: with serial, set username and password on each destination" in message


def test_connect_destinations_need_to():
    assert "connect.parallel[1].to: missing" in refused(
        swml({"connect": {"parallel": [{"to": "sip:a@b"}, {"from": "+1555"}]}})
    )


def test_connect_lists_are_non_empty_and_bounded():
    assert "connect.serial: must be a non-empty list" in refused(swml({"connect": {"serial": []}}))
    eleven = [{"to": f"sip:a{i}@b"} for i in range(11)]
    assert "connect.parallel: at most 10 entries" in refused(swml({"connect": {"parallel": eleven}}))
    assert "connect.serial_parallel[0]: must be a non-empty list" in refused(
        swml({"connect": {"serial_parallel": [{"to": "sip:a@b"}]}})
    )


def test_destinations_rung_together_share_caller_id_and_timeout():
    differing = {"connect": {"parallel": [{"to": "sip:a@b", "from": "+1555"}, {"to": "sip:c@d", "from": "+1666"}]}}
    assert "connect.parallel[1].from: destinations rung together share one from" in refused(swml(differing))
    timeouts = {"connect": {"serial_parallel": [[{"to": "sip:a@b", "timeout": 10}, {"to": "sip:c@d"}]]}}
    assert "connect.serial_parallel[0][1].timeout" in refused(swml(timeouts))
    parsed(swml({"connect": {"serial": [{"to": "sip:a@b", "from": "+1555"}, {"to": "sip:c@d", "from": "+1666"}]}}))


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("ringback", ["https://example.com/ring.mp3"], "needs media"),
        ("confirm", "https://example.com/confirm", "confirm runs SWML on the callee's leg"),
        ("status_url", "https://example.com/status", "use call_state_url"),
        ("webrtc_media", True, "only false is accepted"),
        ("encryption", "mandatory", "set encryption on the endpoint"),
        ("realtime", True, "stream destinations need media"),
        ("transfer_after_bridge", "https://example.com/after", "put the methods after the connect"),
    ],
)
def test_connect_fields_sipline_cannot_honour_are_refused_by_name(field, value, says):
    message = refused(swml({"connect": {"to": "sip:a@b", field: value}}))
    assert f"connect.{field}" in message and says in message


def test_connect_fields_at_their_harmless_default_are_accepted():
    parsed(swml({"connect": {"to": "sip:a@b", "webrtc_media": False, "encryption": "optional"}}))


def test_connect_unknown_fields_are_refused_and_the_known_ones_listed():
    message = refused(swml({"connect": {"to": "sip:a@b", "callerId": "+1555"}}))
    assert "connect: unknown field 'callerId' (known: " in message


def test_connect_result_is_a_switch_or_a_cond():
    parsed(swml({"connect": {"to": "sip:a@b", "result": {"case": {"failed": ["hangup"]}, "default": []}}}))
    parsed(swml({"connect": {"to": "sip:a@b", "result": [{"when": "connect_result == 'failed'", "then": ["hangup"]}]}}))
    assert "connect.result.case: missing" in refused(swml({"connect": {"to": "sip:a@b", "result": {"default": []}}}))


# hangup, sleep


@pytest.mark.parametrize("reason", ["hangup", "busy", "decline"])
def test_hangup_reasons(reason):
    parsed(swml({"hangup": {"reason": reason}}))


def test_hangup_refuses_other_reasons():
    assert "hangup.reason: must be one of hangup, busy, decline, got 'rejected'" in refused(
        swml({"hangup": {"reason": "rejected"}})
    )


@pytest.mark.parametrize("duration", [0, 5000, 14_400_000, -1])
def test_sleep_takes_milliseconds_from_0_to_4_hours_or_minus_1(duration):
    parsed(swml({"sleep": duration}))
    parsed(swml({"sleep": {"duration": duration}}))


@pytest.mark.parametrize("duration", [-2, 14_400_001])
def test_sleep_out_of_bounds_is_refused(duration):
    assert "sleep: must be from 0 to 14400000 or -1" in refused(swml({"sleep": duration}))
    assert "sleep.duration: must be from" in refused(swml({"sleep": {"duration": duration}}))


def test_sleep_needs_a_duration():
    assert "sleep.duration: missing" in refused(swml({"sleep": {}}))
    assert "sleep: must be an integer, got a number" in refused(swml({"sleep": 1.5}))


# transfer, execute


def test_transfer_dest_is_a_section_a_url_or_an_inline_document():
    parsed(swml({"transfer": {"dest": "other"}}, other=["hangup"]))
    parsed(swml({"transfer": {"dest": "https://app.example.com/next", "params": {"where": "sales"}}}))
    parsed(swml({"transfer": {"dest": '{"version": "1.0.0", "sections": {"main": ["hangup"]}}'}}))


def test_transfer_to_a_section_that_does_not_exist_is_refused():
    message = refused(swml({"transfer": {"dest": "sales"}}))
    assert "transfer.dest: 'sales' is not a section of this document, an http(s) URL or an inline" in message


def test_transfer_refuses_a_broken_inline_document_and_relay_applications():
    assert "transfer.dest: the inline document: " in refused(swml({"transfer": {"dest": '{"sections": {}}'}}))
    assert "RELAY applications are not supported" in refused(swml({"transfer": {"dest": "relay:app"}}))


def test_transfer_needs_dest_and_takes_params_and_meta_as_mappings():
    assert "transfer.dest: missing" in refused(swml({"transfer": {"params": {}}}))
    assert "transfer.params: must be a mapping" in refused(swml({"transfer": {"dest": "main", "params": ["x"]}}))
    parsed(swml({"transfer": {"dest": "main", "meta": {"anything": [1, 2]}}}))


def test_execute_takes_on_return_and_result():
    parsed(
        swml(
            {"execute": {"dest": "sub", "on_return": ["hangup"], "result": {"case": {"ok": []}}}},
            sub=[{"return": "ok"}],
        )
    )


# goto, label


def test_goto_jumps_to_a_label_of_its_own_section():
    parsed(swml({"label": "top"}, CONNECT, {"goto": {"label": "top", "max": 3}}))
    parsed(swml({"label": "top"}, CONNECT, {"goto": "top"}))
    assert "goto.label: there is no label 'top' in section 'other'" in refused(
        swml({"label": "top"}, {"execute": {"dest": "other"}}, other=[{"goto": "top"}])
    )


@pytest.mark.parametrize("limit", [0, 101])
def test_goto_max_is_1_to_100(limit):
    assert "goto.max: must be from 1 to 100" in refused(swml({"label": "a"}, {"goto": {"label": "a", "max": limit}}))


def test_goto_when_takes_a_simple_condition_and_refuses_javascript():
    parsed(swml({"label": "a"}, {"goto": {"label": "a", "when": "vars.retries < 3 && call.type == 'sip'"}}))
    message = refused(swml({"label": "a"}, {"goto": {"label": "a", "when": "call.type.toLowerCase() == 'sip'"}}))
    assert "goto.when: call.type.toLowerCase(...): conditions may only compare" in message


def test_labels_are_unique_plain_strings():
    assert "label 'a' is already at index 0" in refused(swml({"label": "a"}, {"label": "a"}))
    assert "a label is a non-empty string" in refused(swml({"label": 3}))
    assert "a label is a plain name" in refused(swml({"label": "%{vars.x}"}))


# set, unset, return, switch, cond, answer


def test_set_takes_variable_names_and_json_values():
    parsed(swml({"set": {"count": 1, "user": {"name": "Alice"}, "list": [1, "two"], "flag": True}}))
    assert "set.user-name: a variable name is letters" in refused(swml({"set": {"user-name": 1}}))
    assert "set: must be a mapping" in refused(swml({"set": ["a"]}))


def test_unset_takes_a_name_or_a_list_of_names():
    parsed(swml({"unset": "count"}))
    parsed(swml({"unset": ["count", "user"]}))
    assert "unset[1]: must be a variable name" in refused(swml({"unset": ["a", 1]}))


def test_return_takes_any_value():
    parsed(swml({"return": {"status": "ok", "items": [1, 2]}}))
    parsed(swml({"return": None}))


def test_switch_needs_variable_and_case():
    parsed(swml({"switch": {"variable": "call.type", "case": {"sip": ["hangup"]}, "default": []}}))
    assert "switch.variable: missing" in refused(swml({"switch": {"case": {}}}))
    assert "switch.variable: must be a variable path" in refused(swml({"switch": {"variable": "a b", "case": {}}}))


def test_cond_takes_when_then_and_else():
    parsed(swml({"cond": [{"when": "call.type == 'sip'", "then": ["hangup"]}, {"else": [{"sleep": 10}]}]}))
    assert "cond[0].then: missing" in refused(swml({"cond": [{"when": "true"}]}))
    assert "cond[0].when: missing" in refused(swml({"cond": [{"then": []}]}))


def test_answer_is_accepted_with_its_fields_checked():
    parsed(swml({"answer": {"max_duration": 3600, "codecs": "PCMU,OPUS"}}, CONNECT))
    assert "answer.max_duration: must be from 1 to 14400" in refused(swml({"answer": {"max_duration": 0}}))


# Variables are checked when the document is read


def test_variables_in_string_fields_are_accepted():
    parsed(swml({"connect": {"to": "%{vars.target}", "from": "${call.from}", "timeout": "%{vars.timeout}"}}))


@pytest.mark.parametrize("text", ["${call.from.substring(0, 3)}", "%{vars.a + 1}", "%{call.from", "${ {a: 1} }", "%{}"])
def test_javascript_in_placeholders_is_refused_clearly(text):
    message = refused(swml({"connect": {"to": text}}))
    assert message.startswith("sections.main[0].connect.to: ")
    assert "plain" in message


def test_placeholders_in_conditions_are_refused_with_the_way_to_write_them():
    message = refused(swml({"cond": [{"when": "${prompt_value} == 1", "then": []}]}))
    assert "write variables in a condition without ${...}" in message


# The same documents in YAML


@pytest.mark.parametrize(
    "document",
    [
        swml({"connect": {"to": "sip:a@b", "timeout": 20, "headers": [{"name": "X-A", "value": "1"}]}}),
        swml({"connect": {"serial_parallel": [[{"to": "sip:a@b"}, {"to": "sip:c@d"}], [{"to": "+15551230000"}]]}}),
        swml({"label": "a"}, {"sleep": {"duration": 100}}, {"goto": {"label": "a", "max": 2}}, "hangup"),
        swml({"execute": {"dest": "sub", "params": {"n": 1}}}, sub=[{"return": "x"}]),
    ],
)
def test_yaml_and_json_read_alike(document):
    assert parsed(document, "yaml") == parsed(document, "json")


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (swml({"connect": {"to": "sip:a@b", "timeout": 0}}), "connect.timeout: must be from 1 to 600"),
        (swml({"hangup": {"reason": "nope"}}), "hangup.reason: must be one of"),
        (swml({"play": {"url": "say:hi"}}), "play needs media"),
    ],
)
def test_yaml_errors_read_as_json_errors(document, says):
    assert says in refused(document, "yaml")
    assert refused(document, "yaml") == refused(document, "json")
