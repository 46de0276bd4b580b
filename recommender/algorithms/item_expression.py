"""Item attribute expressions: `category = "Action"`, `brand in ("A", "B")`, `price < 20`,
combined with `and` / `or` / `not` and parentheses. No Django.

    expression := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" expression ")" | comparison
    comparison := FIELD ("=" | "!=" | "<" | "<=" | ">" | ">=") VALUE
                | FIELD ["not"] "in" "(" VALUE ("," VALUE)* ")"
    VALUE      := "text" | 'text' | number | true | false

Keywords are case-insensitive. Text comparisons ignore case; a list-valued field (a JSON
attribute holding a list) matches when any of its values does. An item without the field
matches no comparison except `!=` and `not in`. Errors carry the 1-based character position.
"""

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_LENGTH = 2000
NUMBER_FIELDS = frozenset({"price"})
BOOLEAN_FIELDS = frozenset({"in_stock"})

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][\w.\-]*)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false"}


class ExpressionError(ValueError):
    """Bad syntax or an unknown field; `position` is 1-based (0: the whole expression)."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (at position {position})" if position else message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Token:
    kind: str  # string, number, op, punct, word, end
    text: str
    value: Any
    position: int


Value = str | float | bool


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str  # = != < <= > >= in "not in"
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Not:
    operand: "Node"


@dataclass(frozen=True)
class BoolOp:
    op: str  # and / or
    operands: tuple["Node", ...]


Node = Comparison | Not | BoolOp


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:  # only trailing whitespace is left
            break
        kind = match.lastgroup or "bad"
        raw = match.group(kind)
        start = match.start(kind) + 1
        pos = match.end()
        if kind == "bad":
            if raw in "\"'":
                raise ExpressionError("Unterminated text value", start)
            if raw.isdigit() or raw == "-":
                raise ExpressionError("Invalid number", start)
            raise ExpressionError(f"Unexpected character {raw!r}", start)
        value: Any = raw
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif kind == "number":
            value = float(raw)
        elif kind == "word" and raw.lower() in _KEYWORDS:
            kind, value = "keyword", raw.lower()
        tokens.append(Token(kind, raw, value, start))
    tokens.append(Token("end", "", None, len(text) + 1))
    return tokens


def parse(text: str, *, fields: Iterable[str]) -> Node:
    """Parse `text`; every field it names must be in `fields` (case-insensitive)."""
    if not text.strip():
        raise ExpressionError('Enter an expression, e.g. category = "books"', 0)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"The expression is longer than {MAX_LENGTH} characters", 0)
    known = {f.lower(): f for f in fields}
    return _Parser(tokenize(text), known).parse()


class _Parser:
    def __init__(self, tokens: list[Token], known: Mapping[str, str]) -> None:
        self.tokens = tokens
        self.known = known
        self.i = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def _next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _is(self, kind: str, value: str | None = None) -> bool:
        t = self.token
        return t.kind == kind and (value is None or t.value == value)

    def _expect(self, kind: str, value: str, what: str) -> Token:
        if not self._is(kind, value):
            raise ExpressionError(
                f"Expected {what}, found {_describe(self.token)}", self.token.position
            )
        return self._next()

    def parse(self) -> Node:
        node = self._or()
        if not self._is("end"):
            raise ExpressionError(
                f"Expected 'and', 'or' or the end, found {_describe(self.token)}",
                self.token.position,
            )
        return node

    def _or(self) -> Node:
        operands = [self._and()]
        while self._is("keyword", "or"):
            self._next()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def _and(self) -> Node:
        operands = [self._unary()]
        while self._is("keyword", "and"):
            self._next()
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def _unary(self) -> Node:
        if self._is("keyword", "not"):
            self._next()
            return Not(self._unary())
        if self._is("punct", "("):
            self._next()
            node = self._or()
            self._expect("punct", ")", "')'")
            return node
        return self._comparison()

    def _comparison(self) -> Comparison:
        token = self._next()
        if token.kind != "word":
            raise ExpressionError(
                f"Expected a field name, found {_describe(token)}", token.position
            )
        field = self.known.get(token.text.lower())
        if field is None:
            names = ", ".join(sorted(self.known.values()))
            raise ExpressionError(
                f"Unknown field '{token.text}'; known fields: {names}", token.position
            )
        if self._is("keyword", "not") or self._is("keyword", "in"):
            negated = self._next().value == "not"
            if negated:
                self._expect("keyword", "in", "'in' after 'not'")
            self._expect("punct", "(", "'(' after 'in'")
            values = [self._value(field)]
            while self._is("punct", ","):
                self._next()
                values.append(self._value(field))
            self._expect("punct", ")", "',' or ')'")
            return Comparison(field, "not in" if negated else "in", tuple(values))
        if not self._is("op"):
            raise ExpressionError(
                f"Expected an operator (=, !=, <, <=, >, >=, in) after '{token.text}', "
                f"found {_describe(self.token)}",
                self.token.position,
            )
        op = self._next().text
        value = self._value(field)
        if op in {"<", "<=", ">", ">="} and not isinstance(value, float):
            raise ExpressionError(f"'{op}' compares numbers", self.tokens[self.i - 1].position)
        return Comparison(field, op, (value,))

    def _value(self, field: str) -> Value:
        token = self._next()
        if token.kind == "string":
            value: Value = token.value
        elif token.kind == "number":
            value = token.value
        elif token.kind == "keyword" and token.value in {"true", "false"}:
            value = token.value == "true"
        else:
            raise ExpressionError(f"Expected a value, found {_describe(token)}", token.position)
        if field in NUMBER_FIELDS and not isinstance(value, float):
            raise ExpressionError(f"'{field}' is a number", token.position)
        if field in BOOLEAN_FIELDS and not isinstance(value, bool):
            raise ExpressionError(f"'{field}' is true or false", token.position)
        return value


def _describe(token: Token) -> str:
    return "the end" if token.kind == "end" else repr(token.text)


def fields_used(node: Node) -> set[str]:
    if isinstance(node, Comparison):
        return {node.field}
    if isinstance(node, Not):
        return fields_used(node.operand)
    return set().union(*(fields_used(child) for child in node.operands))


def evaluate(node: Node, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Boolean mask over `rows` (one mapping of field -> value per item)."""
    if isinstance(node, BoolOp):
        masks = [evaluate(child, rows) for child in node.operands]
        return np.logical_and.reduce(masks) if node.op == "and" else np.logical_or.reduce(masks)
    if isinstance(node, Not):
        return ~evaluate(node.operand, rows)
    return np.fromiter((_matches(node, row.get(node.field)) for row in rows), bool, len(rows))


def _matches(node: Comparison, value: Any) -> bool:
    values = value if isinstance(value, list | tuple) else [value]
    hit = any(_compare(node.op, v, node.values) for v in values if v is not None)
    return not hit if node.op in {"!=", "not in"} else hit


def _compare(op: str, actual: Any, expected: tuple[Value, ...]) -> bool:
    if op in {"=", "!=", "in", "not in"}:
        return any(_equal(actual, e) for e in expected)
    number = _number(actual)
    if number is None:
        return False
    limit = float(expected[0])
    return {
        "<": number < limit,
        "<=": number <= limit,
        ">": number > limit,
        ">=": number >= limit,
    }[op]


def _equal(actual: Any, expected: Value) -> bool:
    if isinstance(expected, bool):
        if isinstance(actual, str):
            return actual.lower() == str(expected).lower()
        return isinstance(actual, bool) and actual == expected
    if isinstance(expected, float):
        number = _number(actual)
        return number is not None and number == expected
    return str(actual).casefold() == expected.casefold()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
