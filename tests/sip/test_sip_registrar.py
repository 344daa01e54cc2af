import pytest

from sipline.sip import (
    Binding,
    RegisterError,
    RegisterPolicy,
    RegisterSuccess,
    SipParseError,
    SipRequest,
    aor_user,
    make_response,
    parse_message,
    process_register,
)

NOW = 1_700_000_000.0
POLICY = RegisterPolicy()


def register(*extra: str, call_id: str = "call-1", cseq: int = 2, to: str = "<sip:alice@acme.example>") -> SipRequest:
    lines = [
        "REGISTER sip:acme.example SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKr1",
        "From: <sip:alice@acme.example>;tag=f1",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        *extra,
        "Content-Length: 0",
        "",
        "",
    ]
    msg = parse_message("\r\n".join(lines).encode())
    assert isinstance(msg, SipRequest)
    return msg


def binding(
    contact: str = "sip:alice@192.0.2.10",
    *,
    call_id: str = "call-1",
    cseq: int = 1,
    expires_at: float = NOW + 100,
    registered_at: float = NOW - 500,
) -> Binding:
    return Binding(contact, expires_at, call_id, cseq, None, registered_at)


def ok(result: object) -> RegisterSuccess:
    assert isinstance(result, RegisterSuccess), result
    return result


def error(result: object) -> RegisterError:
    assert isinstance(result, RegisterError), result
    return result


def test_new_contact_is_bound_with_default_expiry():
    result = ok(process_register(register("Contact: <sip:alice@192.0.2.10:5060>"), [], NOW, POLICY))
    assert result.bindings == [Binding("sip:alice@192.0.2.10:5060", NOW + 3600, "call-1", 2, None, NOW)]
    assert result.contact_headers == ["<sip:alice@192.0.2.10:5060>;expires=3600"]
    assert result.headers == [("Contact", "<sip:alice@192.0.2.10:5060>;expires=3600")]
    assert (result.status, result.reason) == (200, "OK")


def test_contact_expires_param_wins_over_expires_header():
    result = ok(process_register(register("Expires: 600", "Contact: <sip:a@h>;expires=120"), [], NOW, POLICY))
    assert result.bindings[0].expires_at == NOW + 120


def test_expires_header_applies_when_contact_has_no_param():
    result = ok(process_register(register("Expires: 600", "Contact: <sip:a@h>"), [], NOW, POLICY))
    assert result.bindings[0].expires_at == NOW + 600


def test_expires_above_maximum_is_capped():
    result = ok(process_register(register("Contact: <sip:a@h>;expires=999999"), [], NOW, POLICY))
    assert result.contact_headers == ["<sip:a@h>;expires=86400"]


def test_huge_expires_is_capped_not_crashed():
    result = ok(process_register(register("Expires: 1" + "0" * 5000, "Contact: <sip:a@h>"), [], NOW, POLICY))
    assert result.bindings[0].expires_at == NOW + 86400


def test_expires_below_minimum_is_refused_with_423_and_min_expires():
    result = error(process_register(register("Contact: <sip:a@h>;expires=30"), [], NOW, POLICY))
    assert (result.status, result.headers) == (423, [("Min-Expires", "60")])


def test_one_brief_contact_refuses_the_whole_request():
    request = register("Contact: <sip:a@h>;expires=3600, <sip:b@h>;expires=1")
    assert error(process_register(request, [], NOW, POLICY)).status == 423


@pytest.mark.parametrize(
    "extra",
    [
        ("Expires: soon", "Contact: <sip:a@h>"),
        ("Contact: <sip:a@h>;expires=-5",),
        ("Contact: <sip:a@h>;expires",),
        ("Contact: <sip:a@h>;expires=1.5",),
    ],
)
def test_non_numeric_expires_is_refused_with_400(extra):
    assert error(process_register(register(*extra), [], NOW, POLICY)).status == 400


@pytest.mark.parametrize(
    "contact",
    [
        "Contact: <tel:+1555>",
        "Contact: sip:a@h?x=y",
        "Contact: <sip:a@h",
        "Contact: <sip:a@h>;q=2",
        "Contact: <sip:a@h>;;",
    ],
)
def test_bad_contact_is_refused_with_400(contact):
    assert error(process_register(register(contact), [], NOW, POLICY)).status == 400


def test_contact_repeated_in_one_request_is_bound_once_with_the_last_values():
    result = ok(process_register(register("Contact: <sip:a@h>;expires=100, <sip:a@h>;expires=200"), [], NOW, POLICY))
    assert result.contact_headers == ["<sip:a@h>;expires=200"]


def test_q_value_is_kept_and_reported():
    result = ok(process_register(register("Contact: <sip:a@h>;q=0.5"), [], NOW, POLICY))
    assert result.bindings[0].q == 0.5
    assert result.contact_headers == ["<sip:a@h>;expires=3600;q=0.5"]


def test_expires_zero_removes_that_contact_only():
    existing = [binding("sip:a@h"), binding("sip:b@h")]
    result = ok(process_register(register("Contact: <sip:a@h>;expires=0"), existing, NOW, POLICY))
    assert [b.contact for b in result.bindings] == ["sip:b@h"]


def test_refresh_replaces_binding_and_keeps_first_registration_time():
    existing = [binding("sip:a@h", cseq=1)]
    result = ok(process_register(register("Contact: <sip:a@h>;expires=300", cseq=2), existing, NOW, POLICY))
    assert result.bindings == [Binding("sip:a@h", NOW + 300, "call-1", 2, None, NOW - 500)]


def test_a_refresh_sent_as_stored_is_matched_whatever_binding_comes_before_it():
    # The device's own binding is found by its text (not parsed again); the one before it, which
    # is not the same URI, is still compared URI by URI, and one that cannot be parsed is kept.
    existing = [binding("sip:other@h:5070", cseq=1), binding("not a uri", cseq=1), binding("sip:a@h", cseq=1)]
    result = ok(process_register(register("Contact: <sip:a@h>", "Expires: 300", cseq=2), existing, NOW, POLICY))
    assert [(b.contact, b.expires_at, b.cseq) for b in result.bindings] == [
        ("sip:other@h:5070", NOW + 100, 1),
        ("not a uri", NOW + 100, 1),
        ("sip:a@h", NOW + 300, 2),
    ]
    assert result.contact_headers[-1] == "<sip:a@h>;expires=300"


def test_a_stored_contact_sent_again_with_another_spelling_still_refreshes_it():
    existing = [binding("sip:a@h;transport=udp", cseq=1)]
    result = ok(process_register(register("Contact: <sip:a@H;TRANSPORT=UDP>", cseq=2), existing, NOW, POLICY))
    assert [(b.contact, b.registered_at) for b in result.bindings] == [("sip:a@H;TRANSPORT=UDP", NOW - 500)]


def test_older_cseq_same_call_id_is_refused_with_500():
    existing = [binding("sip:a@h", cseq=5)]
    result = error(process_register(register("Contact: <sip:a@h>", cseq=4), existing, NOW, POLICY))
    assert (result.status, result.reason) == (500, "Out of order CSeq")


def test_equal_cseq_same_call_id_is_refused_with_500():
    existing = [binding("sip:a@h", cseq=5)]
    assert error(process_register(register("Contact: <sip:a@h>", cseq=5), existing, NOW, POLICY)).status == 500


def test_lower_cseq_with_different_call_id_updates_the_binding():
    existing = [binding("sip:a@h", call_id="old-call", cseq=50)]
    result = ok(process_register(register("Contact: <sip:a@h>", cseq=1), existing, NOW, POLICY))
    assert (result.bindings[0].call_id, result.bindings[0].cseq) == ("call-1", 1)


def test_contact_matching_uses_uri_equality():
    existing = [binding("sip:alice@Example.COM:5060;transport=udp;foo=1")]
    request = register("Contact: <sip:alice@example.com:5060;TRANSPORT=UDP>;expires=0")
    assert ok(process_register(request, existing, NOW, POLICY)).bindings == []


@pytest.mark.parametrize("contact", ["sip:Alice@h", "sip:alice@h:5060", "sip:alice@h;transport=tcp", "sips:alice@h"])
def test_different_uris_are_different_bindings(contact):
    existing = [binding("sip:alice@h")]
    result = ok(process_register(register(f"Contact: <{contact}>"), existing, NOW, POLICY))
    assert len(result.bindings) == 2


def test_star_with_expires_zero_removes_all_bindings():
    existing = [binding("sip:a@h", call_id="x"), binding("sip:b@h", call_id="y")]
    result = ok(process_register(register("Contact: *", "Expires: 0"), existing, NOW, POLICY))
    assert (result.bindings, result.contact_headers) == ([], [])


@pytest.mark.parametrize(
    "extra",
    [
        ("Contact: *",),
        ("Contact: *", "Expires: 60"),
        ("Contact: *, <sip:a@h>", "Expires: 0"),
        ("Contact: *", "Contact: <sip:a@h>", "Expires: 0"),
    ],
)
def test_star_misuse_is_refused_with_400(extra):
    assert error(process_register(register(*extra), [], NOW, POLICY)).status == 400


def test_star_with_stale_cseq_on_same_call_id_is_refused_with_500():
    existing = [binding("sip:a@h", cseq=9)]
    assert error(process_register(register("Contact: *", "Expires: 0", cseq=9), existing, NOW, POLICY)).status == 500


def test_register_without_contact_is_a_query():
    existing = [binding("sip:a@h", expires_at=NOW + 42)]
    result = ok(process_register(register(), existing, NOW, POLICY))
    assert result.bindings == existing
    assert result.contact_headers == ["<sip:a@h>;expires=42"]


def test_expired_bindings_are_dropped():
    existing = [binding("sip:old@h", expires_at=NOW - 1), binding("sip:live@h")]
    result = ok(process_register(register("Contact: <sip:new@h>"), existing, NOW, POLICY))
    assert [b.contact for b in result.bindings] == ["sip:live@h", "sip:new@h"]


def test_oldest_binding_is_replaced_beyond_the_cap():
    policy = RegisterPolicy(max_bindings=2)
    existing = [binding("sip:newer@h", registered_at=NOW - 10), binding("sip:oldest@h", registered_at=NOW - 99)]
    result = ok(process_register(register("Contact: <sip:new@h>"), existing, NOW, policy))
    assert [b.contact for b in result.bindings] == ["sip:newer@h", "sip:new@h"]


def test_multiple_contacts_in_one_request_are_all_bound():
    result = ok(process_register(register("Contact: <sip:a@h>, <sip:b@h>;expires=90", "m: sip:c@h"), [], NOW, POLICY))
    assert result.contact_headers == ["<sip:a@h>;expires=3600", "<sip:b@h>;expires=90", "<sip:c@h>;expires=3600"]


def test_error_result_fits_make_response():
    request = register("Contact: <sip:a@h>;expires=1")
    result = error(process_register(request, [], NOW, POLICY))
    response = make_response(request, result.status, result.reason, headers=result.headers)
    assert response.headers.get("Min-Expires") == "60"


def test_aor_user_reads_the_to_uri():
    assert aor_user(register(to='"Alice" <sip:Alice@ACME.example;user=phone>')) == ("Alice", "acme.example")
    assert aor_user(register(to="sip:acme.example")) == (None, "acme.example")


def test_aor_user_refuses_non_sip_to():
    with pytest.raises(SipParseError):
        aor_user(register(to="<tel:+15551234>"))
