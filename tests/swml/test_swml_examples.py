"""Documents as SignalWire's docs write them, in YAML, run end to end."""

from __future__ import annotations

from sipline.handlers.actions import DocumentError, Fetch, Finished, Hangup, Pause
from sipline.swml import Document, parse
from tests.swml.helpers import ANSWERED, BUSY, NO_ANSWER, dials, outcomes, run, session, uris


def yaml(text: str) -> Document:
    document = parse(text.encode(), "text/x-yaml", "https://app.example.com/swml")
    assert isinstance(document, Document), document
    return document


def test_forward_to_a_sip_uri_with_credentials():
    document = yaml(
        """
version: 1.0.0
sections:
  main:
    - connect:
        to: "sip:alice@example.com"
        from: "+15551112222"
        username: "sipuser"
        password: "s3cret"
"""
    )
    (dial,) = dials(run(document, outcomes(ANSWERED)))
    assert (dial.targets[0].username, dial.targets[0].password, dial.caller_id) == ("sipuser", "s3cret", "+15551112222")


def test_ring_two_phones_in_parallel():
    document = yaml(
        """
version: 1.0.0
sections:
  main:
    - connect:
        parallel:
          - to: "+15551231234"
          - to: "+15553214321"
"""
    )
    assert uris(run(document)) == [("+15551231234", "+15553214321")]


def test_serial_with_a_voicemail_fallback_section():
    document = yaml(
        """
version: 1.0.0
sections:
  main:
    - answer: {}
    - connect:
        timeout: 20
        serial:
          - to: "sip:agent1@pbx.example.com"
          - to: "sip:agent2@pbx.example.com"
            from_name: "Billing Dept"
    - switch:
        variable: connect_result
        case:
          failed:
            - transfer:
                dest: fallback
    - hangup: {}
  fallback:
    - connect:
        to: "sip:voicemail@pbx.example.com"
        timeout: 30
"""
    )
    actions = run(document, outcomes(NO_ANSWER, BUSY, ANSWERED))
    assert uris(actions) == [
        ("sip:agent1@pbx.example.com",),
        ("sip:agent2@pbx.example.com",),
        ("sip:voicemail@pbx.example.com",),
    ]
    assert dials(actions)[1].caller_name == "Billing Dept"
    assert dials(actions)[2].timeout == 30.0
    assert actions[-1] == Finished(ANSWERED)  # the transfer does not come back to the hangup


def test_execute_a_section_and_come_back():
    document = yaml(
        """
version: 1.0.0
sections:
  main:
    - execute:
        dest: subsection
        params:
          a: 1
          b: 2
    - connect:
        to: "sip:%{return_value}@example.com"
  subsection:
    - return: "sum-%{params.a}-%{params.b}"
"""
    )
    assert uris(run(document)) == [("sip:sum-1-2@example.com",)]


def test_retry_loop_with_goto_max():
    document = yaml(
        """
version: 1.0.0
sections:
  main:
    - label: dial
    - connect:
        to: "sip:desk@example.com"
        timeout: 15
    - goto:
        label: dial
        when: connect_result == 'failed'
        max: 2
    - sleep: 1000
    - hangup:
        reason: busy
"""
    )
    actions = run(document, outcomes(BUSY, BUSY, BUSY))
    assert len(dials(actions)) == 3
    assert actions[-2:] == [Pause(1.0), Hangup("busy")]


def test_transfer_to_a_server_with_params():
    document = yaml(
        """
version: 1.0.0
sections:
  main:
    - transfer:
        dest: "https://app.example.com/route"
        params:
          where: sales
"""
    )
    served = yaml(
        """
version: 1.0.0
sections:
  main:
    - connect:
        to: "sip:%{params.where}@pbx.example.com"
"""
    )
    sw = session()
    actions = run(document, fetched=lambda fetch: served, sw=sw)
    assert actions[0] == Fetch("https://app.example.com/route", "POST", params=(("where", "sales"),), json=True)
    assert uris(actions) == [("sip:sales@pbx.example.com",)]


def test_a_document_with_prompt_is_refused_before_the_call_runs():
    result = parse(
        b"""
version: 1.0.0
sections:
  main:
    - answer: {}
    - prompt:
        play: 'say: Press 1 for sales'
    - switch:
        variable: prompt_value
        case:
          '1':
            - connect: {to: "sip:sales@example.com"}
""",
        "application/yaml",
        "https://app.example.com/swml",
    )
    assert isinstance(result, DocumentError)
    assert result.message.startswith("sections.main[1].prompt: prompt needs media")
