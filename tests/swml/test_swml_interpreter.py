"""Running SWML for a call: the actions each method becomes, variables, flow between sections."""

from __future__ import annotations

import pytest

from sipline.handlers.actions import Callback, Dial, DialResult, DocumentError, Fetch, Finished, Hangup, Pause, Target
from sipline.swml import parse
from sipline.swml.interpreter import FOREVER_SECONDS, MAX_JUMPS
from tests.swml.helpers import (
    ANSWERED,
    BUSY,
    CALL,
    NO_ANSWER,
    dials,
    outcomes,
    parsed,
    run,
    session,
    swml,
    uris,
)

# connect


def test_connect_to_a_sip_uri_is_one_dial_with_signalwires_defaults():
    actions = run(swml({"connect": {"to": "sip:alice@example.com"}}), outcomes(ANSWERED))
    assert actions[0] == Dial(
        targets=(Target("sip:alice@example.com"),), timeout=60.0, caller_id=None, caller_name=None, time_limit=14400.0
    )
    assert actions[-1] == Finished(ANSWERED)


def test_connect_to_a_number_dials_the_number():
    (dial,) = dials(run(swml({"connect": {"to": "+15551230000"}})))
    assert dial.targets == (Target("+15551230000", kind="number"),)


def test_connect_fields_reach_the_dial():
    connect = {
        "to": "sip:bob@pbx.example.com;transport=tcp",
        "from": "+15551112222",
        "from_name": "Support Team",
        "timeout": 25,
        "max_duration": 3600,
        "answer_on_bridge": True,
        "headers": [{"name": "X-Ticket", "value": "T-1"}],
        "codecs": "PCMU, OPUS",
        "username": "bob",
        "password": "s3cret",
    }
    (dial,) = dials(run(swml({"connect": connect})))
    assert dial == Dial(
        targets=(
            Target("sip:bob@pbx.example.com;transport=tcp", username="bob", password="s3cret", codecs=("PCMU", "OPUS")),
        ),
        timeout=25.0,
        caller_id="+15551112222",
        caller_name="Support Team",
        time_limit=3600.0,
        headers=(("X-Ticket", "T-1"),),
    )


def test_connect_from_a_sip_uri_gives_its_user_part_as_caller_id():
    (dial,) = dials(run(swml({"connect": {"to": "sip:a@b", "from": "sip:chris@example.com"}})))
    assert dial.caller_id == "chris"


def test_connect_headers_as_a_mapping():
    (dial,) = dials(run(swml({"connect": {"to": "sip:a@b", "headers": {"X-A": "1", "X-B": "2"}}})))
    assert dial.headers == (("X-A", "1"), ("X-B", "2"))


def test_connect_call_state_url_is_a_json_callback_with_events_in_the_engines_words():
    connect = {
        "to": "sip:a@b",
        "call_state_url": "https://hooks.example.com/state",
        "call_state_events": ["created", "ringing", "answered", "ended"],
    }
    (dial,) = dials(run(swml({"connect": connect})))
    assert dial.targets[0].callback == Callback(
        "https://hooks.example.com/state",
        "POST",
        frozenset({"initiated", "ringing", "answered", "completed"}),
        json=True,
    )


def test_connect_call_state_events_default_to_ended():
    (dial,) = dials(run(swml({"connect": {"to": "sip:a@b", "call_state_url": "https://h.example.com/s"}})))
    assert dial.targets[0].callback is not None
    assert dial.targets[0].callback.events == frozenset({"completed"})


def test_connect_without_call_state_url_has_no_callback():
    (dial,) = dials(run(swml({"connect": {"to": "sip:a@b", "call_state_events": ["ringing"]}})))
    assert dial.targets[0].callback is None


def test_parallel_destinations_are_rung_together_in_one_dial():
    parallel = {
        "from": "+15551112222",
        "parallel": [
            {"to": "sip:alice@example.com", "username": "alice_user", "password": "alice_pw"},
            {"to": "sip:bob@example.com", "codecs": "PCMU"},
        ],
    }
    (dial,) = dials(run(swml({"connect": parallel})))
    assert dial.targets == (
        Target("sip:alice@example.com", username="alice_user", password="alice_pw"),
        Target("sip:bob@example.com", codecs=("PCMU",)),
    )
    assert dial.caller_id == "+15551112222"


def test_serial_destinations_are_dialled_one_after_the_other_until_one_answers():
    serial = {
        "timeout": 20,
        "serial": [
            {"from": "sip:chris@example.com", "to": "sip:alice@example.com"},
            {"to": "sip:bob@example.com", "codecs": "PCMU", "timeout": 10},
            {"to": "sip:carol@example.com"},
        ],
    }
    actions = run(swml({"connect": serial}), outcomes(BUSY, ANSWERED))
    first, second = dials(actions)
    assert (first.targets[0].uri, first.timeout, first.caller_id) == ("sip:alice@example.com", 20.0, "chris")
    assert (second.targets[0].uri, second.timeout, second.caller_id) == ("sip:bob@example.com", 10.0, None)
    assert actions[-1] == Finished(ANSWERED)


def test_serial_with_every_destination_failing_tries_them_all():
    serial = {"serial": [{"to": "sip:a@x"}, {"to": "sip:b@x"}, {"to": "+15551230000"}]}
    actions = run(swml({"connect": serial}, {"hangup": {"reason": "busy"}}), outcomes(BUSY, NO_ANSWER, BUSY))
    assert uris(actions) == [("sip:a@x",), ("sip:b@x",), ("+15551230000",)]
    assert actions[-1] == Hangup("busy")


def test_serial_parallel_tries_each_group_rung_together():
    groups = {"serial_parallel": [[{"to": "sip:a@x"}, {"to": "sip:b@x"}], [{"to": "sip:fallback@x"}]]}
    actions = run(swml({"connect": groups}), outcomes(NO_ANSWER, ANSWERED))
    assert uris(actions) == [("sip:a@x", "sip:b@x"), ("sip:fallback@x",)]


def test_a_caller_who_hangs_up_stops_the_serial_and_the_document():
    serial = {"serial": [{"to": "sip:a@x"}, {"to": "sip:b@x"}]}
    gone = DialResult("canceled", caller_hung_up=True)
    actions = run(swml({"connect": serial}, {"sleep": 1000}), outcomes(gone))
    assert uris(actions) == [("sip:a@x",)]
    assert actions[-1] == Finished(gone)


def test_after_a_bridge_ends_the_document_goes_on():
    actions = run(swml({"connect": {"to": "sip:a@x"}}, {"hangup": {"reason": "decline"}}), outcomes(ANSWERED))
    assert actions[-1] == Hangup("decline")


@pytest.mark.parametrize(
    ("result", "connect_result", "reason"),
    [
        (DialResult("completed", 200), "connected", "none"),
        (DialResult("answered", 200), "connected", "none"),
        (DialResult("busy", 486), "failed", "busy"),
        (DialResult("no-answer", 480), "failed", "noAnswer"),
        (DialResult("canceled"), "failed", "cancel"),
        (DialResult("failed", 603), "failed", "decline"),
        (DialResult("failed", 404), "failed", "notFound"),
        (DialResult("failed", 600), "failed", "busy"),
        (DialResult("failed", 408), "failed", "noAnswer"),
        (DialResult("failed", 503), "failed", "error"),
        (DialResult("failed"), "failed", "error"),
    ],
)
def test_connect_sets_connect_result_and_connect_failed_reason(result, connect_result, reason):
    sw = session()
    run(swml({"connect": {"to": "sip:a@x"}}), outcomes(result), sw=sw)
    assert sw.vars["connect_result"] == connect_result
    assert sw.vars["connect_failed_reason"] == reason
    assert sw.vars["return_value"] == connect_result


def test_connect_result_switch_runs_the_matching_case():
    connect = {
        "to": "sip:a@x",
        "result": {"case": {"connected": [{"hangup": {}}]}, "default": [{"hangup": {"reason": "busy"}}]},
    }
    assert run(swml({"connect": connect}), outcomes(ANSWERED))[-1] == Hangup("hangup")
    assert run(swml({"connect": connect}), outcomes(BUSY))[-1] == Hangup("busy")


def test_connect_result_switch_on_another_variable():
    connect = {
        "to": "sip:a@x",
        "result": {"variable": "connect_failed_reason", "case": {"noAnswer": [{"connect": {"to": "sip:vm@x"}}]}},
    }
    actions = run(swml({"connect": connect}), outcomes(NO_ANSWER, ANSWERED))
    assert uris(actions) == [("sip:a@x",), ("sip:vm@x",)]


def test_connect_result_cond():
    connect = {
        "to": "sip:a@x",
        "result": [
            {"when": "connect_failed_reason == 'busy'", "then": [{"hangup": {"reason": "busy"}}]},
            {"else": [{"hangup": {"reason": "decline"}}]},
        ],
    }
    assert run(swml({"connect": connect}), outcomes(BUSY))[-1] == Hangup("busy")
    assert run(swml({"connect": connect}), outcomes(NO_ANSWER))[-1] == Hangup("decline")


def test_a_result_with_no_matching_case_goes_on_after_the_connect():
    connect = {"to": "sip:a@x", "result": {"case": {"failed": [{"hangup": {"reason": "busy"}}]}}}
    actions = run(swml({"connect": connect}, {"sleep": 500}), outcomes(ANSWERED))
    assert actions[-2:] == [Pause(0.5), Finished(ANSWERED)]


def test_the_end_of_main_finishes_with_the_last_dial_result():
    serial = {"serial": [{"to": "sip:a@x"}, {"to": "sip:b@x"}]}
    assert run(swml({"connect": serial}), outcomes(BUSY, NO_ANSWER))[-1] == Finished(NO_ANSWER)
    assert run(swml({"set": {"a": 1}}))[-1] == Finished(None)


# hangup, sleep


def test_hangup_defaults_to_reason_hangup():
    assert run(swml("hangup"))[-1] == Hangup("hangup")
    assert run(swml({"hangup": {}}))[-1] == Hangup("hangup")
    assert run(swml({"hangup": {"reason": "busy"}}, {"sleep": 10}))[-1] == Hangup("busy")


def test_sleep_pauses_for_its_milliseconds():
    assert run(swml({"sleep": 1500}, {"sleep": {"duration": 250}}, {"sleep": 0}))[:3] == [
        Pause(1.5),
        Pause(0.25),
        Pause(0.0),
    ]


def test_sleep_forever_waits_the_longest_a_call_lasts_then_hangs_up():
    assert run(swml({"sleep": -1}, {"connect": {"to": "sip:a@x"}})) == [Pause(FOREVER_SECONDS), Hangup("hangup")]


# transfer, execute, return


def test_transfer_to_a_section_does_not_come_back():
    document = swml(
        {"transfer": {"dest": "subsection"}},
        {"connect": {"to": "sip:never@x"}},
        subsection=[{"connect": {"to": "sip:sub@x"}}],
    )
    assert uris(run(document)) == [("sip:sub@x",)]


def test_transfer_passes_params_to_the_section():
    document = swml(
        {"transfer": {"dest": "sales", "params": {"who": "alice", "from": "%{call.from}"}}},
        sales=[{"connect": {"to": "sip:%{params.who}@x", "headers": {"X-From": "%{params.from}"}}}],
    )
    (dial,) = dials(run(document))
    assert dial.targets[0].uri == "sip:alice@x"
    assert dial.headers == (("X-From", CALL.from_),)


def test_execute_runs_a_section_and_comes_back_with_its_return_value():
    document = swml(
        {"execute": {"dest": "pick", "params": {"ext": "1001"}}},
        {"connect": {"to": "sip:%{return_value}@x"}},
        pick=[{"return": "desk-%{params.ext}"}, {"connect": {"to": "sip:never@x"}}],
    )
    assert uris(run(document)) == [("sip:desk-1001@x",)]


def test_execute_comes_back_at_the_end_of_the_section_too():
    document = swml(
        {"execute": {"dest": "ring"}},
        {"connect": {"to": "sip:after@x"}},
        ring=[{"connect": {"to": "sip:first@x"}}],
    )
    assert uris(run(document)) == [("sip:first@x",), ("sip:after@x",)]


def test_execute_on_return_and_result_run_after_the_return():
    document = swml(
        {
            "execute": {
                "dest": "check",
                "result": {"case": {"vip": [{"connect": {"to": "sip:vip@x"}}]}, "default": ["hangup"]},
                "on_return": [{"set": {"after": "yes"}}],
            }
        },
        check=[{"return": "vip"}],
    )
    sw = session()
    assert uris(run(document, sw=sw)) == [("sip:vip@x",)]
    assert sw.vars["after"] == "yes"


def test_return_in_main_ends_the_script():
    actions = run(swml({"return": 1}, {"connect": {"to": "sip:never@x"}}))
    assert actions == [Finished(None)]


def test_return_inside_a_block_returns_from_the_section():
    document = swml(
        {"execute": {"dest": "sub"}},
        {"connect": {"to": "sip:%{return_value}@x"}},
        sub=[{"cond": [{"when": "true", "then": [{"return": "inner"}]}]}, {"return": "outer"}],
    )
    assert uris(run(document)) == [("sip:inner@x",)]


def test_transfer_inside_an_executed_section_returns_to_the_executor():
    document = swml(
        {"execute": {"dest": "a"}},
        {"connect": {"to": "sip:main@x"}},
        a=[{"transfer": {"dest": "b"}}, {"connect": {"to": "sip:never@x"}}],
        b=[{"connect": {"to": "sip:b@x"}}],
    )
    assert uris(run(document)) == [("sip:b@x",), ("sip:main@x",)]


def test_transfer_to_a_url_fetches_the_next_document_with_the_call_vars_and_params():
    first = swml(
        {"set": {"department": "sales"}},
        {"transfer": {"dest": "https://app.example.com/next", "params": {"where": "%{vars.department}", "n": 2}}},
        {"connect": {"to": "sip:never@x"}},
    )
    second = parsed(swml({"connect": {"to": "sip:%{params.where}@x"}}))
    sw = session()
    action = sw.begin(parsed(first))
    assert action == Fetch("https://app.example.com/next", "POST", params=(("where", "sales"), ("n", "2")), json=True)
    body = sw.fetch_body()
    assert body["params"] == {"where": "sales", "n": 2}
    assert body["vars"] == {"department": "sales"}
    assert body["call"]["call_id"] == CALL.call_id  # type: ignore[index]
    assert body["envs"] == {}
    (dial,) = dials([sw.begin(second)])
    assert dial.targets[0].uri == "sip:sales@x"
    assert sw.resume(ANSWERED) == Finished(ANSWERED)


def test_execute_of_a_url_comes_back_to_the_first_document():
    first = swml(
        {"execute": {"dest": "https://app.example.com/lookup"}},
        {"connect": {"to": "sip:%{return_value}@x"}},
    )
    second = parsed(swml({"return": "agent7"}))
    actions = run(first, fetched=lambda fetch: second)
    assert isinstance(actions[0], Fetch)
    assert uris(actions) == [("sip:agent7@x",)]


def test_a_fetched_document_that_cannot_be_parsed_ends_the_call_with_its_error():
    sw = session()
    assert isinstance(sw.begin(parsed(swml({"transfer": {"dest": "https://app.example.com/x"}}))), Fetch)
    error = parse(b"not: [valid", None, "https://app.example.com/x")
    assert isinstance(error, DocumentError)
    assert sw.begin(error) == error
    assert sw.resume(None) == error


def test_transfer_to_an_inline_document():
    inline = '{"version": "1.0.0", "sections": {"main": [{"connect": {"to": "sip:inline@x"}}]}}'
    assert uris(run(swml({"transfer": {"dest": inline}}))) == [("sip:inline@x",)]


def test_transfer_dest_from_a_variable():
    document = swml(
        {"set": {"next": "sales"}},
        {"transfer": {"dest": "%{vars.next}"}},
        sales=[{"connect": {"to": "sip:sales@x"}}],
    )
    assert uris(run(document)) == [("sip:sales@x",)]


def test_a_transfer_dest_from_a_variable_that_names_nothing_ends_the_call_with_an_error():
    actions = run(swml({"transfer": {"dest": "%{vars.missing}"}}))
    assert isinstance(actions[-1], DocumentError)
    assert actions[-1].message.startswith("sections.main[0].transfer.dest: '' is not a section")


# goto, label


def test_goto_loops_up_to_max_times_then_goes_on():
    document = swml({"label": "foo"}, {"connect": {"to": "sip:a@x"}}, {"goto": {"label": "foo", "max": 3}}, "hangup")
    actions = run(document)
    assert len(dials(actions)) == 4  # "repeated 4 times"
    assert actions[-1] == Hangup("hangup")


def test_goto_max_defaults_to_100_but_a_call_has_32_jumps():
    document = swml({"label": "foo"}, {"sleep": 10}, {"goto": "foo"})
    actions = run(document)
    assert actions.count(Pause(0.01)) == MAX_JUMPS + 1
    assert isinstance(actions[-1], DocumentError)
    assert "more than 32 goto and transfer jumps" in actions[-1].message
    assert actions[-1].details["swml_error"] == "relay_script_too_many_transfers"


def test_goto_when_decides_the_jump():
    document = swml(
        {"label": "retry"},
        {"connect": {"to": "sip:a@x"}},
        {"goto": {"label": "retry", "when": "connect_result == 'failed'", "max": 2}},
        "hangup",
    )
    assert len(dials(run(document, outcomes(BUSY, BUSY, BUSY)))) == 3
    assert len(dials(run(document, outcomes(BUSY, ANSWERED)))) == 2


def test_goto_max_counts_per_label_across_goto_steps():
    document = swml(
        {"label": "a"},
        {"sleep": 1},
        {"goto": {"label": "a", "max": 2, "when": "vars.phase == 1"}},
        {"set": {"phase": 1}},
        {"goto": {"label": "a", "max": 2}},
        "hangup",
    )
    actions = run(document)
    assert actions.count(Pause(0.001)) == 3  # one pass, then two jumps in all
    assert actions[-1] == Hangup("hangup")


def test_goto_from_a_block_jumps_in_its_section():
    document = swml(
        {"label": "top"},
        {"connect": {"to": "sip:a@x"}},
        {"switch": {"variable": "connect_result", "case": {"failed": [{"goto": {"label": "top", "max": 1}}]}}},
        {"hangup": {"reason": "busy"}},
    )
    actions = run(document, outcomes(BUSY, BUSY))
    assert len(dials(actions)) == 2
    assert actions[-1] == Hangup("busy")


def test_goto_label_from_a_variable_that_names_no_label_ends_the_call_with_an_error():
    actions = run(swml({"label": "a"}, {"goto": "%{vars.where}"}))
    assert isinstance(actions[-1], DocumentError)
    assert "goto.label: there is no label '' in section 'main'" in actions[-1].message


# set, unset, switch, cond, answer


def test_set_and_unset_variables():
    document = swml(
        {"set": {"ext": 1001, "user": {"name": "Alice"}}},
        {"connect": {"to": "sip:%{ext}@x", "from_name": "%{vars.user.name}"}},
        {"unset": "ext"},
        {"connect": {"to": "sip:x%{ext}@x"}},
    )
    actions = run(document)
    assert uris(actions) == [("sip:1001@x",), ("sip:x@x",)]
    assert dials(actions)[0].caller_name == "Alice"


def test_a_variable_that_is_the_whole_string_keeps_its_type():
    sw = session(vars={"count": 2})
    run(swml({"set": {"copy": "%{vars.count}", "text": "n=%{vars.count}", "obj": "%{call.headers}"}}), sw=sw)
    assert sw.vars["copy"] == 2
    assert sw.vars["text"] == "n=2"
    assert sw.vars["obj"] == [{"name": "X-Account", "value": "42"}]


def test_switch_on_a_call_field():
    document = swml(
        {
            "switch": {
                "variable": "call.type",
                "case": {"sip": [{"connect": {"to": "sip:sip@x"}}], "phone": [{"connect": {"to": "sip:phone@x"}}]},
                "default": [{"hangup": {}}],
            }
        }
    )
    assert uris(run(document)) == [("sip:sip@x",)]


def test_switch_compares_the_value_as_text():
    document = swml(
        {"set": {"foo": 5}},
        {"execute": {"dest": "fn", "params": {"foo": "${foo}"}}},
        fn=[{"switch": {"variable": "params.foo", "case": {"5": [{"hangup": {"reason": "busy"}}]}}}],
    )
    assert run(document)[-1] == Hangup("busy")


def test_cond_runs_the_first_true_branch_or_else():
    document = swml(
        {
            "cond": [
                {"when": "vars.level > 2", "then": [{"hangup": {"reason": "busy"}}]},
                {"when": "vars.level == 2", "then": [{"hangup": {"reason": "decline"}}]},
                {"else": [{"hangup": {}}]},
            ]
        }
    )
    assert run(document, sw=session(vars={"level": 3}))[-1] == Hangup("busy")
    assert run(document, sw=session(vars={"level": "2"}))[-1] == Hangup("decline")
    assert run(document, sw=session(vars={}))[-1] == Hangup("hangup")


def test_answer_does_nothing_the_caller_is_answered_by_the_connect():
    actions = run(swml("answer", {"connect": {"to": "sip:a@x"}}), outcomes(ANSWERED))
    assert uris(actions) == [("sip:a@x",)]
    assert actions[-1] == Finished(ANSWERED)


# Variables expanded when the method runs


def test_call_fields_expand_in_strings():
    document = swml(
        {
            "connect": {
                "to": "sip:%{call.sip_data.sip_req_user}@pbx.example.com",
                "from": "${call.from}",
                "headers": [
                    {"name": "X-Call", "value": "%{call.call_id}"},
                    {"name": "X-Account", "value": "%{call.headers[0].value}"},
                    {"name": "X-Where", "value": "%{call.direction}/%{call.type}/%{call.project_id}"},
                ],
            }
        }
    )
    (dial,) = dials(run(document))
    assert dial.targets[0].uri == "sip:1000@pbx.example.com"
    assert dial.caller_id == "alice"
    assert dial.headers == (
        ("X-Call", CALL.call_id),
        ("X-Account", "42"),
        ("X-Where", f"inbound/sip/{CALL.project_id}"),
    )


def test_vars_params_and_envs_expand_and_unknown_names_are_empty():
    sw = session(vars={"ext": "7"}, params={"dept": "sales"}, envs={"pbx": "pbx.example.com"})
    document = swml({"connect": {"to": "sip:%{vars.ext}%{params.dept}%{vars.nothing}%{nope.x}@%{envs.pbx}"}})
    (dial,) = dials(run(document, sw=sw))
    assert dial.targets[0].uri == "sip:7sales@pbx.example.com"


def test_bare_names_are_looked_up_in_vars_then_envs_then_call():
    sw = session(vars={"to": "from-vars"}, envs={"type": "from-envs", "to": "not-this"})
    (dial,) = dials(run(swml({"connect": {"to": "sip:%{to}-%{type}-%{call_id}@x"}}), sw=sw))
    assert dial.targets[0].uri == f"sip:from-vars-from-envs-{CALL.call_id}@x"


def test_integer_fields_from_variables_are_checked_when_they_run():
    sw = session(vars={"t": 15})
    (dial,) = dials(run(swml({"connect": {"to": "sip:a@x", "timeout": "%{vars.t}"}}), sw=sw))
    assert dial.timeout == 15.0
    actions = run(swml({"connect": {"to": "sip:a@x", "timeout": "%{vars.t}"}}), sw=session(vars={"t": 9999}))
    assert isinstance(actions[-1], DocumentError)
    assert actions[-1].message == "sections.main[0].connect.timeout: must be from 1 to 600, got 9999"
    actions = run(swml({"sleep": "%{vars.t}"}), sw=session(vars={"t": "soon"}))
    assert isinstance(actions[-1], DocumentError) and "is not an integer" in actions[-1].message


def test_a_target_from_a_variable_is_checked_when_it_runs():
    actions = run(swml({"connect": {"to": "%{vars.target}"}}), sw=session(vars={"target": "queue:support"}))
    assert isinstance(actions[-1], DocumentError)
    assert "connect.to: queues need media" in actions[-1].message


def test_a_header_value_from_a_variable_cannot_inject_headers():
    sw = session(vars={"v": "1\r\nVia: SIP/2.0/UDP evil"})
    actions = run(swml({"connect": {"to": "sip:a@x", "headers": {"X-A": "%{vars.v}"}}}), sw=sw)
    assert isinstance(actions[-1], DocumentError)
    assert "without line breaks" in actions[-1].message


# The session itself


def test_resume_after_the_end_repeats_the_ending():
    sw = session()
    assert sw.begin(parsed(swml("hangup"))) == Hangup("hangup")
    assert sw.resume(None) == Hangup("hangup")


def test_begin_with_something_else_than_a_document_is_an_error():
    result = session().begin({"version": "1.0.0"})
    assert isinstance(result, DocumentError)
    assert "swml.parse()" in result.message


def test_a_missing_dial_outcome_counts_as_a_failed_dial():
    sw = session()
    assert isinstance(sw.begin(parsed(swml({"connect": {"to": "sip:a@x"}}))), Dial)
    assert sw.resume(None) == Finished(DialResult("failed"))
    assert sw.vars["connect_failed_reason"] == "error"


def test_an_execute_that_calls_itself_is_stopped():
    actions = run(swml({"execute": {"dest": "main"}}))
    assert isinstance(actions[-1], DocumentError)
    assert "deep" in actions[-1].message


def test_many_methods_without_a_dial_or_a_pause_are_stopped():
    document = swml(*[{"execute": {"dest": "ten"}}] * 200, ten=[{"set": {"a": 1}}] * 9)
    actions = run(document)
    assert isinstance(actions[-1], DocumentError)
    assert "1000 methods ran without a connect or a sleep" in actions[-1].message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to", "sip:a@x\r\nVia: SIP/2.0/UDP evil"),
        ("from", "+1555\r\nX-Evil: 1"),
        ("from_name", "Alice\nX-Evil: 1"),
        ("username", "u\x00"),
        ("call_state_url", "https://h.example.com/\r\nHost: evil"),
    ],
)
def test_text_from_variables_cannot_carry_line_breaks_into_the_invite(field, value):
    connect = {"to": "sip:a@x", field: "%{vars.v}"}
    actions = run(swml({"connect": connect}), sw=session(vars={"v": value}))
    assert isinstance(actions[-1], DocumentError)
    assert "control characters" in actions[-1].message
