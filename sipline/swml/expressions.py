"""Variables in SWML strings (`%{call.from}`, `${vars.choice}`) and the simple conditions of `when`.

SignalWire evaluates anything inside `${...}` / `%{...}` that is not a plain path as JavaScript, and
`when` conditions are JavaScript too. sipline runs no JavaScript: a placeholder must be a plain path
(`call.from`, `vars.user.name`, `params.items[0]`), and a condition may only compare paths and
literals (`== != === !== < <= > >=`) joined by `&&`, `||`, `!` and parentheses. Anything else is
refused when the document is parsed, with a message saying so, rather than half-evaluated.

A path starting with `call`, `vars`, `params` or `envs` reads that scope; a bare name is looked up
in `vars`, then `envs`, then `call`, as SWML does. A path that names nothing is undefined: it
expands to the empty string, and is `undefined` in a condition.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass

SCOPES = ("call", "vars", "params", "envs")
BARE_NAME_ORDER = ("vars", "envs", "call")
MAX_CONDITION_LENGTH = 1024  # SignalWire: "keep expressions under 1,024 characters"
MAX_CONDITION_NESTING = 16

_OPENER = re.compile(r"[%$]\{")
_PLACEHOLDER = re.compile(r"[%$]\{([^{}]*)\}")
_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]{1,6}\])*")
_SEGMENT = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[([0-9]{1,6})\]")


class ExpressionError(ValueError):
    """A placeholder or condition sipline cannot evaluate; the message says what is accepted."""


# Placeholders


def has_placeholder(text: str) -> bool:
    return _OPENER.search(text) is not None


def check_text(text: str) -> None:
    """Refuse a string whose `${...}` / `%{...}` is not a plain variable path."""
    for opener in _OPENER.finditer(text):
        match = _PLACEHOLDER.match(text, opener.start())
        if match is None:
            raise ExpressionError(
                f"{text[opener.start() : opener.start() + 40]!r} is not a closed variable reference: "
                "write %{name} with a plain path inside"
            )
        if _PATH.fullmatch(match.group(1).strip()) is None:
            raise ExpressionError(
                f"{match.group(0)[:60]!r}: only plain variable paths such as %{{call.from}} or "
                "%{vars.user.name} are expanded; JavaScript expressions are not supported"
            )


def lookup(path: str, scopes: Mapping[str, object]) -> object:
    """The value a plain path names, or None when it names nothing (JavaScript's undefined)."""
    segments: list[str | int] = []
    for match in _SEGMENT.finditer(path.strip()):
        name, index = match.groups()
        segments.append(name if name is not None else int(index))
    if not segments or not isinstance(segments[0], str):
        return None
    first = segments[0]
    if first in SCOPES:
        value: object = scopes.get(first)
        rest = segments[1:]
    else:
        for scope in BARE_NAME_ORDER:
            found = scopes.get(scope)
            if isinstance(found, Mapping) and first in found:
                value = found[first]
                break
        else:
            return None
        rest = segments[1:]
    for segment in rest:
        if isinstance(segment, str) and isinstance(value, Mapping):
            value = value.get(segment)
        elif isinstance(segment, int) and isinstance(value, list) and segment < len(value):
            value = value[segment]
        else:
            return None
    return value


def render(value: object) -> str:
    """A value as JavaScript would print it in a string (undefined and null print as nothing)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, int | str):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def expand_text(text: str, scopes: Mapping[str, object]) -> str:
    """Every placeholder replaced by its value (the empty string when it names nothing)."""
    if not has_placeholder(text):
        return text
    return _PLACEHOLDER.sub(lambda m: render(lookup(m.group(1), scopes)), text)


def expand_value(value: object, scopes: Mapping[str, object]) -> object:
    """A JSON value with its strings expanded; a string that is one placeholder keeps the type of
    what it names (`{foo: "%{vars.count}"}` passes the number on, an object stays an object)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole is not None:
            found = lookup(whole.group(1), scopes)
            return "" if found is None else found
        return expand_text(value, scopes)
    if isinstance(value, Mapping):
        return {key: expand_value(item, scopes) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_value(item, scopes) for item in value]
    return value


def placeholder_path(text: str) -> str:
    """`%{call.type}` or `call.type` -> `call.type` (switch's `variable` is written either way)."""
    whole = _PLACEHOLDER.fullmatch(text.strip())
    return (whole.group(1) if whole is not None else text).strip()


def is_plain_path(text: str) -> bool:
    return _PATH.fullmatch(text.strip()) is not None


# Conditions


@dataclass(frozen=True)
class Literal:
    value: object


@dataclass(frozen=True)
class Path:
    path: str


@dataclass(frozen=True)
class Not:
    operand: Condition


@dataclass(frozen=True)
class AllOf:
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    operands: tuple[Condition, ...]


@dataclass(frozen=True)
class Compare:
    op: str
    left: Condition
    right: Condition


Condition = Literal | Path | Not | AllOf | AnyOf | Compare

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<op>===|!==|==|!=|<=|>=|&&|\|\||[<>!()])
      | (?P<number>-?[0-9]+(?:\.[0-9]+)?)
      | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<path>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]{1,6}\])*)
    )""",
    re.VERBOSE,
)
_KEYWORDS: dict[str, object] = {"true": True, "false": False, "null": None, "undefined": None}
_COMPARISONS = ("===", "!==", "==", "!=", "<=", ">=", "<", ">")
_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_SUPPORTED = (
    "conditions may only compare variables and literals (== != === !== < <= > >=), joined by && || ! "
    "and parentheses; JavaScript functions, methods and arithmetic are not supported"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot read {text[position : position + 20]!r}: {_SUPPORTED}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.nesting = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ExpressionError(f"the condition ends too early: {_SUPPORTED}")
        self.position += 1
        return token

    def either(self) -> Condition:
        operands = [self.both()]
        while self.peek() == ("op", "||"):
            self.take()
            operands.append(self.both())
        return operands[0] if len(operands) == 1 else AnyOf(tuple(operands))

    def both(self) -> Condition:
        operands = [self.comparison()]
        while self.peek() == ("op", "&&"):
            self.take()
            operands.append(self.comparison())
        return operands[0] if len(operands) == 1 else AllOf(tuple(operands))

    def comparison(self) -> Condition:
        left = self.negation()
        token = self.peek()
        if token is not None and token[0] == "op" and token[1] in _COMPARISONS:
            self.take()
            return Compare(token[1], left, self.negation())
        return left

    def negation(self) -> Condition:
        """`!` binds tighter than a comparison, as in JavaScript; `!!x` is x as a boolean."""
        count = 0
        while self.peek() == ("op", "!"):
            self.take()
            count += 1
        operand = self.operand()
        if count == 0:
            return operand
        return Not(operand) if count % 2 else Not(Not(operand))

    def operand(self) -> Condition:
        kind, text = self.take()
        if kind == "op" and text == "(":
            self.nesting += 1
            if self.nesting > MAX_CONDITION_NESTING:
                raise ExpressionError(f"parentheses nested more than {MAX_CONDITION_NESTING} deep")
            inner = self.either()
            if self.take() != ("op", ")"):
                raise ExpressionError(f"a parenthesis is not closed: {_SUPPORTED}")
            self.nesting -= 1
            return inner
        if kind == "number":
            return Literal(float(text) if "." in text else int(text))
        if kind == "string":
            return Literal(_unquote(text))
        if kind == "path":
            if self.peek() == ("op", "("):
                raise ExpressionError(f"{text}(...): {_SUPPORTED}")
            if text in _KEYWORDS:
                return Literal(_KEYWORDS[text])
            return Path(text)
        raise ExpressionError(f"unexpected {text!r}: {_SUPPORTED}")


def parse_condition(text: str) -> Condition:
    """A `when` condition, or ExpressionError saying what sipline accepts instead."""
    if len(text) > MAX_CONDITION_LENGTH:
        raise ExpressionError(f"a condition is at most {MAX_CONDITION_LENGTH} characters")
    if has_placeholder(text):
        raise ExpressionError(
            "write variables in a condition without ${...} or %{...} (when: vars.choice == '1'), as SignalWire advises"
        )
    parser = _Parser(text)
    if not parser.tokens:
        raise ExpressionError("the condition is empty")
    condition = parser.either()
    leftover = parser.peek()
    if leftover is not None:
        raise ExpressionError(f"unexpected {leftover[1]!r}: {_SUPPORTED}")
    return condition


def _number(value: object) -> float:
    """JavaScript's Number(value), with undefined as NaN."""
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        stripped = value.strip()
        if not stripped:
            return 0.0
        try:
            return float(stripped)
        except ValueError:
            return math.nan
    return math.nan


def _kind(value: object) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"


def _loosely_equal(left: object, right: object) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if _kind(left) == _kind(right):
        return left == right
    if "object" in (_kind(left), _kind(right)):
        return False
    return _number(left) == _number(right)


def _compare(op: str, left: object, right: object) -> bool:
    if op == "===":
        return _kind(left) == _kind(right) and left == right
    if op == "!==":
        return not (_kind(left) == _kind(right) and left == right)
    if op == "==":
        return _loosely_equal(left, right)
    if op == "!=":
        return not _loosely_equal(left, right)
    order = _ORDER[op]
    if isinstance(left, str) and isinstance(right, str):
        return bool(order(left, right))
    return bool(order(_number(left), _number(right)))


def truthy(value: object) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def _value(condition: Condition, scopes: Mapping[str, object]) -> object:
    if isinstance(condition, Literal):
        return condition.value
    if isinstance(condition, Path):
        return lookup(condition.path, scopes)
    if isinstance(condition, Not):
        return not truthy(_value(condition.operand, scopes))
    if isinstance(condition, AllOf):
        return all(truthy(_value(operand, scopes)) for operand in condition.operands)
    if isinstance(condition, AnyOf):
        return any(truthy(_value(operand, scopes)) for operand in condition.operands)
    return _compare(condition.op, _value(condition.left, scopes), _value(condition.right, scopes))


def evaluate(condition: Condition, scopes: Mapping[str, object]) -> bool:
    return truthy(_value(condition, scopes))
