"""Hostile documents: each is refused with a DocumentError, never an exception or a hang."""

from __future__ import annotations

import json

import pytest

from sipline.handlers.actions import DocumentError
from sipline.swml import parse
from sipline.swml.document import MAX_BYTES

BILLION_LAUGHS = b"""
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def error(body: bytes, content_type: str | None = None) -> str:
    result = parse(body, content_type, "https://app.example.com/swml")
    assert isinstance(result, DocumentError), result
    assert result.code == 12100
    return result.message


def test_a_yaml_bomb_is_refused_for_its_aliases():
    assert "YAML aliases (*name) are not accepted" in error(BILLION_LAUGHS, "application/yaml")
    assert "YAML aliases" in error(BILLION_LAUGHS)


def test_a_single_yaml_alias_is_refused_too():
    body = b"sections:\n  main: &m [hangup]\n  other: *m\n"
    assert "YAML aliases" in error(body, "application/yaml")


def test_yaml_merge_keys_are_refused():
    body = b"sections:\n  main:\n    - connect:\n        <<: {to: 'sip:a@b'}\n"
    assert "merge keys" in error(body, "application/yaml")


def test_a_document_over_64_kib_is_refused_before_it_is_read():
    padding = " " * MAX_BYTES
    body = json.dumps({"version": "1.0.0", "sections": {"main": ["hangup"]}}).encode() + padding.encode()
    assert f"at most {MAX_BYTES} are read" in error(body, "application/json")


@pytest.mark.parametrize("depth", [40, 2000, 32000])
def test_deep_json_nesting_is_refused(depth):
    assert "nested" in error(b"[" * depth + b"]" * depth, "application/json")


@pytest.mark.parametrize("depth", [40, 2000, 32000])
def test_deep_yaml_nesting_is_refused(depth):
    assert "nested" in error(b"[" * depth + b"]" * depth, "application/yaml")


def test_deep_nesting_inside_a_valid_document_is_refused():
    deep: object = "x"
    for _ in range(40):
        deep = {"a": deep}
    body = json.dumps({"version": "1.0.0", "sections": {"main": [{"set": {"v": deep}}]}}).encode()
    assert "nested more than 32 deep" in error(body, "application/json")


def test_too_many_values_are_refused():
    body = json.dumps({"sections": {"main": [{"set": {"v": [0] * 12000}}]}}).encode()
    assert len(body) < MAX_BYTES
    assert "more than 10000 values" in error(body, "application/json")
    assert "more than 10000 values" in error(body, "application/yaml")


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e999"])
def test_json_nan_and_infinity_are_refused(constant):
    body = b'{"sections": {"main": [{"set": {"v": ' + constant + b"}}]}}"
    assert "number" in error(body, "application/json")


@pytest.mark.parametrize("constant", [b".nan", b".inf", b"-.Inf", b"1e400"])
def test_yaml_nan_and_infinity_are_refused(constant):
    body = b"sections:\n  main:\n    - sleep: " + constant + b"\n"
    message = error(body, "application/yaml")
    assert "NaN and Infinity" in message or "must be an integer" in message


def test_duplicate_keys_are_refused_in_json_and_yaml():
    assert "'to' appears twice" in error(b'{"sections": {"main": [{"connect": {"to": "sip:a@b", "to": "sip:c@d"}}]}}')
    body = b"sections:\n  main:\n    - connect:\n        to: sip:a@b\n        to: sip:c@d\n"
    assert "'to' appears twice" in error(body, "application/yaml")


def test_yaml_integer_and_string_keys_that_collide_are_refused():
    assert "appears twice" in error(
        b"sections:\n  main:\n    - set:\n        1: a\n        '1': b\n", "application/yaml"
    )


@pytest.mark.parametrize(
    "value",
    [b"2001-12-14", b"2001-12-14t21:59:43.10-05:00", b"!!binary aGVsbG8=", b"!!set {a, b}", b"!!omap [a: 1]"],
)
def test_yaml_values_json_has_no_word_for_are_refused(value):
    body = b"sections:\n  main:\n    - set:\n        v: " + value + b"\n"
    assert "is not accepted: quote it" in error(body, "application/yaml")


@pytest.mark.parametrize(
    "tag",
    [b"!!python/object/apply:os.system ['true']", b"!!python/name:os.system", b"!custom 1"],
)
def test_yaml_tags_that_build_objects_are_refused(tag):
    assert "not valid YAML" in error(b"sections:\n  main:\n    - set:\n        v: " + tag + b"\n", "application/yaml")


def test_yaml_keys_that_are_not_plain_values_are_refused():
    assert "plain value" in error(
        b"sections:\n  main:\n    - set:\n        ? [a, b]\n        : 1\n", "application/yaml"
    )
    assert "is not a string: quote it" in error(b"sections:\n  main:\n    - set:\n        yes: 1\n", "application/yaml")


def test_a_yaml_date_that_does_not_exist_is_refused():
    assert "not valid YAML" in error(b"sections:\n  main:\n    - set:\n        v: 2001-13-45\n", "application/yaml")


@pytest.mark.parametrize("content_type", ["application/json", "application/yaml"])
def test_an_integer_too_long_to_read_is_refused(content_type):
    body = b'{"sections": {"main": [{"sleep": ' + b"9" * 5000 + b"}]}}"
    error(body, content_type)


def test_several_yaml_documents_in_one_body_are_refused():
    assert "not valid YAML" in error(b"sections: {main: [hangup]}\n---\nsections: {main: [hangup]}\n", "text/x-yaml")


@pytest.mark.parametrize(
    "body",
    [b"", b"null", b"[]", b'"main"', b"42", b"\x00\x01\x02", b"\xff\xfe{", b"{}", b'{"sections": null}'],
)
def test_empty_or_shapeless_bodies_are_refused(body):
    error(body)


def test_wrong_types_everywhere_are_refused_not_raised():
    bad_values = [None, 1, 1.5, True, "x", [], {}, [1], {"a": 1}]
    fields = ["to", "from", "timeout", "headers", "codecs", "serial", "parallel", "result", "call_state_events"]
    for field in fields:
        for value in bad_values:
            body = json.dumps({"sections": {"main": [{"connect": {field: value}}]}}).encode()
            assert isinstance(parse(body, "application/json", ""), DocumentError)
    for method in ["hangup", "sleep", "transfer", "execute", "goto", "label", "set", "unset", "switch", "cond"]:
        for value in bad_values:
            body = json.dumps({"sections": {"main": [{"label": "x"}, {method: value}]}}).encode()
            parse(body, "application/json", "")  # a Document or a DocumentError, never an exception


def test_inline_documents_nested_in_inline_documents_are_bounded():
    document: dict[str, object] = {"sections": {"main": ["hangup"]}}
    for _ in range(12):
        document = {"sections": {"main": [{"transfer": {"dest": json.dumps(document)}}]}}
    body = json.dumps(document).encode()
    result = parse(body, "application/json", "")
    assert isinstance(result, DocumentError)
    assert "bytes" in result.message or "at most" in result.message
