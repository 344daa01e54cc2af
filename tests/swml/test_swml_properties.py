"""Property tests: parse never raises, and any document, whatever the dials do, ends in bounded steps."""

from __future__ import annotations

import json

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.handlers.actions import Dial, DialResult, DocumentError, Fetch
from sipline.swml import Document, parse
from sipline.swml.document import MAX_SERIAL
from sipline.swml.interpreter import MAX_STEPS
from tests.swml.helpers import ENDINGS, as_json, as_yaml, run, session, swml

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
CONTENT_TYPES = st.sampled_from([None, "application/json", "application/yaml", "text/x-yaml", "text/plain"])

SEEDS = [
    as_json(swml({"connect": {"to": "sip:a@b", "timeout": 20}}, {"hangup": {"reason": "busy"}})),
    as_yaml(swml({"label": "a"}, {"sleep": 100}, {"goto": {"label": "a", "max": 2}})),
    b"version: 1.0.0\nsections:\n  main:\n    - connect:\n        serial:\n          - to: sip:a@b\n"
    b"          - to: '+1555'\n    - transfer: {dest: 'https://x.example/n', params: {a: &x 1, b: *x}}\n",
    b'{"sections": {"main": [{"set": {"v": [1, 2.5, null, true, "%{call.from}"]}}, "return"]}}',
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    alphabet = st.sampled_from([*b"{}[]:,\"'&*!|>-#%$ \n\t\\0123456789abcxyz", 0x00, 0xFF, 0xC3])
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "flip" and position < len(data):
            data[position] = draw(alphabet)
        elif op == "insert":
            data[position:position] = bytes(draw(st.lists(alphabet, max_size=8)))
        elif op == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[position:]
    return bytes(data)


def parses_to_a_value(body: bytes, content_type: str | None) -> None:
    result = parse(body, content_type, "https://app.example.com/swml")
    assert isinstance(result, Document | DocumentError)


@FUZZ
@given(st.binary(max_size=2048), CONTENT_TYPES)
def test_parse_never_raises_on_arbitrary_bytes(body, content_type):
    parses_to_a_value(body, content_type)


@FUZZ
@given(mutated(), CONTENT_TYPES)
def test_parse_never_raises_on_mutated_documents(body, content_type):
    parses_to_a_value(body, content_type)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=40,
)


@FUZZ
@given(JSONISH, st.sampled_from(["json", "yaml"]))
def test_parse_never_raises_on_arbitrary_trees(tree, fmt):
    document = {"version": "1.0.0", "sections": {"main": tree}} if isinstance(tree, list) else tree
    if fmt == "json":
        parses_to_a_value(json.dumps(document).encode(), "application/json")
    else:
        parses_to_a_value(yaml.safe_dump(document).encode(), "application/yaml")


# Documents made of the methods sipline runs, with their references drawn from a few names, so that
# many of them parse, and run with any outcome of any Dial.

SECTIONS = ["main", "a", "b"]
LABELS = ["x", "y"]
TARGETS = st.sampled_from(["sip:a@x", "sip:b@x", "+15551230000", "%{vars.t}", "sip:%{params.p}@x"])
VALUES = st.one_of(st.integers(-3, 3), st.sampled_from(["failed", "connected", "%{connect_result}", "a"]))


def destination() -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({"to": TARGETS}, optional={"timeout": st.integers(1, 30)})


def block(methods: st.SearchStrategy[object]) -> st.SearchStrategy[list[object]]:
    return st.lists(methods, max_size=3)


def methods() -> st.SearchStrategy[object]:
    leaves = st.one_of(
        st.builds(lambda t: {"connect": {"to": t}}, TARGETS),
        st.builds(lambda d: {"connect": {"serial": d}}, st.lists(destination(), min_size=1, max_size=3)),
        st.builds(
            lambda d: {"connect": {"parallel": [{"to": x["to"]} for x in d]}},
            st.lists(destination(), min_size=1, max_size=3),
        ),
        st.builds(lambda ms: {"sleep": ms}, st.sampled_from([-1, 0, 10, "%{vars.t}"])),
        st.builds(lambda r: {"hangup": {"reason": r}}, st.sampled_from(["hangup", "busy", "decline"])),
        st.builds(
            lambda label, m, w: {"goto": {"label": label, "max": m, **({"when": w} if w else {})}},
            st.sampled_from(LABELS),
            st.integers(1, 100),
            st.sampled_from([None, "connect_result == 'failed'", "vars.t > 1", "true"]),
        ),
        st.builds(
            lambda d, p: {"transfer": {"dest": d, "params": {"p": p}}},
            st.sampled_from([*SECTIONS, "https://n.example/x"]),
            VALUES,
        ),
        st.builds(lambda d: {"execute": {"dest": d}}, st.sampled_from([*SECTIONS, "https://n.example/y"])),
        st.builds(lambda v: {"set": {"t": v}}, VALUES),
        st.just({"unset": "t"}),
        st.builds(lambda v: {"return": v}, VALUES),
        st.just("answer"),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(
                lambda cases, default: {"switch": {"variable": "connect_result", "case": cases, "default": default}},
                st.dictionaries(st.sampled_from(["failed", "connected"]), block(inner), max_size=2),
                block(inner),
            ),
            st.builds(
                lambda then, other: {"cond": [{"when": "vars.t == 1", "then": then}, {"else": other}]},
                block(inner),
                block(inner),
            ),
            st.builds(
                lambda t, result: {"connect": {"to": t, "result": {"case": result}}},
                TARGETS,
                st.dictionaries(st.sampled_from(["failed", "connected"]), block(inner), max_size=2),
            ),
        ),
        max_leaves=12,
    )


METHODS = methods()


@st.composite
def section(draw: st.DrawFn, size: int) -> list[object]:
    """Methods with the labels x and y somewhere among them (goto needs them in its section)."""
    steps = draw(st.lists(METHODS, max_size=size))
    for label in LABELS:
        steps.insert(draw(st.integers(0, len(steps))), {"label": label})
    return steps


DOCUMENTS = st.builds(
    lambda main, a, b: {"version": "1.0.0", "sections": {"main": main, "a": a, "b": b}},
    section(8),
    section(4),
    section(4),
)
STATUSES = st.sampled_from(["completed", "answered", "busy", "no-answer", "failed", "canceled"])
RESULTS = st.builds(
    DialResult,
    status=STATUSES,
    sip_status=st.one_of(st.none(), st.sampled_from([200, 404, 480, 486, 487, 503, 603])),
    caller_hung_up=st.sampled_from([False, False, False, True]),
)
BOUND = MAX_STEPS * MAX_SERIAL + 2  # each method at most one action, but a connect up to one Dial a group


@FUZZ
@given(DOCUMENTS, st.data())
def test_any_document_ends_in_a_bounded_number_of_steps_whatever_the_outcomes(document, data):
    first = parse(json.dumps(document).encode(), "application/json", "https://app.example.com/swml")
    if isinstance(first, DocumentError):
        return
    others = [first, DocumentError(11200, "fetch failed")]

    def dialled(dial: Dial) -> DialResult:
        assert dial.targets
        return data.draw(RESULTS)

    def fetched(fetch: Fetch) -> object:
        assert fetch.json and fetch.method == "POST"
        return data.draw(st.sampled_from(others))

    sw = session(vars={"t": "sip:v@x"}, params={"p": "q"})
    actions = run(first, dialled, fetched, sw=sw, limit=BOUND)
    assert isinstance(actions[-1], ENDINGS)
    assert len(actions) <= BOUND
    json.dumps(sw.fetch_body())  # whatever the document set, the next fetch's body is JSON
