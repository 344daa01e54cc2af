"""RFC 3261 §12 dialogs: made from messages parsed off the wire, requests built and parsed back."""

import pytest

from sipline.sip import SipParseError, SipRequest, SipResponse, parse_message, serialize
from sipline.sip.dialog import Dialog, request_dialog_id, response_dialog_id

CALL_ID = "a84b4c76e66710@pc33.atlanta.example"
ALICE_TAG = "1928301774"
BOB_TAG = "a6c85cf"
ALICE_CONTACT = "<sip:alice@pc33.atlanta.example;transport=udp>"
BOB_CONTACT = "<sip:bob@192.0.2.4>"
VIA = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfresh1"


def parse(*lines: str, body: bytes = b"") -> SipRequest | SipResponse:
    return parse_message("\r\n".join([*lines, f"Content-Length: {len(body)}", "", ""]).encode() + body)


def req(*lines: str, body: bytes = b"") -> SipRequest:
    msg = parse(*lines, body=body)
    assert isinstance(msg, SipRequest)
    return msg


def resp(*lines: str) -> SipResponse:
    msg = parse(*lines)
    assert isinstance(msg, SipResponse)
    return msg


def invite_sent(uri: str = "sip:bob@biloxi.example") -> SipRequest:
    """Alice's INVITE as she sends it: the UAC side."""
    return req(
        f"INVITE {uri} SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bK776",
        "Max-Forwards: 70",
        f'From: "Alice" <sip:alice@atlanta.example>;tag={ALICE_TAG}',
        "To: Bob <sip:bob@biloxi.example>",
        f"Call-ID: {CALL_ID}",
        "CSeq: 314159 INVITE",
        f"Contact: {ALICE_CONTACT}",
    )


def invite_received(*extra: str) -> SipRequest:
    """The same INVITE as Bob receives it, through p1 then p2 (each prepends its Record-Route)."""
    return req(
        "INVITE sip:bob@192.0.2.4 SIP/2.0",
        "Via: SIP/2.0/UDP p2.example;branch=z9hG4bKp2",
        "Via: SIP/2.0/UDP p1.example;branch=z9hG4bKp1",
        "Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bK776",
        "Max-Forwards: 68",
        "Record-Route: <sip:p2.example;lr>",
        "Record-Route: <sip:p1.example;lr>",
        f'From: "Alice" <sip:alice@atlanta.example>;tag={ALICE_TAG}',
        "To: Bob <sip:bob@biloxi.example>",
        f"Call-ID: {CALL_ID}",
        "CSeq: 314159 INVITE",
        *extra,
    )


def answer(
    status: int = 200,
    *,
    to_tag: str | None = BOB_TAG,
    contact: str | None = BOB_CONTACT,
    method: str = "INVITE",
    cseq: int = 314159,
    record_route: tuple[str, ...] = ("Record-Route: <sip:p2.example;lr>", "Record-Route: <sip:p1.example;lr>"),
) -> SipResponse:
    """Bob's response as Alice receives it (proxies removed their Vias; Record-Route kept)."""
    return resp(
        f"SIP/2.0 {status} Whatever",
        "Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bK776",
        *record_route,
        f'From: "Alice" <sip:alice@atlanta.example>;tag={ALICE_TAG}',
        "To: Bob <sip:bob@biloxi.example>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq} {method}",
        *([f"Contact: {contact}"] if contact else []),
    )


def from_alice(method: str, cseq: int, *extra: str, to_tag: str = BOB_TAG) -> SipRequest:
    """An in-dialog request from Alice, as Bob (the UAS) receives it."""
    return req(
        f"{method} sip:bob@192.0.2.4 SIP/2.0",
        "Via: SIP/2.0/UDP pc33.atlanta.example;branch=z9hG4bKnew",
        f'From: "Alice" <sip:alice@atlanta.example>;tag={ALICE_TAG}',
        f"To: Bob <sip:bob@biloxi.example>;tag={to_tag}",
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq} {method}",
        *extra,
    )


def from_bob(method: str, cseq: int, *extra: str) -> SipRequest:
    """An in-dialog request from Bob, as Alice (the UAC) receives it."""
    return req(
        f"{method} sip:alice@pc33.atlanta.example SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKbob",
        f"From: Bob <sip:bob@biloxi.example>;tag={BOB_TAG}",
        f'To: "Alice" <sip:alice@atlanta.example>;tag={ALICE_TAG}',
        f"Call-ID: {CALL_ID}",
        f"CSeq: {cseq} {method}",
        *extra,
    )


def uac() -> Dialog:
    return Dialog.as_uac(invite_sent(), answer(), ALICE_CONTACT)


def uas() -> Dialog:
    return Dialog.as_uas(invite_received(f"Contact: {ALICE_CONTACT}"), BOB_TAG, BOB_CONTACT)


def round_trip(request: SipRequest) -> SipRequest:
    again = parse_message(serialize(request))
    assert isinstance(again, SipRequest)
    assert (again.method, again.uri, again.headers, again.body) == (
        request.method,
        request.uri,
        request.headers,
        request.body,
    )
    return again


# --- dialog ids -----------------------------------------------------------------------------------


def test_request_dialog_id_is_call_id_to_tag_from_tag():
    assert request_dialog_id(from_alice("BYE", 2)) == (CALL_ID, BOB_TAG, ALICE_TAG)


def test_request_without_to_tag_is_in_no_dialog():
    assert request_dialog_id(invite_received()) is None


def test_request_from_an_rfc_2543_peer_without_from_tag_has_an_empty_remote_tag():
    bye = from_alice("BYE", 2)
    bye.headers.set("From", '"Alice" <sip:alice@atlanta.example>')
    assert request_dialog_id(bye) == (CALL_ID, BOB_TAG, "")


def test_request_with_a_quoted_tag_is_in_no_dialog():
    bye = from_alice("BYE", 2)
    bye.headers.set("To", '<sip:bob@biloxi.example>;tag="a b"')
    assert request_dialog_id(bye) is None


def test_request_without_call_id_is_in_no_dialog():
    bye = from_alice("BYE", 2)
    bye.headers.remove("Call-ID")
    assert request_dialog_id(bye) is None


def test_response_dialog_id_is_call_id_from_tag_to_tag():
    assert response_dialog_id(answer()) == (CALL_ID, ALICE_TAG, BOB_TAG)


def test_response_without_to_tag_is_in_no_dialog():
    assert response_dialog_id(answer(100, to_tag=None)) is None


# --- the UAC side ---------------------------------------------------------------------------------


def test_uac_dialog_from_a_2xx():
    ok = answer()
    dialog = Dialog.as_uac(invite_sent(), ok, ALICE_CONTACT)
    assert dialog.id == response_dialog_id(ok) == (CALL_ID, ALICE_TAG, BOB_TAG)
    assert dialog.local_uri == '"Alice" <sip:alice@atlanta.example>'
    assert dialog.remote_uri == '"Bob" <sip:bob@biloxi.example>'
    assert dialog.remote_target == "sip:bob@192.0.2.4"
    assert dialog.local_cseq == 314159
    assert dialog.remote_cseq is None
    assert dialog.local_contact == ALICE_CONTACT
    assert dialog.secure is False


def test_uac_route_set_is_the_record_route_reversed():
    assert uac().route_set == ("<sip:p1.example;lr>", "<sip:p2.example;lr>")


def test_uac_route_set_from_one_comma_separated_record_route_is_reversed_too():
    ok = answer(record_route=("Record-Route: <sip:p2.example;lr>, <sip:p1.example;lr>",))
    assert Dialog.as_uac(invite_sent(), ok, ALICE_CONTACT).route_set == ("<sip:p1.example;lr>", "<sip:p2.example;lr>")


def test_uac_without_record_route_has_an_empty_route_set():
    assert Dialog.as_uac(invite_sent(), answer(record_route=()), ALICE_CONTACT).route_set == ()


def test_uac_early_dialog_from_a_1xx_with_to_tag():
    ringing = answer(180)
    dialog = Dialog.as_uac(invite_sent(), ringing, ALICE_CONTACT)
    assert dialog.id == (CALL_ID, ALICE_TAG, BOB_TAG)
    assert dialog.remote_target == "sip:bob@192.0.2.4"


def test_uac_early_dialog_without_contact_targets_the_request_uri():
    dialog = Dialog.as_uac(invite_sent(), answer(183, contact=None), ALICE_CONTACT)
    assert dialog.remote_target == "sip:bob@biloxi.example"


def test_uac_forks_make_dialogs_of_their_own():
    first = Dialog.as_uac(invite_sent(), answer(), ALICE_CONTACT)
    second = Dialog.as_uac(invite_sent(), answer(to_tag="other-fork"), ALICE_CONTACT)
    assert first.id != second.id
    assert second.remote_tag == "other-fork"


@pytest.mark.parametrize(
    "response",
    [
        answer(contact=None),  # a 2xx must say where the dialog goes
        answer(contact="<sip:bob@192.0.2.4"),  # malformed
        answer(contact="*"),
        answer(contact="<tel:+15550100>"),  # not a SIP URI
        answer(contact="<sip:bob@192.0.2.4>, <sip:bob@192.0.2.5>"),  # which one?
        answer(to_tag=None),
        answer(100, to_tag=BOB_TAG),  # 100 Trying makes no dialog
        answer(486),
        answer(record_route=("Record-Route: <tel:+15550100>",)),
    ],
    ids=["no-contact", "bad-contact", "star", "tel", "two-contacts", "no-to-tag", "100", "486", "bad-route"],
)
def test_uac_refuses_a_response_that_makes_no_usable_dialog(response):
    with pytest.raises(SipParseError):
        Dialog.as_uac(invite_sent(), response, ALICE_CONTACT)


def test_uac_dialog_is_secure_for_a_sips_request_uri():
    assert Dialog.as_uac(invite_sent("sips:bob@biloxi.example"), answer(), ALICE_CONTACT).secure


def test_remote_target_drops_the_contact_uri_headers():
    dialog = Dialog.as_uac(invite_sent(), answer(contact="<sip:bob@192.0.2.4;transport=tcp?X-A=1>"), ALICE_CONTACT)
    assert dialog.remote_target == "sip:bob@192.0.2.4;transport=tcp"
    round_trip(dialog.new_request("BYE", VIA))


def test_our_contact_must_be_a_name_addr():
    with pytest.raises(ValueError):
        Dialog.as_uac(invite_sent(), answer(), "<sip:me@192.0.2.1")


# --- the UAS side ---------------------------------------------------------------------------------


def test_uas_dialog_from_an_invite():
    dialog = uas()
    assert dialog.id == (CALL_ID, BOB_TAG, ALICE_TAG)
    assert dialog.local_uri == '"Bob" <sip:bob@biloxi.example>'
    assert dialog.remote_uri == '"Alice" <sip:alice@atlanta.example>'
    assert dialog.remote_target == "sip:alice@pc33.atlanta.example;transport=udp"
    assert dialog.remote_cseq == 314159
    assert dialog.local_cseq == 0
    assert dialog.local_contact == BOB_CONTACT


def test_uas_route_set_is_the_record_route_in_order():
    assert uas().route_set == ("<sip:p2.example;lr>", "<sip:p1.example;lr>")


def test_uas_dialog_matches_the_requests_the_caller_sends_in_it():
    assert uas().id == request_dialog_id(from_alice("BYE", 314160))


def test_uas_refuses_an_invite_without_usable_contact():
    with pytest.raises(SipParseError):
        Dialog.as_uas(invite_received(), BOB_TAG, BOB_CONTACT)
    with pytest.raises(SipParseError):
        Dialog.as_uas(invite_received("Contact: <sip:alice@pc33"), BOB_TAG, BOB_CONTACT)


def test_uas_local_tag_must_be_a_token():
    with pytest.raises(ValueError):
        Dialog.as_uas(invite_received(f"Contact: {ALICE_CONTACT}"), "a;b", BOB_CONTACT)


def test_uas_dialog_with_an_rfc_2543_caller_has_an_empty_remote_tag():
    invite = invite_received(f"Contact: {ALICE_CONTACT}")
    invite.headers.set("From", "<sip:alice@atlanta.example>")
    dialog = Dialog.as_uas(invite, BOB_TAG, BOB_CONTACT)
    assert dialog.remote_tag == ""
    assert round_trip(dialog.new_request("BYE", VIA)).headers.get("To") == "<sip:alice@atlanta.example>"


# --- requests within the dialog -------------------------------------------------------------------


def test_bye_goes_to_the_remote_target_through_the_route_set():
    dialog = uac()
    bye = dialog.new_request("BYE", VIA)
    assert bye.method == "BYE"
    assert bye.uri == "sip:bob@192.0.2.4"
    assert bye.headers.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert bye.headers.get_all("Via") == [VIA]
    assert bye.headers.get("Max-Forwards") == "70"
    assert bye.headers.get("From") == f'"Alice" <sip:alice@atlanta.example>;tag={ALICE_TAG}'
    assert bye.headers.get("To") == f'"Bob" <sip:bob@biloxi.example>;tag={BOB_TAG}'
    assert bye.headers.get("Call-ID") == CALL_ID
    assert bye.headers.get("CSeq") == "314160 BYE"
    assert "Contact" not in bye.headers
    assert dialog.local_cseq == 314160


def test_each_request_takes_the_next_cseq():
    dialog = uac()
    assert dialog.new_request("INFO", VIA).headers.get("CSeq") == "314160 INFO"
    assert dialog.new_request("BYE", VIA).headers.get("CSeq") == "314161 BYE"


def test_first_request_of_the_uas_uses_cseq_1():
    dialog = uas()
    assert dialog.new_request("BYE", VIA).headers.get("CSeq") == "1 BYE"
    assert dialog.local_cseq == 1


def test_reinvite_and_update_carry_our_contact():
    dialog = uas()
    for method in ("INVITE", "UPDATE"):
        assert dialog.new_request(method, VIA).headers.get_all("Contact") == [BOB_CONTACT]


@pytest.mark.parametrize("method", ["BYE", "INVITE", "UPDATE", "INFO", "OPTIONS", "REFER", "NOTIFY"])
def test_in_dialog_requests_parse_back_from_their_bytes(method):
    for dialog in (uac(), uas()):
        round_trip(dialog.new_request(method, VIA))


def test_request_with_a_body_and_extra_headers_parses_back():
    dialog = uac()
    sdp = b"v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    reinvite = dialog.new_request(
        "INVITE",
        VIA,
        headers=[("Supported", "timer"), ("Session-Expires", "1800")],
        body=sdp,
        content_type="application/sdp",
    )
    again = round_trip(reinvite)
    assert again.body == sdp
    assert again.headers.get("Content-Type") == "application/sdp"
    assert again.headers.get("Session-Expires") == "1800"


def test_requests_keep_display_names_and_address_parameters_but_not_old_tags():
    invite = invite_sent()
    invite.headers.set("From", '"Alice \\"A\\"" <sip:alice@atlanta.example>;tag=1928301774;x-note="a b"')
    dialog = Dialog.as_uac(invite, answer(), ALICE_CONTACT)
    bye = round_trip(dialog.new_request("BYE", VIA))
    assert bye.headers.get("From") == f'"Alice \\"A\\"" <sip:alice@atlanta.example>;x-note="a b";tag={ALICE_TAG}'


def test_new_request_refuses_ack_and_cancel():
    dialog = uac()
    for method in ("ACK", "CANCEL", "BAD METHOD"):
        with pytest.raises(ValueError):
            dialog.new_request(method, VIA)
    assert dialog.local_cseq == 314159


@pytest.mark.parametrize(
    ("method", "header"),
    [
        ("BYE", "From"),
        ("BYE", "f"),
        ("BYE", "CSeq"),
        ("BYE", "Route"),
        ("INVITE", "Contact"),
        ("BYE", "Content-Length"),
    ],
)
def test_new_request_refuses_headers_the_dialog_sets_itself(method, header):
    dialog = uac()
    with pytest.raises(ValueError):
        dialog.new_request(method, VIA, headers=[(header, "<sip:x@y>")])
    assert dialog.local_cseq == 314159


def test_notify_may_carry_a_contact_of_the_callers_choosing():
    notify = uac().new_request("NOTIFY", VIA, headers=[("Contact", "<sip:me@192.0.2.1>"), ("Event", "refer")])
    assert round_trip(notify).headers.get("Contact") == "<sip:me@192.0.2.1>"


def test_new_request_refuses_line_breaks_in_header_values_and_keeps_its_cseq():
    dialog = uac()
    with pytest.raises(ValueError):
        dialog.new_request("INFO", VIA, headers=[("X-Note", "a\r\nInjected: yes")])
    with pytest.raises(ValueError):
        dialog.new_request("INFO", VIA, headers=[("Bad Name", "x")])
    assert dialog.local_cseq == 314159


def test_new_request_refuses_a_bad_via_a_body_without_type_and_bad_max_forwards():
    dialog = uac()
    with pytest.raises(ValueError):
        dialog.new_request("BYE", "SIP/2.0/UDP")
    with pytest.raises(ValueError):
        dialog.new_request("INFO", VIA, body=b"x")
    with pytest.raises(ValueError):
        dialog.new_request("BYE", VIA, max_forwards=256)
    assert dialog.local_cseq == 314159


def test_ack_keeps_the_invite_cseq_number_and_leaves_local_cseq_alone():
    dialog = uac()
    reinvite = dialog.new_request("INVITE", VIA)
    assert reinvite.headers.get("CSeq") == "314160 INVITE"
    ack = round_trip(dialog.ack(314160, VIA))
    assert ack.method == "ACK"
    assert ack.headers.get("CSeq") == "314160 ACK"
    assert ack.uri == "sip:bob@192.0.2.4"
    assert ack.headers.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    assert ack.headers.get("To") == f'"Bob" <sip:bob@biloxi.example>;tag={BOB_TAG}'
    assert dialog.local_cseq == 314160


def test_ack_for_the_initial_invite_uses_its_cseq():
    dialog = uac()
    assert dialog.ack(314159, VIA).headers.get("CSeq") == "314159 ACK"
    assert dialog.local_cseq == 314159


def test_ack_may_carry_the_sdp_answer():
    ack = round_trip(uac().ack(314159, VIA, body=b"v=0\r\n", content_type="application/sdp"))
    assert ack.body == b"v=0\r\n"


def test_ack_refuses_a_cseq_out_of_range():
    with pytest.raises(ValueError):
        uac().ack(2**32, VIA)


# --- requests received in the dialog --------------------------------------------------------------


def test_next_request_is_accepted_and_advances_remote_cseq():
    dialog = uas()
    assert dialog.receive(from_alice("BYE", 314160)) is None
    assert dialog.remote_cseq == 314160


def test_request_with_an_old_or_repeated_cseq_gets_500():
    dialog = uas()
    assert dialog.receive(from_alice("INFO", 314158)) == 500
    assert dialog.receive(from_alice("INFO", 314159)) == 500  # the INVITE's own
    assert dialog.remote_cseq == 314159
    assert dialog.receive(from_alice("INFO", 314165)) is None  # gaps are fine
    assert dialog.receive(from_alice("INFO", 314165)) == 500


def test_ack_and_cancel_are_exempt_from_cseq_ordering():
    dialog = uas()
    assert dialog.receive(from_alice("ACK", 314159)) is None
    assert dialog.receive(from_alice("CANCEL", 314159)) is None
    assert dialog.remote_cseq == 314159


def test_first_request_from_the_callee_is_accepted_whatever_its_cseq():
    dialog = uac()
    assert dialog.remote_cseq is None
    assert dialog.receive(from_bob("BYE", 1)) is None
    assert dialog.remote_cseq == 1


def test_request_of_another_dialog_gets_481():
    assert uas().receive(from_alice("BYE", 314160, to_tag="someone-else")) == 481


def test_reinvite_contact_refreshes_the_remote_target():
    dialog = uas()
    assert dialog.receive(from_alice("INVITE", 314160, "Contact: <sip:alice@198.51.100.7:5070>")) is None
    assert dialog.remote_target == "sip:alice@198.51.100.7:5070"
    assert dialog.new_request("BYE", VIA).uri == "sip:alice@198.51.100.7:5070"


def test_update_contact_refreshes_the_remote_target():
    dialog = uac()
    assert dialog.receive(from_bob("UPDATE", 5, "Contact: <sip:bob@198.51.100.9>")) is None
    assert dialog.remote_target == "sip:bob@198.51.100.9"


def test_reinvite_without_contact_keeps_the_remote_target():
    dialog = uas()
    assert dialog.receive(from_alice("INVITE", 314160)) is None
    assert dialog.remote_target == "sip:alice@pc33.atlanta.example;transport=udp"


def test_other_requests_do_not_refresh_the_target():
    dialog = uas()
    dialog.receive(from_alice("INFO", 314160, "Contact: <sip:alice@198.51.100.7>"))
    assert dialog.remote_target == "sip:alice@pc33.atlanta.example;transport=udp"


def test_refused_request_does_not_refresh_the_target():
    dialog = uas()
    assert dialog.receive(from_alice("INVITE", 314159, "Contact: <sip:alice@198.51.100.7>")) == 500
    assert dialog.remote_target == "sip:alice@pc33.atlanta.example;transport=udp"


def test_reinvite_with_a_malformed_contact_raises_and_changes_nothing():
    dialog = uas()
    with pytest.raises(SipParseError):
        dialog.receive(from_alice("INVITE", 314160, "Contact: <sip:alice@198.51.100.7"))
    assert dialog.remote_cseq == 314159
    assert dialog.remote_target == "sip:alice@pc33.atlanta.example;transport=udp"


# --- responses to our target refreshes ------------------------------------------------------------


def test_2xx_to_our_reinvite_or_update_refreshes_the_target():
    for method in ("INVITE", "UPDATE"):
        dialog = uac()
        dialog.refresh(answer(contact="<sip:bob@198.51.100.9>", method=method, cseq=314160))
        assert dialog.remote_target == "sip:bob@198.51.100.9"


def test_other_responses_do_not_refresh_the_target():
    dialog = uac()
    dialog.refresh(answer(491, contact="<sip:bob@198.51.100.9>", cseq=314160))
    dialog.refresh(answer(contact="<sip:bob@198.51.100.9>", method="BYE", cseq=314160))
    dialog.refresh(answer(contact=None, cseq=314160))
    assert dialog.remote_target == "sip:bob@192.0.2.4"


def test_2xx_with_a_malformed_contact_raises():
    with pytest.raises(SipParseError):
        uac().refresh(answer(contact="<sip:bob@", cseq=314160))


# --- where requests go ----------------------------------------------------------------------------


def test_next_hop_is_the_first_route_uri_under_loose_routing():
    assert uac().next_hop() == "sip:p1.example;lr"
    assert uas().next_hop() == "sip:p2.example;lr"


def test_next_hop_drops_the_route_header_parameters():
    ok = answer(record_route=('Record-Route: "P" <sip:p9.example;lr;transport=tcp>;x-id=7',))
    assert Dialog.as_uac(invite_sent(), ok, ALICE_CONTACT).next_hop() == "sip:p9.example;lr;transport=tcp"


def test_next_hop_without_route_set_is_the_remote_target():
    assert Dialog.as_uac(invite_sent(), answer(record_route=()), ALICE_CONTACT).next_hop() == "sip:bob@192.0.2.4"


# --- both ends together ---------------------------------------------------------------------------


def test_the_callers_bye_is_accepted_by_the_callees_dialog():
    caller, callee = uac(), uas()
    assert caller.id == (callee.call_id, callee.remote_tag, callee.local_tag)
    bye = round_trip(caller.new_request("BYE", VIA))
    assert request_dialog_id(bye) == callee.id
    assert callee.receive(bye) is None
    assert callee.receive(round_trip(caller.ack(314159, VIA))) is None


def test_the_callees_bye_is_accepted_by_the_callers_dialog():
    caller, callee = uac(), uas()
    bye = round_trip(callee.new_request("BYE", VIA))
    assert request_dialog_id(bye) == caller.id
    assert caller.receive(bye) is None
    assert caller.remote_cseq == 1
