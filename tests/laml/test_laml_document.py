"""parse(): every verb, noun and attribute sipline runs, with its default and its bounds."""

from __future__ import annotations

import pytest

from sipline.handlers.actions import Callback, Target
from sipline.laml import DialVerb, HangupVerb, PauseVerb, RedirectVerb, RejectVerb, parse
from tests.laml.helpers import BASE, dial, document, error

# -- the document --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "xml",
    [
        "<Response/>",
        "<Response></Response>",
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n</Response>\n',
        "<Response><!-- nothing to do --></Response>",
    ],
)
def test_an_empty_response_is_a_document_without_verbs(xml):
    assert document(xml).verbs == ()


def test_the_document_keeps_the_url_it_came_from():
    assert document("<Response/>").url == BASE


def test_verbs_keep_their_order():
    verbs = document("<Response><Pause/><Dial>100</Dial><Hangup/></Response>").verbs
    assert [type(v) for v in verbs] == [PauseVerb, DialVerb, HangupVerb]


def test_the_root_must_be_response():
    assert "root element must be <Response>, not <Dial>" in error("<Dial>100</Dial>").message


def test_element_names_are_case_sensitive():
    assert "<response>" in error("<response/>").message
    message = error("<Response><dial>100</dial></Response>").message
    assert message == "<dial> is not a LaML voice verb (names are case-sensitive: <Dial>?)"


def test_unknown_verbs_are_refused_by_name():
    refused = error("<Response><Teleport/></Response>")
    assert refused.message == "<Teleport> is not a LaML voice verb"
    assert refused.details == {"verb": "Teleport"}


@pytest.mark.parametrize(
    "verb",
    ["Say", "Play", "Gather", "Record", "Echo", "Stream", "Conference", "Enqueue", "Pay", "Queue", "Leave", "Start"],
)
def test_verbs_that_need_media_are_refused_as_such(verb):
    refused = error(f"<Response><{verb}>x</{verb}></Response>")
    assert refused.message == f"<{verb}> needs media (audio to or from the caller), which sipline does not support yet"
    assert refused.details == {"verb": verb}


@pytest.mark.parametrize("verb", ["Sms", "Message", "Refer"])
def test_verbs_sipline_lacks_for_other_reasons_say_not_supported_yet(verb):
    assert error(f"<Response><{verb}>x</{verb}></Response>").message == f"<{verb}> is not supported by sipline yet"


def test_a_media_verb_anywhere_refuses_the_whole_document():
    assert "<Say> needs media" in error("<Response><Dial>100</Dial><Say>bye</Say></Response>").message


def test_unknown_attributes_are_ignored():
    assert document('<Response><Hangup colour="red"/><Dial future="yes">100</Dial></Response>').verbs


def test_attribute_names_are_case_sensitive_so_a_miscased_one_is_ignored():
    assert dial("100", 'TIMEOUT="3"').timeout == 30


def test_a_namespaced_response_is_read_like_a_plain_one():
    assert document('<Response xmlns="urn:example"><Hangup/></Response>').verbs == (HangupVerb(),)


def test_text_between_verbs_is_ignored():
    assert document("<Response>hello<Hangup/>there</Response>").verbs == (HangupVerb(),)


# -- content types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/xml", "application/xml", "text/xml; charset=utf-8", "Application/XML;charset=UTF-8", "text/html"],
)
def test_xml_content_types_are_read(content_type):
    assert parse(b"<Response/>", content_type, BASE) == document("<Response/>")


def test_a_json_content_type_is_refused():
    refused = error("<Response/>", "application/json")
    assert (
        refused.message
        == 'content type "application/json" is not a LaML document (text/xml or application/xml expected)'
    )


@pytest.mark.parametrize("content_type", ["text/plain", "audio/mpeg", "audio/wav; rate=8000"])
def test_text_and_audio_bodies_would_need_media(content_type):
    assert "needs media" in error("hello", content_type).message


# -- <Hangup>, <Reject>, <Redirect>, <Pause> -----------------------------------------------------


def test_hangup():
    assert document("<Response><Hangup/></Response>").verbs == (HangupVerb(),)


def test_hangup_takes_no_nested_elements():
    assert error("<Response><Hangup><Pause/></Hangup></Response>").message == "<Hangup> cannot contain <Pause>"


def test_reject_defaults_to_rejected():
    assert document("<Response><Reject/></Response>").verbs == (RejectVerb("rejected"),)


@pytest.mark.parametrize(("value", "reason"), [("busy", "busy"), ("rejected", "rejected"), ("BUSY", "busy")])
def test_reject_reason(value, reason):
    assert document(f'<Response><Reject reason="{value}"/></Response>').verbs == (RejectVerb(reason),)


def test_reject_reason_outside_busy_and_rejected_is_refused():
    refused = error('<Response><Reject reason="later"/></Response>')
    assert refused.message == '<Reject> reason="later": must be one of rejected, busy'
    assert refused.details == {"verb": "Reject", "attribute": "reason", "value": "later", "allowed": "rejected|busy"}


def test_redirect_to_an_absolute_url_defaults_to_post():
    verbs = document("<Response><Redirect>https://other.example.org/next</Redirect></Response>").verbs
    assert verbs == (RedirectVerb("https://other.example.org/next", "POST"),)


@pytest.mark.parametrize(
    ("written", "resolved"),
    [
        ("next", "https://app.example.com/voice/next"),
        ("/other", "https://app.example.com/other"),
        ("../up", "https://app.example.com/up"),
        ("?step=2", "https://app.example.com/voice/start?step=2"),
        ("//cdn.example.net/x", "https://cdn.example.net/x"),
        ("\n   next#rt=2000\n", "https://app.example.com/voice/next#rt=2000"),
    ],
)
def test_redirect_urls_are_resolved_against_the_documents_url(written, resolved):
    (verb,) = document(f"<Response><Redirect>{written}</Redirect></Response>").verbs
    assert verb == RedirectVerb(resolved)


@pytest.mark.parametrize("method", ["GET", "get", "POST"])
def test_redirect_method(method):
    (verb,) = document(f'<Response><Redirect method="{method}">next</Redirect></Response>').verbs
    assert isinstance(verb, RedirectVerb) and verb.method == method.upper()


def test_redirect_method_other_than_get_or_post_is_refused():
    assert error('<Response><Redirect method="PUT">x</Redirect></Response>').details["allowed"] == "GET|POST"


def test_redirect_without_a_url_is_refused():
    assert "<Redirect> needs a URL" in error("<Response><Redirect/></Response>").message


@pytest.mark.parametrize("url", ["ftp://example.com/x", "mailto:a@example.com", "https://", "http://[::1/x", "a b"])
def test_redirect_to_something_not_http_is_refused(url):
    assert error(f"<Response><Redirect>{url}</Redirect></Response>").message.startswith("<Redirect>")


def test_a_relative_url_needs_an_http_document_url():
    refused = parse(b"<Response><Redirect>next</Redirect></Response>", None, "")
    assert getattr(refused, "message", "").endswith(
        "must be an absolute http(s) URL, or one relative to the document's URL"
    )


def test_pause_defaults_to_one_second():
    assert document("<Response><Pause/></Response>").verbs == (PauseVerb(1),)


@pytest.mark.parametrize("length", [1, 8, 600])
def test_pause_length_within_bounds(length):
    assert document(f'<Response><Pause length="{length}"/></Response>').verbs == (PauseVerb(length),)


@pytest.mark.parametrize("length", ["0", "601", "1.5", "-1", "soon", "+3"])
def test_pause_length_outside_1_to_600_is_refused(length):
    refused = error(f'<Response><Pause length="{length}"/></Response>')
    assert refused.message == f'<Pause> length="{length}": must be a whole number from 1 to 600 (seconds)'


# -- <Dial> ----------------------------------------------------------------------------------------


def test_dial_defaults():
    assert dial("<Sip>sip:alice@example.com</Sip>") == DialVerb(
        targets=(Target("sip:alice@example.com"),),
        action=None,
        method="POST",
        timeout=30,
        caller_id=None,
        caller_name=None,
        time_limit=14400,
        answer_on_bridge=False,
    )


@pytest.mark.parametrize("timeout", [5, 30, 600])
def test_dial_timeout_within_5_to_600(timeout):
    assert dial("100", f'timeout="{timeout}"').timeout == timeout


@pytest.mark.parametrize("timeout", ["4", "601", "0", "thirty", "30.5", "-30"])
def test_dial_timeout_outside_5_to_600_is_refused(timeout):
    refused = error(f'<Response><Dial timeout="{timeout}">100</Dial></Response>')
    assert refused.message == f'<Dial> timeout="{timeout}": must be a whole number from 5 to 600 (seconds)'
    assert refused.details == {"verb": "Dial", "attribute": "timeout", "value": timeout, "allowed": "5..600"}


@pytest.mark.parametrize("limit", [1, 14400, 86400])
def test_dial_time_limit_within_1_to_86400(limit):
    assert dial("100", f'timeLimit="{limit}"').time_limit == limit


@pytest.mark.parametrize("limit", ["0", "86401"])
def test_dial_time_limit_outside_bounds_is_refused(limit):
    assert "from 1 to 86400" in error(f'<Response><Dial timeLimit="{limit}">100</Dial></Response>').message


def test_dial_action_is_resolved_against_the_documents_url():
    assert dial("100", 'action="/after-dial"').action == "https://app.example.com/after-dial"


def test_dial_action_absolute():
    assert dial("100", 'action="http://other.example/x?a=1&amp;b=2"').action == "http://other.example/x?a=1&b=2"


def test_an_empty_dial_action_is_no_action():
    assert dial("100", 'action=""').action is None


def test_dial_action_must_be_http():
    refused = error('<Response><Dial action="javascript:alert(1)">100</Dial></Response>')
    assert refused.details["attribute"] == "action"


@pytest.mark.parametrize(("written", "method"), [("GET", "GET"), ("post", "POST")])
def test_dial_method(written, method):
    assert dial("100", f'method="{written}"').method == method


def test_dial_method_put_is_refused():
    assert error('<Response><Dial method="PUT">100</Dial></Response>').message == (
        '<Dial> method="PUT": must be one of GET, POST'
    )


@pytest.mark.parametrize("caller_id", ["+15551230000", "alice", "front_desk.1", "a,b-c"])
def test_dial_caller_id(caller_id):
    assert dial("100", f'callerId="{caller_id}"').caller_id == caller_id


@pytest.mark.parametrize("caller_id", ["alice smith", "a@b", "x" * 65, "<sip>"])
def test_dial_caller_id_must_look_like_a_sip_user(caller_id):
    refused = error(
        f'<Response><Dial callerId="{caller_id.replace("<", "&lt;").replace(">", "&gt;")}">1</Dial></Response>'
    )
    assert refused.details["attribute"] == "callerId"


def test_dial_caller_name_up_to_70_characters():
    assert dial("100", f'callerName="{"N" * 70}"').caller_name == "N" * 70
    assert dial("100", 'callerName="Front Desk (Acme)"').caller_name == "Front Desk (Acme)"


def test_dial_caller_name_over_70_characters_is_refused():
    refused = error(f'<Response><Dial callerName="{"N" * 71}">100</Dial></Response>')
    assert refused.details["allowed"] == "<= 70 characters"


def test_dial_caller_name_with_control_characters_is_refused():
    assert "control characters" in error('<Response><Dial callerName="a&#9;b">1</Dial></Response>').message


@pytest.mark.parametrize(("value", "flag"), [("true", True), ("false", False), ("True", True)])
def test_dial_answer_on_bridge(value, flag):
    assert dial("100", f'answerOnBridge="{value}"').answer_on_bridge is flag


def test_dial_answer_on_bridge_must_be_true_or_false():
    assert error('<Response><Dial answerOnBridge="yes">1</Dial></Response>').details["allowed"] == "true|false"


def test_dial_hang_up_on_star_false_is_accepted():
    assert dial("100", 'hangupOnStar="false"').targets


def test_dial_hang_up_on_star_needs_media():
    refused = error('<Response><Dial hangupOnStar="true">1</Dial></Response>')
    assert refused.message.startswith('<Dial> hangupOnStar="true": hanging up on * needs media')


@pytest.mark.parametrize("record", ["do-not-record", "false"])
def test_dial_record_off_is_accepted(record):
    assert dial("100", f'record="{record}"').targets


@pytest.mark.parametrize("record", ["record-from-answer", "record-from-ringing-dual", "true"])
def test_dial_recording_needs_media(record):
    assert "recording needs media" in error(f'<Response><Dial record="{record}">1</Dial></Response>').message


def test_dial_record_unknown_value_is_refused():
    assert "must be one of do-not-record" in error('<Response><Dial record="maybe">1</Dial></Response>').message


def test_dial_ring_tone_needs_media():
    assert "ring tone" in error('<Response><Dial ringTone="uk">1</Dial></Response>').message


def test_dial_refer_url_is_not_supported_yet():
    assert "not supported by sipline yet" in error('<Response><Dial referUrl="/refer">1</Dial></Response>').message


def test_recording_options_without_recording_are_inert():
    assert dial("100", 'trim="trim-silence" recordingStatusCallback="/rec" recordingTrack="both"').targets


def test_dial_without_anything_to_dial_is_refused():
    for inner in ["", "   ", "<!-- nobody -->"]:
        assert error(f"<Response><Dial>{inner}</Dial></Response>").message.startswith("<Dial> needs something to dial")


# -- bare numbers and <Number> ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("100", "100"),
        ("+15551230000", "+15551230000"),
        ("123-456-7890", "1234567890"),
        (" +1 (555) 123.0000 ", "+15551230000"),
    ],
)
def test_bare_text_in_dial_is_a_number_without_its_formatting(text, number):
    assert dial(text).targets == (Target(uri=number, kind="number"),)


def test_bare_text_that_is_not_a_number_is_refused():
    assert error("<Response><Dial>alice</Dial></Response>").message == (
        '<Dial> "alice" is not a phone number: digits, optionally after a +'
    )


def test_a_sip_uri_as_bare_text_points_to_sip():
    assert "(a SIP URI goes in <Sip>)" in error("<Response><Dial>sip:alice@example.com</Dial></Response>").message


def test_number_noun():
    assert dial("<Number>+18004445566</Number>", 'callerId="+18007778899"').targets == (
        Target(uri="+18004445566", kind="number"),
    )


def test_numbers_ring_together_up_to_ten():
    numbers = "".join(f"<Number>10{i}</Number>" for i in range(10))
    assert [t.uri for t in dial(numbers).targets] == [f"10{i}" for i in range(10)]


def test_more_than_ten_targets_are_refused():
    numbers = "".join(f"<Number>10{i}</Number>" for i in range(11))
    assert error(f"<Response><Dial>{numbers}</Dial></Response>").message == (
        "<Dial> may ring at most 10 targets at once, not 11"
    )


def test_number_status_callback():
    (target,) = dial('<Number statusCallback="events" statusCallbackEvent="initiated completed">100</Number>').targets
    assert target.callback == Callback(
        url="https://app.example.com/voice/events", method="POST", events=frozenset({"initiated", "completed"})
    )


def test_number_without_text_is_refused():
    assert "<Number> needs a number" in error("<Response><Dial><Number/></Dial></Response>").message


def test_number_send_digits_needs_media():
    assert (
        "sending digits needs media"
        in error('<Response><Dial><Number sendDigits="ww5">1</Number></Dial></Response>').message
    )


def test_number_whisper_url_is_not_supported_yet():
    refused = error('<Response><Dial><Number url="/whisper">1</Number></Dial></Response>')
    assert refused.details["attribute"] == "url" and "not supported by sipline yet" in refused.message


def test_bare_text_and_nouns_do_not_mix():
    assert "not both" in error("<Response><Dial>100<Number>101</Number></Dial></Response>").message
    assert "not both" in error("<Response><Dial><Number>101</Number>100</Dial></Response>").message


@pytest.mark.parametrize(
    ("noun", "why"), [("Conference", "needs media"), ("Queue", "needs media"), ("Client", "not supported")]
)
def test_dial_nouns_sipline_lacks(noun, why):
    refused = error(f"<Response><Dial><{noun}>x</{noun}></Dial></Response>")
    assert refused.message.startswith(f"<Dial>: <{noun}>") and why in refused.message


def test_an_unknown_dial_noun_is_refused():
    assert error("<Response><Dial><Phone>1</Phone></Dial></Response>").message == (
        "<Dial>: <Phone> is not a noun of <Dial> (<Sip> or <Number>)"
    )


# -- <Sip> -----------------------------------------------------------------------------------------


def sip(text: str, attributes: str = "") -> Target:
    (target,) = dial(f"<Sip {attributes}>{text}</Sip>").targets
    return target


def test_sip_noun_dials_its_uri():
    assert sip("sip:alice@example.com") == Target(uri="sip:alice@example.com", kind="sip")


def test_sip_uri_around_whitespace_is_trimmed():
    assert sip("\n            sip:dan@example.com\n        ").uri == "sip:dan@example.com"


@pytest.mark.parametrize(
    "uri",
    [
        "sip:alice@example.com:5080",
        "sips:alice@example.com",
        "sip:pbx.example.com",
        "sip:+15551230000@carrier.example;user=phone",
        "sip:alice@[2001:db8::1]:5060",
    ],
)
def test_sip_uris_sipline_dials_as_written(uri):
    assert sip(uri).uri == uri


def test_sip_scheme_is_lowercased():
    assert sip("SIP:alice@example.com").uri == "sip:alice@example.com"


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls", "TLS"])
def test_sip_transport_udp_tcp_or_tls(transport):
    assert sip(f"sip:alice@example.com;transport={transport}").uri == f"sip:alice@example.com;transport={transport}"


@pytest.mark.parametrize("transport", ["ws", "sctp", ""])
def test_sip_other_transports_are_refused(transport):
    refused = error(f"<Response><Dial><Sip>sip:a@example.com;transport={transport}</Sip></Dial></Response>")
    assert refused.message.endswith("transport must be udp, tcp or tls")


def test_sip_uri_headers_become_target_headers():
    target = sip("sip:alice@example.com?X-Header=1")
    assert (target.uri, target.headers) == ("sip:alice@example.com", (("X-Header", "1"),))


def test_sip_uri_several_headers_keep_their_order():
    target = sip("sip:alice@example.com;transport=tcp?X-B=2&amp;X-A=1&amp;X-Empty=")
    assert target.uri == "sip:alice@example.com;transport=tcp"
    assert target.headers == (("X-B", "2"), ("X-A", "1"), ("X-Empty", ""))


def test_sip_uri_headers_are_percent_decoded():
    assert sip("sip:a@example.com?X-Name=J%C3%BCrgen%20M%26Co&amp;x-plus=a+b").headers == (
        ("X-Name", "Jürgen M&Co"),
        ("x-plus", "a+b"),
    )


def test_sip_uri_user_to_user_header_is_allowed():
    assert sip("sip:a@example.com?User-to-User=56a390f3d2b7310023a2;encoding=hex").headers == (
        ("User-to-User", "56a390f3d2b7310023a2;encoding=hex"),
    )


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("customheader=foo", 'only X- headers (and User-to-User) may be added to the INVITE, not "customheader"'),
        ("Via=SIP/2.0/UDP%20evil", 'not "Via"'),
        ("X-A=a%0D%0AVia:%20evil", 'header "X-A" must not contain control characters'),
        ("X-A=%FF", "%-escapes must decode to UTF-8"),
        ("X-A", "is not a header"),
        ("X-A%3AB=1", "is not a header"),
    ],
)
def test_sip_uri_headers_that_could_harm_the_invite_are_refused(query, why):
    refused = error(f"<Response><Dial><Sip>sip:a@example.com?{query}</Sip></Dial></Response>")
    assert why in refused.message


@pytest.mark.parametrize(
    "text", ["", "alice@example.com", "http://example.com", "sip:", "sip:a@", "sip:a b@example.com"]
)
def test_things_that_are_not_sip_uris_are_refused(text):
    assert error(f"<Response><Dial><Sip>{text}</Sip></Dial></Response>").message.startswith("<Sip>")


def test_sip_uri_over_255_characters_is_refused():
    uri = "sip:" + "a" * 240 + "@example.com"
    assert "at most 255 characters" in error(f"<Response><Dial><Sip>{uri}</Sip></Dial></Response>").message


def test_sip_uri_headers_over_1024_characters_are_refused():
    query = "X-Big=" + "v" * 1020
    assert "at most 1024 characters" in error(f"<Response><Dial><Sip>sip:a@b?{query}</Sip></Dial></Response>").message


def test_sip_credentials():
    target = sip("sip:bob@example.com", 'username="admin" password="1234"')
    assert (target.username, target.password) == ("admin", "1234")


def test_sip_credentials_are_kept_byte_for_byte():
    target = sip("sip:bob@example.com", 'username="admin" password=" s3cret "')
    assert target.password == " s3cret "


@pytest.mark.parametrize("attributes", ['username="admin"', 'password="1234"'])
def test_sip_username_and_password_go_together(attributes):
    assert "give both or neither" in error(f"<Response><Dial><Sip {attributes}>sip:b@x</Sip></Dial></Response>").message


@pytest.mark.parametrize(
    ("codecs", "parsed"),
    [("PCMU,PCMA", ("PCMU", "PCMA")), ("opus, g722", ("OPUS", "G722")), ("PCMU,PCMU,G729", ("PCMU", "G729")), ("", ())],
)
def test_sip_codecs_in_their_order(codecs, parsed):
    assert sip("sip:a@example.com", f'codecs="{codecs}"').codecs == parsed


def test_sip_codecs_outside_signalwires_list_are_refused():
    refused = error('<Response><Dial><Sip codecs="PCMU,SPEEX">sip:a@b</Sip></Dial></Response>')
    assert refused.message == '<Sip> codecs="SPEEX": each codec must be one of PCMU,PCMA,G722,G729,OPUS'


def test_sip_status_callback_defaults_to_completed_by_post():
    assert sip("sip:a@example.com", 'statusCallback="https://hooks.example/leg"').callback == Callback(
        url="https://hooks.example/leg", method="POST", events=frozenset({"completed"})
    )


def test_sip_status_callback_events_and_method():
    target = sip(
        "sip:a@example.com",
        'statusCallback="leg" statusCallbackEvent="initiated ringing answered completed" statusCallbackMethod="GET"',
    )
    assert target.callback == Callback(
        url="https://app.example.com/voice/leg",
        method="GET",
        events=frozenset({"initiated", "ringing", "answered", "completed"}),
    )


def test_sip_status_callback_events_may_be_comma_separated():
    target = sip("sip:a@example.com", 'statusCallback="leg" statusCallbackEvent="ringing,answered"')
    assert target.callback is not None and target.callback.events == {"ringing", "answered"}


def test_sip_status_callback_unknown_event_is_refused():
    refused = error(
        '<Response><Dial><Sip statusCallback="x" statusCallbackEvent="ringing hungup">sip:a@b</Sip></Dial></Response>'
    )
    assert refused.message == (
        '<Sip> statusCallbackEvent="hungup": each event must be one of initiated ringing answered completed'
    )


def test_sip_status_callback_events_without_a_url_are_checked_but_call_nobody():
    assert sip("sip:a@example.com", 'statusCallbackEvent="ringing"').callback is None
    assert error('<Response><Dial><Sip statusCallbackMethod="PUT">sip:a@b</Sip></Dial></Response>')


@pytest.mark.parametrize("value", ["0", "600"])
def test_sip_session_timeout_is_accepted(value):
    assert sip("sip:a@example.com", f'sessionTimeout="{value}"').uri


def test_sip_session_timeout_must_be_a_whole_number():
    assert error('<Response><Dial><Sip sessionTimeout="-1">sip:a@b</Sip></Dial></Response>')


def test_sip_whisper_url_is_not_supported_yet():
    assert "whisper" in error('<Response><Dial><Sip url="/whisper">sip:a@b</Sip></Dial></Response>').message


def test_sip_takes_no_nested_elements():
    assert error("<Response><Dial><Sip><Number>1</Number></Sip></Dial></Response>").message == (
        "<Sip> cannot contain <Number>"
    )


def test_several_sip_nouns_ring_together():
    targets = dial("<Sip>sip:a@example.com</Sip><Sip>sip:b@example.com;transport=tcp</Sip>").targets
    assert [t.uri for t in targets] == ["sip:a@example.com", "sip:b@example.com;transport=tcp"]


def test_sip_and_number_do_not_mix_in_one_dial():
    assert "cannot mix <Sip>" in error("<Response><Dial><Sip>sip:a@b</Sip><Number>1</Number></Dial></Response>").message


# -- documents as the Twilio and SignalWire docs write them --------------------------------------

REAL_WORLD = {
    "sip with a header": (
        "<Response><Dial><Sip>sip:alice@example.com?X-Header=1</Sip></Dial></Response>",
        (Target("sip:alice@example.com", headers=(("X-Header", "1"),)),),
    ),
    "sip with credentials": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n    <Dial>\n'
        '        <Sip username="admin" password="1234">sip:bob@example.com</Sip>\n    </Dial>\n</Response>',
        (Target("sip:bob@example.com", username="admin", password="1234"),),
    ),
    "several sip": (
        "<Response><Dial><Sip>sip:alice@example.com</Sip><Sip>sip:bob@example.com;transport=tls</Sip></Dial></Response>",
        (Target("sip:alice@example.com"), Target("sip:bob@example.com;transport=tls")),
    ),
    "number": (
        '<Response><Dial callerId="+18007778899"><Number>+18004445566</Number></Dial></Response>',
        (Target("+18004445566", kind="number"),),
    ),
    "bare text": (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response>\n    <Dial>123-456-7890</Dial>\n</Response>',
        (Target("1234567890", kind="number"),),
    ),
    "sip with dial attributes and a status callback": (
        '<Response><Dial callerId="alice" method="GET" action="https://www.example.com/after_dial">'
        "<Sip statusCallbackEvent='ringing answered' statusCallback='https://www.example.com/dial_events'>"
        "\n   sip:dan@example.com?X-customheader=foo\n  </Sip></Dial></Response>",
        (
            Target(
                "sip:dan@example.com",
                headers=(("X-customheader", "foo"),),
                callback=Callback("https://www.example.com/dial_events", events=frozenset({"ringing", "answered"})),
            ),
        ),
    ),
}


@pytest.mark.parametrize("name", list(REAL_WORLD))
def test_real_world_documents(name):
    xml, targets = REAL_WORLD[name]
    (verb,) = document(xml).verbs
    assert isinstance(verb, DialVerb) and verb.targets == targets
