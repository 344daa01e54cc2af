"""RFC 3261 §17 transactions (with RFC 6026): bytes in, a fake clock (plain floats), outputs checked."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.sip import SipRequest, SipResponse, make_response, parse_message, serialize
from sipline.sip.headers import Headers
from sipline.sip.transaction import (
    T1,
    T2,
    T4,
    TIMEOUT,
    ClientInvite,
    ClientNonInvite,
    Deliver,
    NoAck,
    ServerInvite,
    ServerNonInvite,
    Terminated,
    TimedOut,
    TransactionError,
    Transmit,
    cancel_request,
    client_key,
    server_key,
)

BRANCH = "z9hG4bKnashds8"


def request(method: str = "INVITE", *, branch: str = BRANCH, sent_by: str = "pc33.atlanta.example", cseq: int = 1):
    body = b"v=0\r\n" if method == "INVITE" else b""
    lines = [
        f"{method} sip:bob@biloxi.example SIP/2.0",
        f"Via: SIP/2.0/UDP {sent_by};branch={branch}",
        "Via: SIP/2.0/UDP 192.0.2.9:5070;branch=z9hG4bKupstream",
        "Max-Forwards: 69",
        "Route: <sip:p1.example;lr>",
        "Route: <sip:p2.example;lr>",
        'From: "Alice" <sip:alice@atlanta.example>;tag=1928301774',
        "To: <sip:bob@biloxi.example>",
        "Call-ID: a84b4c76e66710@pc33.atlanta.example",
        f"CSeq: {cseq} {method}",
        "Contact: <sip:alice@pc33.atlanta.example>",
        *(["Content-Type: application/sdp"] if body else []),
        f"Content-Length: {len(body)}",
        "",
        "",
    ]
    msg = parse_message("\r\n".join(lines).encode() + body)
    assert isinstance(msg, SipRequest)
    return msg


def response(req: SipRequest, status: int, *, to_tag: str | None = "bob-1") -> SipResponse:
    """A response as it comes off the wire: made, serialised and parsed again."""
    msg = parse_message(serialize(make_response(req, status, to_tag=None if status == 100 else to_tag)))
    assert isinstance(msg, SipResponse)
    return msg


def transmitted(outputs: list) -> list:
    return [o.message for o in outputs if isinstance(o, Transmit)]


def retransmission_times(txn, until: float) -> list[float]:
    """Tick at each deadline up to `until`, collecting when something was transmitted."""
    times = []
    while txn.deadline is not None and txn.deadline < until:
        now = txn.deadline
        if transmitted(txn.tick(now)):
            times.append(now)
    return times


# --- matching -------------------------------------------------------------------------------------


def test_server_key_is_branch_sent_by_with_default_port_and_method():
    assert server_key(request()) == (BRANCH, "pc33.atlanta.example:5060", "INVITE")


def test_server_key_lowercases_the_host_and_keeps_an_explicit_port():
    assert server_key(request(sent_by="PC33.Atlanta.EXAMPLE:5080")) == (BRANCH, "pc33.atlanta.example:5080", "INVITE")


def test_server_key_treats_an_absent_port_as_5060():
    assert server_key(request(sent_by="pc33.atlanta.example:5060")) == server_key(request())


def test_ack_matches_the_key_of_its_invite():
    assert server_key(request("ACK")) == server_key(request("INVITE"))


def test_cancel_does_not_match_the_key_of_its_invite():
    cancel = cancel_request(request())
    assert server_key(cancel) == (BRANCH, "pc33.atlanta.example:5060", "CANCEL")
    assert server_key(cancel) != server_key(request())


def test_rfc_2543_branch_gives_no_server_key():
    assert server_key(request(branch="1234abcd")) is None


def test_request_without_usable_via_gives_no_server_key():
    req = request()
    req.headers.remove("Via")
    assert server_key(req) is None
    req.headers.add("Via", "garbage")
    assert server_key(req) is None


def test_same_branch_from_another_sent_by_is_another_transaction():
    assert server_key(request(sent_by="192.0.2.50")) != server_key(request())


def test_client_key_is_top_via_branch_and_cseq_method():
    assert client_key(response(request(), 180)) == (BRANCH, "INVITE")
    assert client_key(response(request("OPTIONS"), 200)) == (BRANCH, "OPTIONS")


def test_client_key_of_a_response_to_cancel_differs_from_the_invite():
    assert client_key(response(cancel_request(request()), 200)) == (BRANCH, "CANCEL")


def test_client_key_is_none_without_via_or_cseq():
    bare = SipResponse(200, "OK", Headers([("CSeq", "1 INVITE")]))
    assert client_key(bare) is None
    no_cseq = SipResponse(200, "OK", Headers([("Via", f"SIP/2.0/UDP h;branch={BRANCH}")]))
    assert client_key(no_cseq) is None


# --- CANCEL ---------------------------------------------------------------------------------------


def test_cancel_copies_uri_call_id_from_to_top_via_routes_and_cseq_number():
    invite = request(cseq=7)
    cancel = cancel_request(invite)
    assert cancel.method == "CANCEL"
    assert cancel.uri == invite.uri
    assert cancel.headers.get_all("Via") == [f"SIP/2.0/UDP pc33.atlanta.example;branch={BRANCH}"]
    assert cancel.headers.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    for name in ("From", "To", "Call-ID"):
        assert cancel.headers.get(name) == invite.headers.get(name)
    assert cancel.headers.get("CSeq") == "7 CANCEL"
    assert cancel.headers.get("Max-Forwards") == "70"
    assert cancel.body == b""
    assert "Contact" not in cancel.headers


def test_cancel_parses_back_from_its_bytes():
    cancel = cancel_request(request())
    again = parse_message(serialize(cancel))
    assert isinstance(again, SipRequest)
    assert again.headers == cancel.headers


# --- client INVITE --------------------------------------------------------------------------------


def started_invite(*, reliable: bool = False, now: float = 0.0) -> tuple[ClientInvite, SipRequest]:
    invite = request()
    txn = ClientInvite(invite, reliable=reliable)
    assert txn.start(now) == [Transmit(invite)]
    return txn, invite


def test_invite_client_timer_a_doubles_without_cap_until_timer_b():
    txn, _ = started_invite()
    assert txn.state == "calling"
    assert txn.deadline == T1
    # 0.5, 1, 2, 4, 8, 16: the last intervals are beyond T2, since A has no cap.
    assert retransmission_times(txn, TIMEOUT) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert txn.deadline == TIMEOUT  # Timer B (A would be next at 63.5)
    assert txn.tick(TIMEOUT) == [TimedOut(), Terminated()]
    assert txn.state == "terminated"
    assert txn.deadline is None


def test_invite_client_retransmits_the_invite_itself():
    txn, invite = started_invite()
    assert txn.tick(T1) == [Transmit(invite)]


def test_invite_client_over_reliable_transport_sends_once_and_times_out_at_timer_b():
    txn, _ = started_invite(reliable=True, now=100.0)
    assert txn.deadline == 100.0 + TIMEOUT
    assert txn.tick(100.0 + TIMEOUT - 0.001) == []
    assert txn.tick(100.0 + TIMEOUT) == [TimedOut(), Terminated()]


def test_tick_before_the_deadline_does_nothing():
    txn, _ = started_invite()
    assert txn.tick(0.4) == []
    assert txn.deadline == T1


def test_late_tick_retransmits_once_and_rearms_from_that_moment():
    txn, invite = started_invite()
    assert txn.tick(1.2) == [Transmit(invite)]  # due at 0.5, not also at 1.5
    assert txn.deadline == pytest.approx(2.2)


def test_tick_long_after_timer_b_times_out_without_retransmitting_past_it():
    txn, _ = started_invite()
    outputs = txn.tick(1000.0)
    assert outputs[-2:] == [TimedOut(), Terminated()]
    assert txn.deadline is None


def test_a_response_after_a_missed_deadline_fires_the_due_timer_first():
    txn, invite = started_invite()
    ringing = response(invite, 180)
    assert txn.receive(ringing, 1.0) == [Transmit(invite), Deliver(ringing)]


def test_a_response_after_timer_b_was_due_is_too_late():
    txn, invite = started_invite(reliable=True)
    assert txn.receive(response(invite, 200), TIMEOUT + 1) == [TimedOut(), Terminated()]


def test_invite_client_provisional_stops_timers_a_and_b():
    txn, invite = started_invite()
    ringing = response(invite, 180)
    assert txn.receive(ringing, 0.2) == [Deliver(ringing)]
    assert txn.state == "proceeding"
    assert txn.deadline is None  # the TU bounds ringing
    assert txn.tick(1000.0) == []


def test_invite_client_delivers_every_provisional():
    txn, invite = started_invite()
    for status in (100, 180, 183, 180):
        ringing = response(invite, status)
        assert txn.receive(ringing, 0.2) == [Deliver(ringing)]


def test_invite_client_delivers_1xx_2xx_retransmitted_2xx_and_a_forked_2xx():
    txn, invite = started_invite()
    ringing, ok = response(invite, 180), response(invite, 200)
    ok_again = response(invite, 200)
    forked_ok = response(invite, 200, to_tag="bob-2")
    assert txn.receive(ringing, 0.1) == [Deliver(ringing)]
    assert txn.receive(ok, 2.0) == [Deliver(ok)]
    assert txn.state == "accepted"
    assert txn.deadline == 2.0 + TIMEOUT  # Timer M
    assert txn.receive(ok_again, 3.0) == [Deliver(ok_again)]  # the TU re-sends its ACK
    assert txn.receive(forked_ok, 4.0) == [Deliver(forked_ok)]  # another dialog, for the TU
    assert txn.state == "accepted"
    assert txn.deadline == 2.0 + TIMEOUT  # M is not restarted by later 2xx
    assert txn.tick(2.0 + TIMEOUT) == [Terminated()]


def test_invite_client_2xx_in_calling_is_accepted_and_stops_retransmissions():
    txn, invite = started_invite()
    ok = response(invite, 200)
    assert txn.receive(ok, 0.3) == [Deliver(ok)]
    assert txn.deadline == 0.3 + TIMEOUT
    assert txn.tick(0.5) == []


def test_invite_client_never_acks_a_2xx_itself():
    txn, invite = started_invite()
    outputs = txn.receive(response(invite, 200), 0.2)
    assert transmitted(outputs) == []


def test_invite_client_timer_m_is_64_t1_over_reliable_transport_too():
    txn, invite = started_invite(reliable=True)
    txn.receive(response(invite, 200), 1.0)
    assert txn.deadline == 1.0 + TIMEOUT


def test_invite_client_ignores_provisional_and_failure_in_accepted():
    txn, invite = started_invite()
    txn.receive(response(invite, 200), 1.0)
    assert txn.receive(response(invite, 180), 1.5) == []
    assert txn.receive(response(invite, 486, to_tag="bob-3"), 1.6) == []
    assert txn.state == "accepted"


def test_invite_client_answers_a_failure_with_an_ack_built_per_17_1_1_3():
    txn, invite = started_invite()
    busy = response(invite, 486)
    outputs = txn.receive(busy, 0.2)
    assert len(outputs) == 2
    assert isinstance(outputs[0], Transmit)
    assert outputs[1] == Deliver(busy)
    ack = outputs[0].message
    assert isinstance(ack, SipRequest)
    assert ack.method == "ACK"
    assert ack.uri == invite.uri
    assert ack.headers.get_all("Via") == [f"SIP/2.0/UDP pc33.atlanta.example;branch={BRANCH}"]  # top Via only
    assert ack.headers.get_all("Route") == invite.headers.get_all("Route")
    assert ack.headers.get("From") == invite.headers.get("From")
    assert ack.headers.get("Call-ID") == invite.headers.get("Call-ID")
    assert ack.headers.get("To") == "<sip:bob@biloxi.example>;tag=bob-1"  # the response's, with its tag
    assert ack.headers.get("CSeq") == "1 ACK"
    assert ack.headers.get("Max-Forwards") == "70"
    assert ack.headers.get("Content-Length") == "0"
    assert ack.body == b""
    assert "Contact" not in ack.headers
    assert txn.state == "completed"


def test_ack_for_a_failure_parses_back_and_matches_the_invite_server_transaction():
    txn, invite = started_invite()
    ack = transmitted(txn.receive(response(invite, 404), 1.0))[0]
    again = parse_message(serialize(ack))
    assert isinstance(again, SipRequest)
    assert again.headers == ack.headers
    assert server_key(again) == server_key(invite)


def test_invite_client_answers_a_retransmitted_failure_with_the_same_ack_and_no_deliver():
    txn, invite = started_invite()
    first = transmitted(txn.receive(response(invite, 486), 0.2))
    again = txn.receive(response(invite, 486), 0.3)
    assert again == [Transmit(first[0])]


def test_invite_client_ignores_a_2xx_after_a_failure():
    txn, invite = started_invite()
    txn.receive(response(invite, 486), 1.0)
    assert txn.receive(response(invite, 200), 1.5) == []


def test_invite_client_timer_d_is_32_s_over_unreliable_transport():
    txn, invite = started_invite()
    txn.receive(response(invite, 503), 2.0)
    assert txn.deadline == 34.0
    assert txn.tick(33.9) == []
    assert txn.tick(34.0) == [Terminated()]


def test_invite_client_over_reliable_transport_ends_at_once_after_a_failure():
    txn, invite = started_invite(reliable=True)
    busy = response(invite, 486)
    outputs = txn.receive(busy, 1.0)
    assert [type(o) for o in outputs] == [Transmit, Deliver, Terminated]
    assert txn.deadline is None


def test_invite_client_ignores_responses_of_other_transactions():
    txn, invite = started_invite()
    assert txn.receive(response(request(branch="z9hG4bKother"), 180), 0.1) == []
    assert txn.receive(response(cancel_request(invite), 200), 0.1) == []  # the CANCEL's own 200
    assert txn.state == "calling"


def test_invite_client_ignores_responses_before_start():
    invite = request()
    txn = ClientInvite(invite, reliable=False)
    assert txn.receive(response(invite, 180), 0.0) == []
    assert txn.deadline is None


def test_cancel_crossing_a_200_delivers_the_200_and_is_accepted():
    txn, invite = started_invite()
    txn.receive(response(invite, 180), 0.2)
    assert txn.cancelled(5.0) == []
    assert txn.deadline == 5.0 + TIMEOUT
    ok = response(invite, 200)
    assert txn.receive(ok, 5.1) == [Deliver(ok)]
    assert txn.state == "accepted"
    assert txn.deadline == 5.1 + TIMEOUT  # Timer M; the CANCEL bound is gone


def test_cancelled_then_silence_times_out_after_64_t1():
    txn, invite = started_invite()
    txn.receive(response(invite, 180), 1.0)
    txn.cancelled(10.0)
    assert txn.tick(10.0 + TIMEOUT - 0.01) == []
    assert txn.tick(10.0 + TIMEOUT) == [TimedOut(), Terminated()]


def test_cancelled_then_487_is_acked_and_delivered():
    txn, invite = started_invite()
    txn.receive(response(invite, 180), 1.0)
    txn.cancelled(10.0)
    terminated = response(invite, 487)
    outputs = txn.receive(terminated, 10.2)
    assert outputs[1:] == [Deliver(terminated)]
    assert transmitted(outputs)[0].method == "ACK"
    assert txn.deadline == 10.2 + 32.0  # Timer D replaces the CANCEL bound


def test_cancelled_twice_keeps_the_first_bound():
    txn, invite = started_invite()
    txn.receive(response(invite, 180), 1.0)
    txn.cancelled(10.0)
    txn.cancelled(20.0)
    assert txn.deadline == 10.0 + TIMEOUT


def test_cancelled_in_calling_keeps_timer_a_and_b():
    txn, _ = started_invite()
    txn.cancelled(0.1)
    assert txn.deadline == T1
    assert retransmission_times(txn, TIMEOUT)[-1] == 31.5
    assert txn.tick(TIMEOUT) == [TimedOut(), Terminated()]  # Timer B comes before the CANCEL bound


def test_cancelled_after_the_final_response_does_nothing():
    txn, invite = started_invite()
    txn.receive(response(invite, 200), 1.0)
    assert txn.cancelled(1.1) == []
    assert txn.deadline == 1.0 + TIMEOUT


def test_cancelled_before_start_is_a_tu_error():
    with pytest.raises(TransactionError):
        ClientInvite(request(), reliable=False).cancelled(0.0)


def test_invite_client_transport_error_before_a_final_response_times_out():
    for provisional in (False, True):
        txn, invite = started_invite()
        if provisional:
            txn.receive(response(invite, 180), 0.1)
        assert txn.transport_error(0.2) == [TimedOut(), Terminated()]
        assert txn.deadline is None


def test_invite_client_transport_error_after_a_final_response_is_ignored():
    txn, invite = started_invite()
    txn.receive(response(invite, 486), 0.1)
    assert txn.transport_error(0.2) == []
    assert txn.state == "completed"


def test_start_twice_is_a_tu_error():
    txn, _ = started_invite()
    with pytest.raises(TransactionError):
        txn.start(1.0)


def test_client_invite_refuses_other_methods_and_requests_without_branch():
    with pytest.raises(ValueError):
        ClientInvite(request("OPTIONS"), reliable=False)
    invite = request()
    invite.headers.set("Via", "SIP/2.0/UDP pc33.atlanta.example")
    with pytest.raises(ValueError):
        ClientInvite(invite, reliable=False)


def test_nothing_but_nothing_after_terminated():
    txn, invite = started_invite()
    txn.transport_error(0.1)
    assert txn.receive(response(invite, 200), 0.2) == []
    assert txn.tick(100.0) == []
    assert txn.cancelled(0.3) == []
    assert txn.transport_error(0.4) == []


# --- client non-INVITE ----------------------------------------------------------------------------


def started_non_invite(*, reliable: bool = False, now: float = 0.0) -> tuple[ClientNonInvite, SipRequest]:
    options = request("OPTIONS")
    txn = ClientNonInvite(options, reliable=reliable)
    assert txn.start(now) == [Transmit(options)]
    return txn, options


def test_non_invite_client_timer_e_doubles_up_to_t2_until_timer_f():
    txn, _ = started_non_invite()
    assert txn.state == "trying"
    # intervals 0.5, 1, 2, then capped at 4
    assert retransmission_times(txn, TIMEOUT) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert txn.deadline == TIMEOUT
    assert txn.tick(TIMEOUT) == [TimedOut(), Terminated()]


def test_non_invite_client_timer_e_stays_at_t2_in_proceeding():
    txn, options = started_non_invite()
    txn.tick(0.5)  # next at 1.5 (interval 1)
    trying = response(options, 100)
    assert txn.receive(trying, 0.7) == [Deliver(trying)]
    assert txn.state == "proceeding"
    assert txn.deadline == 1.5  # the running timer is not reset by the 1xx
    assert transmitted(txn.tick(1.5)) == [options]
    assert txn.deadline == 1.5 + T2  # from here on, T2
    txn.tick(5.5)
    assert txn.deadline == 5.5 + T2


def test_non_invite_client_timer_f_fires_in_proceeding_too():
    txn, options = started_non_invite(reliable=True)
    txn.receive(response(options, 100), 0.1)
    assert txn.tick(TIMEOUT) == [TimedOut(), Terminated()]


def test_non_invite_client_over_reliable_transport_never_retransmits():
    txn, _ = started_non_invite(reliable=True)
    assert txn.deadline == TIMEOUT
    assert txn.tick(TIMEOUT) == [TimedOut(), Terminated()]


def test_non_invite_client_final_response_is_delivered_then_timer_k():
    txn, options = started_non_invite()
    ok = response(options, 200)
    assert txn.receive(ok, 0.2) == [Deliver(ok)]
    assert txn.state == "completed"
    assert txn.deadline == 0.2 + T4
    assert txn.receive(response(options, 200), 2.0) == []  # retransmission absorbed
    assert txn.tick(0.2 + T4) == [Terminated()]


def test_non_invite_client_failure_is_delivered_like_a_success():
    txn, options = started_non_invite()
    refused = response(options, 403)
    assert txn.receive(refused, 0.2) == [Deliver(refused)]  # no ACK: that is for INVITE only


def test_non_invite_client_over_reliable_transport_ends_with_the_final_response():
    txn, options = started_non_invite(reliable=True)
    ok = response(options, 200)
    assert txn.receive(ok, 1.0) == [Deliver(ok), Terminated()]
    assert txn.deadline is None


def test_non_invite_client_transport_error_times_out():
    txn, _ = started_non_invite()
    assert txn.transport_error(0.1) == [TimedOut(), Terminated()]


def test_non_invite_client_transport_error_in_completed_is_ignored():
    txn, options = started_non_invite()
    txn.receive(response(options, 200), 0.1)
    assert txn.transport_error(0.2) == []


def test_non_invite_client_refuses_invite_and_ack():
    for method in ("INVITE", "ACK"):
        with pytest.raises(ValueError):
            ClientNonInvite(request(method), reliable=False)


def test_non_invite_client_carries_a_cancel():
    txn = ClientNonInvite(cancel_request(request()), reliable=False)
    assert txn.key == (BRANCH, "CANCEL")


# --- server INVITE --------------------------------------------------------------------------------


def server_invite(*, reliable: bool = False) -> tuple[ServerInvite, SipRequest]:
    invite = request()
    return ServerInvite(invite, reliable=reliable), invite


def test_server_invite_starts_in_proceeding_without_timers():
    txn, _ = server_invite()
    assert txn.state == "proceeding"
    assert txn.deadline is None
    assert txn.final is None
    assert txn.key == (BRANCH, "pc33.atlanta.example:5060", "INVITE")


def test_retransmitted_invite_resends_the_last_provisional():
    txn, invite = server_invite()
    assert txn.receive(request(), 0.1) == []  # nothing sent yet
    trying, ringing = make_response(invite, 100), make_response(invite, 180, to_tag="t")
    assert txn.respond(trying, 0.1) == [Transmit(trying)]
    assert txn.receive(request(), 0.2) == [Transmit(trying)]
    assert txn.respond(ringing, 0.3) == [Transmit(ringing)]
    assert txn.receive(request(), 0.4) == [Transmit(ringing)]
    assert txn.state == "proceeding"


def test_server_invite_2xx_is_retransmitted_t1_doubling_to_t2_until_acknowledged():
    txn, invite = server_invite()
    ok = make_response(invite, 200, to_tag="t")
    assert txn.respond(ok, 0.0) == [Transmit(ok)]
    assert txn.state == "accepted"
    assert txn.final is ok
    assert retransmission_times(txn, 12.0) == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert txn.tick(15.5) == [Transmit(ok)]
    assert txn.acknowledged(16.0) == []
    assert txn.deadline == TIMEOUT  # only Timer L remains
    assert txn.tick(TIMEOUT) == [Terminated()]


def test_server_invite_2xx_never_acknowledged_gives_no_ack_at_timer_l():
    txn, invite = server_invite()
    txn.respond(make_response(invite, 200, to_tag="t"), 0.0)
    assert retransmission_times(txn, TIMEOUT)[-1] == 31.5
    assert txn.deadline == TIMEOUT
    assert txn.tick(TIMEOUT) == [NoAck(), Terminated()]


def test_server_invite_over_reliable_transport_sends_the_2xx_once_and_waits_for_timer_l():
    txn, invite = server_invite(reliable=True)
    ok = make_response(invite, 200, to_tag="t")
    assert txn.respond(ok, 1.0) == [Transmit(ok)]
    assert txn.deadline == 1.0 + TIMEOUT
    assert txn.tick(1.0 + TIMEOUT) == [NoAck(), Terminated()]


def test_server_invite_over_reliable_transport_acknowledged_ends_quietly():
    txn, invite = server_invite(reliable=True)
    txn.respond(make_response(invite, 200, to_tag="t"), 1.0)
    assert txn.acknowledged(2.0) == []
    assert txn.tick(1.0 + TIMEOUT) == [Terminated()]


def test_retransmitted_invite_in_accepted_resends_the_2xx_until_acknowledged():
    txn, invite = server_invite()
    ok = make_response(invite, 200, to_tag="t")
    txn.respond(ok, 0.0)
    assert txn.receive(request(), 0.2) == [Transmit(ok)]
    txn.acknowledged(0.3)
    assert txn.receive(request(), 0.4) == []


def test_acknowledged_again_is_harmless_and_after_termination_does_nothing():
    txn, invite = server_invite()
    txn.respond(make_response(invite, 200, to_tag="t"), 0.0)
    assert txn.acknowledged(0.3) == []
    assert txn.acknowledged(0.4) == []
    txn.tick(TIMEOUT)
    assert txn.acknowledged(TIMEOUT + 1) == []


def test_acknowledged_without_a_2xx_is_a_tu_error():
    txn, invite = server_invite()
    with pytest.raises(TransactionError):
        txn.acknowledged(0.0)
    txn.respond(make_response(invite, 486, to_tag="t"), 0.0)
    with pytest.raises(TransactionError):
        txn.acknowledged(0.1)


def test_acknowledged_after_timer_l_was_due_reports_no_ack_first():
    txn, invite = server_invite(reliable=True)
    txn.respond(make_response(invite, 200, to_tag="t"), 0.0)
    assert txn.acknowledged(40.0) == [NoAck(), Terminated()]


def test_server_invite_failure_retransmitted_by_timer_g_until_timer_h():
    txn, invite = server_invite()
    busy = make_response(invite, 486, to_tag="t")
    assert txn.respond(busy, 0.0) == [Transmit(busy)]
    assert txn.state == "completed"
    assert txn.tick(0.5) == [Transmit(busy)]
    assert retransmission_times(txn, TIMEOUT) == [1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert txn.deadline == TIMEOUT
    assert txn.tick(TIMEOUT) == [TimedOut(), Terminated()]


def test_retransmitted_invite_in_completed_resends_the_failure():
    txn, invite = server_invite()
    busy = make_response(invite, 486, to_tag="t")
    txn.respond(busy, 0.0)
    assert txn.receive(request(), 0.2) == [Transmit(busy)]


def test_ack_for_a_failure_confirms_then_timer_i_ends_it():
    txn, invite = server_invite()
    txn.respond(make_response(invite, 486, to_tag="t"), 0.0)
    assert txn.receive(request("ACK"), 0.3) == []
    assert txn.state == "confirmed"
    assert txn.deadline == 0.3 + T4  # G and H stopped
    assert txn.receive(request("ACK"), 1.0) == []  # absorbed
    assert txn.receive(request(), 1.0) == []  # absorbed too
    assert txn.tick(0.3 + T4) == [Terminated()]


def test_ack_for_a_failure_over_reliable_transport_ends_at_once():
    txn, invite = server_invite(reliable=True)
    busy = make_response(invite, 486, to_tag="t")
    txn.respond(busy, 0.0)
    assert txn.deadline == TIMEOUT  # Timer H only: no G over TCP
    assert txn.receive(request("ACK"), 1.0) == [Terminated()]


def test_server_invite_ignores_ack_in_proceeding_and_accepted():
    txn, invite = server_invite()
    assert txn.receive(request("ACK"), 0.1) == []
    assert txn.state == "proceeding"
    txn.respond(make_response(invite, 200, to_tag="t"), 0.2)
    assert txn.receive(request("ACK"), 0.3) == []
    assert txn.state == "accepted"


def test_server_invite_ignores_requests_of_other_transactions():
    txn, invite = server_invite()
    txn.respond(make_response(invite, 180, to_tag="t"), 0.0)
    assert txn.receive(request(branch="z9hG4bKelse"), 0.1) == []
    assert txn.receive(cancel_request(invite), 0.1) == []


def test_respond_after_the_final_response_is_a_tu_error():
    txn, invite = server_invite()
    txn.respond(make_response(invite, 200, to_tag="t"), 0.0)
    with pytest.raises(TransactionError):
        txn.respond(make_response(invite, 486, to_tag="t"), 0.1)
    assert txn.state == "accepted"


def test_respond_with_a_non_sip_status_is_refused():
    txn, invite = server_invite()
    with pytest.raises(ValueError):
        txn.respond(make_response(invite, 99), 0.0)


def test_server_invite_for_an_rfc_2543_request_matches_nothing():
    old = request(branch="1234abcd")
    txn = ServerInvite(old, reliable=False)
    assert txn.key is None
    txn.respond(make_response(old, 180, to_tag="t"), 0.0)
    assert txn.receive(old, 0.1) == []


def test_server_invite_refuses_other_methods():
    with pytest.raises(ValueError):
        ServerInvite(request("BYE"), reliable=False)


# --- server non-INVITE ----------------------------------------------------------------------------


def test_server_non_invite_absorbs_retransmissions_while_trying():
    txn = ServerNonInvite(request("BYE"), reliable=False)
    assert txn.state == "trying"
    assert txn.receive(request("BYE"), 0.1) == []


def test_server_non_invite_resends_the_last_provisional_in_proceeding():
    bye = request("BYE")
    txn = ServerNonInvite(bye, reliable=False)
    trying = make_response(bye, 100)
    assert txn.respond(trying, 0.0) == [Transmit(trying)]
    assert txn.state == "proceeding"
    assert txn.receive(request("BYE"), 0.5) == [Transmit(trying)]


def test_server_non_invite_answers_retransmissions_with_the_final_during_timer_j():
    bye = request("BYE")
    txn = ServerNonInvite(bye, reliable=False)
    ok = make_response(bye, 200)
    assert txn.respond(ok, 1.0) == [Transmit(ok)]
    assert txn.state == "completed"
    assert txn.final is ok
    assert txn.deadline == 1.0 + TIMEOUT
    assert txn.receive(request("BYE"), 20.0) == [Transmit(ok)]
    assert txn.receive(request("BYE"), 1.0 + TIMEOUT - 0.1) == [Transmit(ok)]
    assert txn.tick(1.0 + TIMEOUT) == [Terminated()]


def test_late_call_fires_timer_j_first_so_the_retransmission_gets_nothing():
    bye = request("BYE")
    txn = ServerNonInvite(bye, reliable=False)
    txn.respond(make_response(bye, 200), 0.0)
    assert txn.receive(request("BYE"), 40.0) == [Terminated()]  # J was due: the request is a new one


def test_server_non_invite_over_reliable_transport_ends_with_the_final():
    bye = request("BYE")
    txn = ServerNonInvite(bye, reliable=True)
    ok = make_response(bye, 200)
    assert txn.respond(ok, 0.0) == [Transmit(ok), Terminated()]
    assert txn.deadline is None


def test_server_non_invite_respond_after_final_is_a_tu_error():
    bye = request("BYE")
    txn = ServerNonInvite(bye, reliable=False)
    txn.respond(make_response(bye, 200), 0.0)
    with pytest.raises(TransactionError):
        txn.respond(make_response(bye, 500), 0.1)


def test_server_non_invite_ignores_other_transactions():
    bye = request("BYE")
    txn = ServerNonInvite(bye, reliable=False)
    txn.respond(make_response(bye, 200), 0.0)
    assert txn.receive(request("BYE", branch="z9hG4bKelse"), 0.1) == []


def test_server_non_invite_refuses_invite_and_ack():
    for method in ("INVITE", "ACK"):
        with pytest.raises(ValueError):
            ServerNonInvite(request(method), reliable=False)


# --- properties: whatever the peer, the clock and the transport do ---------------------------------

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
OUTPUT_TYPES = (Transmit, Deliver, TimedOut, NoAck, Terminated)
STATUSES = st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 487, 500, 603])
# Wait a little, or jump to the deadline, or far beyond it (an event loop running late).
STEPS = st.one_of(st.floats(0, 2, allow_nan=False), st.just("deadline"), st.floats(0, 70, allow_nan=False))


class Watch:
    """Calls into a transaction with a monotonic fake clock, checking what every call returns."""

    def __init__(self, txn) -> None:
        self.txn = txn
        self.now = 0.0
        self.terminated = 0

    def advance(self, step) -> None:
        if step == "deadline":
            if self.txn.deadline is not None:
                self.now = max(self.now, self.txn.deadline)
        else:
            self.now += step

    def call(self, method: str, *args, tu: bool = False) -> list | None:
        """The outputs, or None when a TU method was refused."""
        before = self.txn.state
        lingering, deadline_before = self.txn.lingering, self.txn.deadline
        try:
            outputs = getattr(self.txn, method)(*args, self.now)
        except TransactionError:
            assert tu, f"{method} raised TransactionError: only TU methods may"
            assert self.txn.state == before  # a refused call changes nothing
            return None
        assert all(isinstance(o, OUTPUT_TYPES) for o in outputs)
        if before == "terminated":
            assert outputs == []
        ends = [o for o in outputs if isinstance(o, Terminated)]
        self.terminated += len(ends)
        assert self.terminated <= 1
        if ends:
            assert outputs[-1] == Terminated()
            assert self.txn.state == "terminated"
        assert (self.txn.state == "terminated") == (self.terminated == 1)
        if any(isinstance(o, TimedOut | NoAck) for o in outputs):
            assert ends  # the TU is told why, then the transaction is over
        deadline = self.txn.deadline
        assert deadline is None or deadline > self.now  # nothing left due at `now`
        if self.txn.state == "terminated":
            assert deadline is None
        if lingering:
            # What sipline keeps of a lingering machine, once it drops it, is all it still does:
            # no event for its owner, the same deadline, and no message but its echo.
            assert not any(isinstance(o, Deliver | TimedOut | NoAck) for o in outputs)
            assert self.txn.state == "terminated" or (self.txn.lingering and deadline == deadline_before)
            for output in outputs:
                if isinstance(output, Terminated):
                    continue
                assert isinstance(output, Transmit)
                if isinstance(self.txn, ServerNonInvite):
                    assert output.message is self.txn.final
                else:
                    assert isinstance(self.txn, ClientInvite) and output.message.method == "ACK"
        return outputs


def peer_responses(invite: SipRequest):
    other = request(branch="z9hG4bKother")
    return st.one_of(
        st.builds(lambda status, tag: response(invite, status, to_tag=tag), STATUSES, st.sampled_from(["a", "b"])),
        st.builds(lambda status: response(other, status), STATUSES),  # another transaction's
    )


def client_actions(req: SipRequest, *, invite: bool):
    actions = [
        st.tuples(st.just("receive"), peer_responses(req)),
        st.tuples(st.just("tick")),
        st.tuples(st.just("transport_error")),
    ]
    if invite:
        actions.append(st.tuples(st.just("cancelled")))
    return st.lists(st.tuples(STEPS, st.one_of(*actions)), max_size=25)


def check_client(txn, actions, request_sent: SipRequest) -> None:
    watch = Watch(txn)
    assert watch.call("start", tu=True) == [Transmit(request_sent)]
    delivered_final = False
    for step, (method, *args) in actions:
        watch.advance(step)
        outputs = watch.call(method, *args, tu=method == "cancelled")
        assert outputs is not None  # cancelled after start is never refused
        for output in outputs:
            if isinstance(output, Transmit):
                sent = output.message
                assert sent is request_sent or (isinstance(sent, SipRequest) and sent.method == "ACK")
            if isinstance(output, Deliver):
                assert client_key(output.response) == txn.key
                status = output.response.status
                # After a final response only further 2xx (INVITE forks, retransmissions) come up.
                assert not delivered_final or (200 <= status < 300 and isinstance(txn, ClientInvite))
                delivered_final = delivered_final or status >= 200


@PROPERTY
@given(st.booleans(), st.data())
def test_client_invite_holds_its_invariants_whatever_happens(reliable, data):
    invite = request()
    check_client(ClientInvite(invite, reliable=reliable), data.draw(client_actions(invite, invite=True)), invite)


@PROPERTY
@given(st.booleans(), st.data())
def test_client_non_invite_holds_its_invariants_whatever_happens(reliable, data):
    options = request("OPTIONS")
    check_client(ClientNonInvite(options, reliable=reliable), data.draw(client_actions(options, invite=False)), options)


def server_actions(req: SipRequest, *, invite: bool):
    same = st.just(req)
    requests = [same, st.just(request(req.method, branch="z9hG4bKother"))]
    if invite:
        requests += [
            st.just(request("ACK")),
            st.just(request("ACK", branch="z9hG4bKnew")),
            st.just(cancel_request(req)),
        ]
    actions = [
        st.tuples(st.just("receive"), st.one_of(*requests)),
        st.tuples(st.just("respond"), st.builds(lambda s: make_response(req, s, to_tag="t"), STATUSES)),
        st.tuples(st.just("tick")),
    ]
    if invite:
        actions.append(st.tuples(st.just("acknowledged")))
    return st.lists(st.tuples(STEPS, st.one_of(*actions)), max_size=25)


def check_server(txn, actions, answering: tuple[str, ...]) -> None:
    watch = Watch(txn)
    sent: list[SipResponse] = []
    for step, (method, *args) in actions:
        watch.advance(step)
        state = txn.state
        outputs = watch.call(method, *args, tu=method in ("respond", "acknowledged"))
        if method == "respond":
            assert (outputs is None) == (state not in answering)  # refused exactly after the final
        if method == "acknowledged":
            assert (outputs is None) == (state not in ("accepted", "terminated"))
        if outputs is None:
            continue
        if method == "respond":
            sent.append(args[0])
            assert outputs[0] == Transmit(args[0])
        for output in outputs:
            assert not isinstance(output, Deliver)
            if isinstance(output, Transmit):
                assert any(output.message is response for response in sent)  # only what the TU gave


@PROPERTY
@given(st.booleans(), st.data())
def test_server_invite_holds_its_invariants_whatever_happens(reliable, data):
    invite = request()
    check_server(
        ServerInvite(invite, reliable=reliable), data.draw(server_actions(invite, invite=True)), ("proceeding",)
    )


@PROPERTY
@given(st.booleans(), st.data())
def test_server_non_invite_holds_its_invariants_whatever_happens(reliable, data):
    bye = request("BYE")
    txn = ServerNonInvite(bye, reliable=reliable)
    check_server(txn, data.draw(server_actions(bye, invite=False)), ("trying", "proceeding"))
