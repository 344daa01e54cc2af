"""Placeholders and `when` conditions: what is expanded, what is evaluated, what is refused."""

from __future__ import annotations

import pytest

from sipline.swml.expressions import ExpressionError, check_text, evaluate, expand_text, lookup, parse_condition, render

SCOPES = {
    "call": {"from": "sip:alice@x", "type": "sip", "headers": [{"name": "X-A", "value": "1"}]},
    "vars": {"count": 3, "name": "Bob", "ok": True, "nothing": None, "user": {"tags": ["a", "b"]}, "zero": 0},
    "params": {"dept": "sales"},
    "envs": {"region": "eu", "count": 99},
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("call.from", "sip:alice@x"),
        ("call.headers[0].value", "1"),
        ("vars.user.tags[1]", "b"),
        ("params.dept", "sales"),
        ("envs.region", "eu"),
        ("count", 3),  # vars before envs
        ("region", "eu"),  # then envs
        ("type", "sip"),  # then call
        ("vars.user.tags[5]", None),
        ("vars.name.first", None),
        ("nope", None),
        ("call", SCOPES["call"]),
    ],
)
def test_lookup_follows_paths_through_the_scopes(path, value):
    assert lookup(path, SCOPES) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (True, "true"), (False, "false"), (3, "3"), (2.0, "2"), (2.5, "2.5"), ([1, "a"], '[1,"a"]')],
)
def test_values_render_as_javascript_prints_them(value, text):
    assert render(value) == text


def test_both_placeholder_forms_expand_and_unknown_names_are_empty():
    assert expand_text("%{vars.name} ${params.dept} [%{vars.missing}] %{vars.nothing}", SCOPES) == "Bob sales [] "


def test_text_without_placeholders_is_left_alone():
    assert expand_text("50% {not a placeholder} $5", SCOPES) == "50% {not a placeholder} $5"


@pytest.mark.parametrize("text", ["%{call.from}", "pre ${vars.user.tags[0]} post", "%{ spaced }", "100%"])
def test_plain_paths_pass_the_check(text):
    check_text(text)


@pytest.mark.parametrize("text", ["${a + b}", "%{call.from.split('')}", "${x", "%{}", "%{ {a:1} }", "${a[b]}"])
def test_anything_but_a_plain_path_is_refused(text):
    with pytest.raises(ExpressionError):
        check_text(text)


@pytest.mark.parametrize(
    ("condition", "result"),
    [
        ("vars.count == 3", True),
        ("vars.count == '3'", True),  # loose equality converts
        ("vars.count === '3'", False),  # strict does not
        ("vars.count === 3", True),
        ("vars.count !== 3", False),
        ("vars.count != 4", True),
        ("vars.count < 4 && vars.count >= 3", True),
        ("vars.count > 4 || vars.name == 'Bob'", True),
        ('vars.name == "Bob"', True),
        ("!vars.ok", False),
        ("!!vars.ok", True),
        ("!(vars.count > 1)", False),
        ("!vars.ok == false", True),  # (!vars.ok) == false, as in JavaScript
        ("!!vars.count === true", True),
        ("(vars.count > 1 || false) && call.type == 'sip'", True),
        ("vars.missing == null", True),
        ("vars.missing == undefined", True),
        ("vars.nothing === null", True),
        ("vars.missing == 0", False),
        ("vars.zero", False),
        ("vars.user", True),
        ("vars.name", True),
        ("vars.missing < 1", False),
        ("'b' > 'a'", True),
        ("vars.ok == 1", True),
        ("vars.count >= -1", True),
        ("1.5 < 2", True),
        ("'it\\'s' == \"it's\"", True),
    ],
)
def test_simple_conditions_evaluate_as_javascript_would(condition, result):
    assert evaluate(parse_condition(condition), SCOPES) is result


@pytest.mark.parametrize(
    "condition",
    [
        "call.type.toLowerCase() == 'sip'",
        "vars.count + 1 > 3",
        "vars.count = 3",
        "(vars.count > 1",
        "vars.count >",
        "",
        "a b",
        "function() { return true }",
        "${vars.count} == 3",
        "(" * 20 + "true" + ")" * 20,
        "x == '" + "a" * 2000 + "'",
    ],
)
def test_anything_more_than_a_simple_condition_is_refused(condition):
    with pytest.raises(ExpressionError):
        parse_condition(condition)


def test_a_long_chain_of_negations_does_not_recurse():
    assert evaluate(parse_condition("!" * 1000 + "true"), SCOPES) is True
