"""Properties: parse never raises on any bytes; a session never spins without ringing or waiting."""

from __future__ import annotations

import itertools
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipline.handlers.actions import Dial, DialResult, DocumentError, Fetch, Finished, Hangup, Pause, Reject
from sipline.laml import MAX_FETCHES_IN_A_ROW, Document, LamlSession, parse
from tests.laml.helpers import BASE

SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- valid documents, written as an app would --------------------------------------------------------

printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xD7FF, exclude_characters="\x7f"), max_size=70)
urls = st.sampled_from(["next", "/a/b", "../up?x=1", "https://other.example/n#rt=500", "//cdn.example/x"])
methods = st.sampled_from(["GET", "POST", "get", "post"])
numbers = st.from_regex(r"\+?[0-9]{1,15}", fullmatch=True)


def attributes(**optional: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Each attribute present or not, its value quoted for XML."""
    chosen = [
        st.one_of(st.just(""), value.map(lambda v, n=name: f" {n}={quoteattr(v)}")) for name, value in optional.items()
    ]
    return st.tuples(*chosen).map("".join)


def _sip_uri(user: str, host: str, transport: str | None, headers: list[tuple[str, str]]) -> str:
    uri = f"sip:{user}@{host}" + (f";transport={transport}" if transport else "")
    query = "&".join(f"X-{name}={quote(value, safe='')}" for name, value in headers)
    return uri + (f"?{query}" if query else "")


sip_uris = st.builds(
    _sip_uri,
    st.from_regex(r"[a-z0-9+._-]{1,20}", fullmatch=True),
    st.sampled_from(["example.com", "10.0.0.1:5080", "pbx.acme.sip.example.com"]),
    st.sampled_from([None, "udp", "tcp", "tls", "TCP"]),
    st.lists(st.tuples(st.from_regex(r"[A-Za-z0-9-]{1,12}", fullmatch=True), printable), max_size=3),
)
events = st.lists(st.sampled_from(["initiated", "ringing", "answered", "completed"]), unique=True).map(" ".join)
callback = {"statusCallback": urls, "statusCallbackEvent": events, "statusCallbackMethod": methods}


def _credentials(pair: tuple[str, str] | None) -> str:
    return "" if pair is None else f" username={quoteattr(pair[0])} password={quoteattr(pair[1])}"


sip_nouns = st.builds(
    lambda attrs, creds, uri: f"<Sip{attrs}{creds}>{escape(uri)}</Sip>",
    attributes(codecs=st.sampled_from(["PCMU", "PCMA,PCMU", "opus,G722,G729"]), **callback),
    st.one_of(st.none(), st.tuples(printable.filter(str.strip), printable.filter(str.strip))).map(_credentials),
    sip_uris,
)
number_nouns = st.builds(lambda attrs, n: f"<Number{attrs}>{n}</Number>", attributes(**callback), numbers)
dial_bodies = st.one_of(
    numbers,
    st.lists(sip_nouns, min_size=1, max_size=10).map("".join),
    st.lists(number_nouns, min_size=1, max_size=10).map("".join),
)
dials = st.builds(
    lambda attrs, body: f"<Dial{attrs}>{body}</Dial>",
    attributes(
        action=urls,
        method=methods,
        timeout=st.integers(5, 600).map(str),
        timeLimit=st.integers(1, 86400).map(str),
        callerId=st.from_regex(r"[A-Za-z0-9+\-_.,]{1,64}", fullmatch=True),
        callerName=printable,
        answerOnBridge=st.sampled_from(["true", "false"]),
        hangupOnStar=st.just("false"),
        record=st.sampled_from(["do-not-record", "false"]),
    ),
    dial_bodies,
)
simple_verbs = st.one_of(
    st.just("<Hangup/>"),
    st.builds(lambda a: f"<Reject{a}/>", attributes(reason=st.sampled_from(["busy", "rejected"]))),
    st.builds(lambda a, u: f"<Redirect{a}>{escape(u)}</Redirect>", attributes(method=methods), urls),
    st.builds(lambda a: f"<Pause{a}/>", attributes(length=st.integers(1, 600).map(str))),
)
verbs = st.one_of(dials, simple_verbs)
documents = st.lists(verbs, max_size=8).map(lambda vs: "<Response>" + "".join(vs) + "</Response>")
redirect_only_documents = st.lists(
    st.builds(lambda u: f"<Redirect>{escape(u)}</Redirect>", urls), min_size=1, max_size=4
).map(lambda vs: "<Response>" + "".join(vs) + "</Response>")

dial_results = st.builds(
    DialResult,
    status=st.sampled_from(["completed", "answered", "busy", "no-answer", "failed", "canceled"]),
    sip_status=st.one_of(st.none(), st.integers(100, 699)),
    call_sid=st.one_of(st.none(), st.text(max_size=34)),
    sip_call_id=st.one_of(st.none(), st.text(max_size=40)),
    duration=st.integers(0, 86400),
    sip_headers=st.lists(st.tuples(st.just("X-A"), st.text(max_size=10)), max_size=3).map(tuple),
    caller_hung_up=st.booleans(),
)


def parsed(xml: str) -> Document:
    result = parse(xml.encode(), "text/xml", BASE)
    assert isinstance(result, Document), (result, xml)
    return result


# -- parse -----------------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=4096), st.one_of(st.none(), st.text(max_size=40)), st.text(max_size=60))
def test_parse_never_raises_on_arbitrary_bytes(body, content_type, base_url):
    assert isinstance(parse(body, content_type, base_url), Document | DocumentError)


@SETTINGS
@given(documents, st.data())
def test_parse_never_raises_on_damaged_documents(xml, data):
    body = bytearray(xml.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body)))
        action = data.draw(st.sampled_from(["insert", "delete", "truncate"]))
        if action == "insert":
            body[at:at] = data.draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del body[at : at + data.draw(st.integers(1, 8))]
        else:
            del body[at:]
    result = parse(bytes(body), "text/xml", BASE)
    assert isinstance(result, Document | DocumentError)
    if isinstance(result, DocumentError):
        assert result.code == 12100 and result.message


@SETTINGS
@given(
    st.recursive(
        st.sampled_from(["Dial", "Sip", "Number", "Hangup", "Reject", "Redirect", "Pause", "Say", "x"]).map(
            lambda tag: (tag, [])
        ),
        lambda children: st.tuples(
            st.sampled_from(["Response", "Dial", "Sip", "Gather"]), st.lists(children, max_size=4)
        ),
        max_leaves=20,
    ),
    st.dictionaries(
        st.sampled_from(
            ["timeout", "action", "method", "length", "reason", "callerId", "codecs", "statusCallbackEvent"]
        ),
        st.text(max_size=12),
        max_size=4,
    ),
    st.text(max_size=20),
)
def test_parse_never_raises_on_random_trees_of_laml_names(tree, attrs, text):
    def xml(node: tuple[str, list]) -> str:  # type: ignore[type-arg]
        tag, children = node
        legal = "".join(c for c in text if c.isprintable())
        attributes = "".join(f" {k}={quoteattr(''.join(c for c in v if c.isprintable()))}" for k, v in attrs.items())
        return f"<{tag}{attributes}>{escape(legal)}{''.join(xml(c) for c in children)}</{tag}>"

    body = "<Response>" + xml(tree) + "</Response>"
    assert isinstance(parse(body.encode("utf-8", "surrogatepass"), "text/xml", BASE), Document | DocumentError)


@SETTINGS
@given(st.lists(verbs, max_size=8))
def test_generated_valid_documents_parse_verb_for_verb(verb_list):
    assert len(parsed("<Response>" + "".join(verb_list) + "</Response>").verbs) == len(verb_list)


# -- the session -----------------------------------------------------------------------------------

TERMINAL = (Hangup, Reject, Finished, DocumentError)


def outcome_for(action: object, results: itertools.cycle[DialResult]) -> DialResult | None:
    return next(results) if isinstance(action, Dial) else None


@SETTINGS
@given(documents, st.lists(dial_results, min_size=1, max_size=10))
def test_one_document_ends_or_fetches_within_its_length_plus_one_actions(xml, results):
    doc = parsed(xml)
    session, feed = LamlSession(), itertools.cycle(results)
    action = session.begin(doc)
    for _ in range(len(doc.verbs)):
        if isinstance(action, (*TERMINAL, Fetch)):
            break
        action = session.resume(outcome_for(action, feed))
    assert isinstance(action, (*TERMINAL, Fetch))


@SETTINGS
@given(st.lists(documents, min_size=1, max_size=4), st.lists(dial_results, min_size=1, max_size=10))
def test_a_call_never_spins_without_ringing_or_waiting(xmls, results):
    """Whatever documents the fetches return (here: the same ones, over and over) and whatever the Dials
    give, between two Dial/Pause actions there are at most (N + 1) documents' worth of actions."""
    docs = [parsed(x) for x in xmls]
    bound = (MAX_FETCHES_IN_A_ROW + 1) * (max(len(d.verbs) for d in docs) + 1)
    session, fetched, feed = LamlSession(), itertools.cycle(docs), itertools.cycle(results)
    action = session.begin(next(fetched))
    idle = 0
    for _ in range(500):
        if isinstance(action, TERMINAL):
            return
        idle = 0 if isinstance(action, Dial | Pause) else idle + 1
        assert idle <= bound
        action = (
            session.begin(next(fetched)) if isinstance(action, Fetch) else session.resume(outcome_for(action, feed))
        )


@SETTINGS
@given(st.lists(redirect_only_documents, min_size=1, max_size=4))
def test_documents_that_only_redirect_end_in_a_document_error(xmls):
    docs = itertools.cycle([parsed(x) for x in xmls])
    session = LamlSession()
    actions = [session.begin(next(docs)) for _ in range(MAX_FETCHES_IN_A_ROW + 1)]
    assert all(isinstance(a, Fetch) for a in actions[:-1])
    assert isinstance(actions[-1], DocumentError) and actions[-1].code == 12100


@SETTINGS
@given(st.lists(documents, min_size=1, max_size=4), dial_results)
def test_once_the_caller_hung_up_the_call_finishes_within_two_actions(xmls, result):
    gone = DialResult(**{**result.__dict__, "caller_hung_up": True})
    docs = itertools.cycle([parsed(x) for x in xmls])
    session = LamlSession()
    action = session.begin(next(docs))
    for _ in range(500):
        if isinstance(action, TERMINAL):
            return
        if isinstance(action, Dial):
            after = session.resume(gone)
            if isinstance(after, Fetch):
                after = session.begin(next(docs))
            assert after == Finished(gone)
            return
        action = session.begin(next(docs)) if isinstance(action, Fetch) else session.resume(None)
