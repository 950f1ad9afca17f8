"""Parser for the SOQL subset the emulator answers.

    SELECT field, ... FROM SObject
      [WHERE cond [AND cond ...]]
      [ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], ...]
      [LIMIT n]

    cond := field (= | != | <> | < | <= | > | >= | LIKE) literal
          | field [NOT] IN (literal, ...)
    literal := 'quoted string' | number | true | false | null

String literals use SOQL's backslash escapes (\\' \\" \\\\ \\n \\r \\t \\b \\f \\_ \\%).
Anything else (OR, sub-queries, relationship fields, functions) is a MALFORMED_QUERY:
the emulator says so rather than guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Scalar = str | int | float | bool | None
Operator = Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "IN", "NOT IN"]

_ESCAPES = {
    "'": "'",
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    # In LIKE patterns \_ and \% are literal; kept escaped so the store can tell.
    "_": "\\_",
    "%": "\\%",
}
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)


class SoqlError(ValueError):
    """A query the emulator cannot parse: reported as MALFORMED_QUERY."""


@dataclass(frozen=True)
class Token:
    kind: Literal["string", "number", "op", "punct", "word"]
    text: str
    value: Scalar


@dataclass(frozen=True)
class Condition:
    field: str
    op: Operator
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True)
class OrderBy:
    field: str
    descending: bool
    nulls_last: bool


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: tuple[Condition, ...]
    order_by: tuple[OrderBy, ...]
    limit: int | None


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SoqlError(f"unexpected token: '{text[pos : pos + 20]}'")
        kind = match.lastgroup
        if kind == "string":
            value, pos = _read_string(text, match.end())
            tokens.append(Token("string", value, value))
            continue
        pos = match.end()
        raw = match.group(0)
        if kind == "number":
            number: int | float = float(raw) if "." in raw else int(raw)
            tokens.append(Token("number", raw, number))
        elif kind == "op":
            tokens.append(Token("op", "!=" if raw == "<>" else raw, None))
        elif kind == "punct":
            tokens.append(Token("punct", raw, None))
        elif kind == "word":
            tokens.append(Token("word", raw, None))
    return tokens


def _read_string(text: str, pos: int) -> tuple[str, int]:
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == "\\":
            if pos + 1 >= len(text) or text[pos + 1] not in _ESCAPES:
                raise SoqlError(f"invalid escape sequence at position {pos}")
            out.append(_ESCAPES[text[pos + 1]])
            pos += 2
        elif char == "'":
            return "".join(out), pos + 1
        else:
            out.append(char)
            pos += 1
    raise SoqlError("unterminated string literal")


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek_word(self) -> str | None:
        if self.pos < len(self.tokens) and self.tokens[self.pos].kind == "word":
            return self.tokens[self.pos].text.upper()
        return None

    def next(self) -> Token:
        if self.pos >= len(self.tokens):
            raise SoqlError("unexpected end of query")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def keyword(self, word: str) -> None:
        token = self.next()
        if token.kind != "word" or token.text.upper() != word:
            raise SoqlError(f"expecting {word}, found '{token.text}'")

    def identifier(self) -> str:
        token = self.next()
        if token.kind != "word":
            raise SoqlError(f"expecting a field or object name, found '{token.text}'")
        if "." in token.text:
            raise SoqlError(f"relationship fields are not supported: '{token.text}'")
        return token.text

    def literal(self) -> Scalar:
        token = self.next()
        if token.kind in ("string", "number"):
            return token.value
        if token.kind == "word" and token.text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text.lower()]
        raise SoqlError(f"expecting a literal value, found '{token.text}'")

    def parse(self) -> Query:
        self.keyword("SELECT")
        fields = [self.identifier()]
        while self.pos < len(self.tokens) and self.tokens[self.pos].text == ",":
            self.pos += 1
            fields.append(self.identifier())
        self.keyword("FROM")
        sobject = self.identifier()
        where: list[Condition] = []
        order: list[OrderBy] = []
        limit: int | None = None
        if self.peek_word() == "WHERE":
            self.pos += 1
            where.append(self.condition())
            while self.peek_word() == "AND":
                self.pos += 1
                where.append(self.condition())
            if self.peek_word() == "OR":
                raise SoqlError("OR is not supported by the emulator's SOQL subset")
        if self.peek_word() == "ORDER":
            self.pos += 1
            self.keyword("BY")
            order.append(self.order_item())
            while self.pos < len(self.tokens) and self.tokens[self.pos].text == ",":
                self.pos += 1
                order.append(self.order_item())
        if self.peek_word() == "LIMIT":
            self.pos += 1
            token = self.next()
            if token.kind != "number" or not isinstance(token.value, int) or token.value < 0:
                raise SoqlError(f"LIMIT expects a non-negative integer, found '{token.text}'")
            limit = token.value
        if self.pos != len(self.tokens):
            raise SoqlError(f"unexpected token: '{self.tokens[self.pos].text}'")
        return Query(tuple(fields), sobject, tuple(where), tuple(order), limit)

    def condition(self) -> Condition:
        name = self.identifier()
        word = self.peek_word()
        if word in ("IN", "NOT"):
            self.pos += 1
            op: Operator = "IN"
            if word == "NOT":
                self.keyword("IN")
                op = "NOT IN"
            if self.next().text != "(":
                raise SoqlError("expecting '(' after IN")
            values = [self.literal()]
            while True:
                token = self.next()
                if token.text == ")":
                    break
                if token.text != ",":
                    raise SoqlError(f"expecting ',' or ')', found '{token.text}'")
                values.append(self.literal())
            return Condition(name, op, tuple(values))
        if word == "LIKE":
            self.pos += 1
            value = self.literal()
            if not isinstance(value, str):
                raise SoqlError("LIKE expects a string literal")
            return Condition(name, "LIKE", value)
        token = self.next()
        if token.kind != "op":
            raise SoqlError(f"expecting an operator, found '{token.text}'")
        op_text: Operator = token.text  # type: ignore[assignment]
        return Condition(name, op_text, self.literal())

    def order_item(self) -> OrderBy:
        name = self.identifier()
        descending = False
        if self.peek_word() in ("ASC", "DESC"):
            descending = self.next().text.upper() == "DESC"
        # Salesforce sorts nulls first by default (ascending and descending).
        nulls_last = False
        if self.peek_word() == "NULLS":
            self.pos += 1
            which = self.next().text.upper()
            if which not in ("FIRST", "LAST"):
                raise SoqlError("expecting FIRST or LAST after NULLS")
            nulls_last = which == "LAST"
        return OrderBy(name, descending, nulls_last)


def parse(text: str) -> Query:
    tokens = tokenize(text)
    if not tokens:
        raise SoqlError("empty query")
    return _Parser(tokens).parse()
