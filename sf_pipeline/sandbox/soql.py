"""The SOQL subset the sandbox understands: tokens, syntax tree and parser.

    SELECT path {, path} | COUNT() FROM Object
      [WHERE condition] [ORDER BY path [ASC|DESC] [NULLS FIRST|LAST] {, ...}] [LIMIT n] [OFFSET n]

Conditions follow Salesforce's grammar, not SQL's: one level of a condition is either a single
``NOT simple``, or simple expressions joined by only ``AND`` or only ``OR``. Mixing the two, or
writing ``x AND NOT y``, is a MALFORMED_QUERY, as it is in a real org. Anything outside the subset
is also a MALFORMED_QUERY; the parser never guesses. Names are resolved later (``planner``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal, cast

from sf_pipeline.sandbox.clock import format_datetime
from sf_pipeline.sandbox.errors import MalformedQuery, SandboxError

TokenKind = Literal["ident", "string", "number", "date", "datetime", "op", "punct", "eof"]

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
    |(?P<number>[+-]?\d+(?:\.\d+)?)(?![\w.])
    |(?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),.:])
    """,
    re.VERBOSE | re.DOTALL,
)

ComparisonOp = Literal["=", "!=", "<", "<=", ">", ">=", "LIKE", "IN", "NOT IN", "INCLUDES", "EXCLUDES"]
LiteralKind = Literal["string", "number", "boolean", "null", "date", "datetime", "date_literal"]

# Relative date literals; those ending in _N_ take ":n".
DATE_LITERALS = frozenset(
    {
        "YESTERDAY",
        "TODAY",
        "TOMORROW",
        "LAST_WEEK",
        "THIS_WEEK",
        "NEXT_WEEK",
        "LAST_MONTH",
        "THIS_MONTH",
        "NEXT_MONTH",
        "LAST_90_DAYS",
        "NEXT_90_DAYS",
        "THIS_QUARTER",
        "LAST_QUARTER",
        "NEXT_QUARTER",
        "THIS_YEAR",
        "LAST_YEAR",
        "NEXT_YEAR",
    }
)
DATE_LITERALS_N = frozenset(
    {
        "LAST_N_DAYS",
        "NEXT_N_DAYS",
        "N_DAYS_AGO",
        "LAST_N_WEEKS",
        "NEXT_N_WEEKS",
        "LAST_N_MONTHS",
        "NEXT_N_MONTHS",
        "LAST_N_YEARS",
        "NEXT_N_YEARS",
    }
)
_UNSUPPORTED = frozenset({"GROUP", "HAVING", "WITH", "FOR", "USING", "TYPEOF", "FIELDS"})


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    pos: int

    def keyword(self, *words: str) -> bool:
        return self.kind == "ident" and self.text.upper() in words


@dataclass(frozen=True)
class FieldPath:
    parts: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class DateTimeValue:
    """A datetime literal in stored form; ``exact`` is False when it had digits below a millisecond."""

    text: str
    exact: bool


@dataclass(frozen=True)
class Value:
    kind: LiteralKind
    raw: str
    pos: int
    number: float | int = 0
    flag: bool = False
    day: date | None = None
    instant: DateTimeValue | None = None
    n: int = 0


@dataclass(frozen=True)
class Comparison:
    path: FieldPath
    op: ComparisonOp
    values: tuple[Value, ...]
    pos: int


@dataclass(frozen=True)
class Junction:
    op: Literal["AND", "OR"]
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Negation:
    item: Condition


Condition = Comparison | Junction | Negation


@dataclass(frozen=True)
class OrderItem:
    path: FieldPath
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    text: str
    fields: tuple[FieldPath, ...] | None  # None means SELECT COUNT()
    sobject: str
    sobject_pos: int
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


def error(cls: type[SandboxError], text: str, pos: int, detail: str) -> SandboxError:
    """An error in Salesforce's style: the query line, a caret, the row and column, the detail."""
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    row = text.count("\n", 0, pos) + 1
    col = pos - line_start + 1
    return cls(f"\n{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{detail}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] == "'":
                raise error(MalformedQuery, text, pos, f"line 1:{pos} unterminated string literal")
            raise error(MalformedQuery, text, pos, f"no viable alternative at character '{text[pos]}'")
        kind = m.lastgroup
        if kind != "ws":
            tokens.append(Token(cast(TokenKind, kind), m.group(), pos))
        pos = m.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _characters(value: Value, text: str, *, like: bool) -> Iterator[tuple[str, bool]]:
    """The characters a quoted literal stands for, each flagged True if it is a LIKE wildcard.

    Escapes: ``\\n \\r \\t \\b \\f \\" \\' \\\\ \\uXXXX``; in LIKE also ``\\%`` and ``\\_``
    (a literal percent sign or underscore). Any other backslash is an error, as in Salesforce.
    """
    body = value.raw[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            yield ch, like and ch in "%_"
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt.lower() in _ESCAPES:
            yield _ESCAPES[nxt.lower()], False
            i += 2
        elif nxt in "uU" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2 : i + 6]):
            yield chr(int(body[i + 2 : i + 6], 16)), False
            i += 6
        elif like and nxt in "%_":
            yield nxt, False
            i += 2
        else:
            raise error(
                MalformedQuery,
                text,
                value.pos + 1 + i,
                f"Invalid string literal '{body}'. Illegal character sequence '\\{nxt}' in string literal.",
            )


def decode_string(value: Value, text: str) -> str:
    """The string a quoted literal stands for."""
    return "".join(ch for ch, _ in _characters(value, text, like=False))


def like_segments(value: Value, text: str) -> list[tuple[str, int]]:
    """A LIKE pattern split at its ``%`` wildcards into (regular expression, length) pieces, in
    which ``_`` matches any one character and everything else matches itself."""
    segments: list[tuple[str, int]] = []
    current: list[str] = []
    for ch, wildcard in _characters(value, text, like=True):
        if wildcard and ch == "%":
            segments.append(("".join(current), len(current)))
            current = []
        else:
            current.append("." if wildcard else re.escape(ch))
    segments.append(("".join(current), len(current)))
    return segments


def _parse_datetime(raw: str) -> DateTimeValue:
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})", raw)
    if m is None:
        raise ValueError(raw)
    base = datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC)
    fraction = m.group(2) or ""
    zone = m.group(3)
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[-2:])
        base -= sign * timedelta(hours=hours, minutes=minutes)
    millis = int((fraction + "000")[:3])
    exact = not fraction[3:].strip("0")
    return DateTimeValue(format_datetime(base + timedelta(milliseconds=millis)), exact)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def unexpected(self, tok: Token | None = None) -> SandboxError:
        tok = tok or self.tok
        if tok.kind == "eof":
            return error(MalformedQuery, self.text, tok.pos, "unexpected token: '<EOF>'")
        return error(MalformedQuery, self.text, tok.pos, f"unexpected token: '{tok.text}'")

    def expect_keyword(self, word: str) -> Token:
        if not self.tok.keyword(word):
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, ch: str) -> Token:
        if self.tok.kind != "punct" or self.tok.text != ch:
            raise self.unexpected()
        return self.advance()

    def at_end(self) -> bool:
        return self.tok.kind == "eof"

    def at_punct(self, ch: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == ch

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        fields = self.select_list()
        self.expect_keyword("FROM")
        if self.tok.kind != "ident":
            raise self.unexpected()
        obj = self.advance()
        if self.tok.kind == "ident" and not self.tok.keyword("WHERE", "ORDER", "LIMIT", "OFFSET"):
            raise self.unexpected()  # aliases, USING SCOPE, WITH, GROUP BY, ... are not supported
        where = None
        if self.tok.keyword("WHERE"):
            self.advance()
            where = self.condition()
        order: tuple[OrderItem, ...] = ()
        if self.tok.keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order = self.order_list()
        limit = offset = None
        if self.tok.keyword("LIMIT"):
            self.advance()
            limit = self.count_value()
        if self.tok.keyword("OFFSET"):
            self.advance()
            offset = self.count_value()
        if not self.at_end():
            raise self.unexpected()
        return Query(self.text, fields, obj.text, obj.pos, where, order, limit, offset)

    def count_value(self) -> int:
        tok = self.advance()
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.unexpected(tok)
        return int(tok.text)

    def select_list(self) -> tuple[FieldPath, ...] | None:
        if self.tok.keyword("COUNT") and self.tokens[self.i + 1].text == "(":
            self.advance()
            self.advance()
            if not self.at_punct(")"):
                # COUNT(field) returns an AggregateResult, which the sandbox does not produce.
                raise self.unexpected()
            self.advance()
            return None
        paths = [self.path()]
        while self.at_punct(","):
            self.advance()
            paths.append(self.path())
        return tuple(paths)

    def path(self) -> FieldPath:
        tok = self.tok
        if tok.kind != "ident" or tok.text.upper() in _UNSUPPORTED or tok.keyword("FROM", "SELECT"):
            raise self.unexpected()
        parts = [self.advance().text]
        while self.at_punct("."):
            self.advance()
            if self.tok.kind != "ident":
                raise self.unexpected()
            parts.append(self.advance().text)
        if self.at_punct("("):
            raise self.unexpected()  # functions such as toLabel() or FORMAT()
        return FieldPath(tuple(parts), tok.pos)

    def condition(self) -> Condition:
        if self.tok.keyword("NOT"):
            self.advance()
            return Negation(self.simple())
        items = [self.simple()]
        joiner: Literal["AND", "OR"] | None = None
        while self.tok.keyword("AND", "OR"):
            word: Literal["AND", "OR"] = "AND" if self.tok.keyword("AND") else "OR"
            if joiner is not None and word != joiner:
                raise self.unexpected()
            joiner = word
            self.advance()
            if self.tok.keyword("NOT"):
                raise self.unexpected()
            items.append(self.simple())
        if joiner is None:
            return items[0]
        return Junction(joiner, tuple(items))

    def simple(self) -> Condition:
        if self.at_punct("("):
            self.advance()
            inner = self.condition()
            self.expect_punct(")")
            return inner
        return self.comparison()

    def comparison(self) -> Comparison:
        path = self.path()
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            op = cast(ComparisonOp, "!=" if tok.text == "<>" else tok.text)
            return Comparison(path, op, (self.value(),), tok.pos)
        if tok.keyword("LIKE"):
            self.advance()
            return Comparison(path, "LIKE", (self.value(),), tok.pos)
        if tok.keyword("NOT"):
            self.advance()
            self.expect_keyword("IN")
            return Comparison(path, "NOT IN", self.value_list(), tok.pos)
        if tok.keyword("IN", "INCLUDES", "EXCLUDES"):
            self.advance()
            return Comparison(path, cast(ComparisonOp, tok.text.upper()), self.value_list(), tok.pos)
        raise self.unexpected()

    def value_list(self) -> tuple[Value, ...]:
        self.expect_punct("(")
        if self.tok.keyword("SELECT"):
            raise self.unexpected()  # semi-joins are not supported
        values = [self.value()]
        while self.at_punct(","):
            self.advance()
            values.append(self.value())
        self.expect_punct(")")
        return tuple(values)

    def value(self) -> Value:
        tok = self.advance()
        if tok.kind == "string":
            return Value("string", tok.text, tok.pos)
        if tok.kind == "number":
            number: float | int = float(tok.text) if "." in tok.text else int(tok.text)
            return Value("number", tok.text, tok.pos, number=number)
        if tok.kind == "date":
            try:
                day = date.fromisoformat(tok.text)
            except ValueError:
                raise error(
                    MalformedQuery,
                    self.text,
                    tok.pos,
                    f"line 1:{tok.pos} no viable alternative at character '{tok.text}'",
                ) from None
            return Value("date", tok.text, tok.pos, day=day)
        if tok.kind == "datetime":
            try:
                instant = _parse_datetime(tok.text)
            except ValueError:
                raise error(
                    MalformedQuery,
                    self.text,
                    tok.pos,
                    f"line 1:{tok.pos} no viable alternative at character '{tok.text}'",
                ) from None
            return Value("datetime", tok.text, tok.pos, instant=instant)
        if tok.kind == "ident":
            word = tok.text.upper()
            if word in ("TRUE", "FALSE"):
                return Value("boolean", tok.text, tok.pos, flag=word == "TRUE")
            if word == "NULL":
                return Value("null", tok.text, tok.pos)
            if word in DATE_LITERALS:
                return Value("date_literal", word, tok.pos)
            if word in DATE_LITERALS_N:
                self.expect_punct(":")
                n = self.advance()
                if n.kind != "number" or not n.text.isdigit():
                    raise self.unexpected(n)
                return Value("date_literal", word, tok.pos, n=int(n.text))
        raise self.unexpected(tok)

    def order_list(self) -> tuple[OrderItem, ...]:
        items = [self.order_item()]
        while self.at_punct(","):
            self.advance()
            items.append(self.order_item())
        return tuple(items)

    def order_item(self) -> OrderItem:
        path = self.path()
        descending = False
        if self.tok.keyword("ASC", "DESC"):
            descending = self.advance().keyword("DESC")
        # Salesforce puts nulls first by default; descending order keeps them last (mirror image).
        nulls_first = not descending
        if self.tok.keyword("NULLS"):
            self.advance()
            if not self.tok.keyword("FIRST", "LAST"):
                raise self.unexpected()
            nulls_first = self.advance().keyword("FIRST")
        return OrderItem(path, descending, nulls_first)


def parse(text: str) -> Query:
    if not text.strip():
        raise MalformedQuery("A query string has to be specified")
    return _Parser(text).parse()
