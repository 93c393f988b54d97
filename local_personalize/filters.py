"""Personalize's filter expression language: tokenizer, parser and evaluator.

Supported now (a subset of the service's grammar, parsed by a real recursive-descent
parser so the rest can be added):

    expression := part ("|" part)*
    part       := ("INCLUDE" | "EXCLUDE") "ItemID" "WHERE" or_expr
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := atom ("AND" atom)*
    atom       := "(" or_expr ")" | field ["NOT"] "IN" "(" value ("," value)* ")"
                | field ("=" | "!=" | "<" | "<=" | ">" | ">=") value
    field      := ("Items" | "Interactions") "." NAME
    value      := "string" | number | $PARAM

Semantics follow the service: ``Interactions.EVENT_TYPE IN (...)`` looks at the user's
latest 100 events of each listed type (``"*"`` = every type) and compares event types
case-insensitively; item metadata values are compared case-sensitively. Parts joined
by ``|`` combine as union of INCLUDEs minus union of EXCLUDEs. INCLUDE parts need every
``$PARAM`` in ``filterValues``; a clause of an EXCLUDE part whose parameter is missing
is skipped (and a part with nothing left excludes nothing). ``CurrentItem``,
``CurrentUser`` and ``IF`` are rejected as unsupported at load time.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from .data import Dataset
from .errors import InvalidInputException

INTERACTION_LOOKBACK = 100
"""Events per event type that Interactions filters consider, as in the service."""

Mask = NDArray[np.bool_]


class FilterSyntaxError(ValueError):
    """A filter expression that cannot be parsed or bound; ``position`` is a 0-based offset."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


# --- tokens ----------------------------------------------------------------------------

TokenKind = Literal["word", "string", "number", "param", "op", "punct", "end"]


@dataclass(frozen=True)
class Token:
    """One lexical token; ``value`` is unescaped for strings and stripped of ``$`` for params."""

    kind: TokenKind
    value: str
    position: int


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<param>\$[A-Za-z0-9_]+)
  | (?P<op><=|>=|!=|=|<|>)
  | (?P<punct>[().,|])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    """,
    re.VERBOSE,
)


def tokenize(text: str) -> list[Token]:
    """Split an expression into tokens, raising FilterSyntaxError at the first bad character."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text[pos] == '"':
                raise FilterSyntaxError("unterminated string", pos)
            raise FilterSyntaxError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup
        raw = m.group()
        if kind == "string":
            tokens.append(Token("string", re.sub(r"\\(.)", r"\1", raw[1:-1]), pos))
        elif kind == "param":
            tokens.append(Token("param", raw[1:], pos))
        elif kind in ("number", "op", "punct", "word"):
            tokens.append(Token(kind, raw, pos))  # type: ignore[arg-type]
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


# --- syntax tree -----------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """``Dataset.NAME`` as written; ``dataset`` is normalised to its canonical spelling."""

    dataset: str
    name: str
    position: int


@dataclass(frozen=True)
class Literal_:
    """A quoted string or a number literal."""

    value: str
    is_number: bool
    position: int


@dataclass(frozen=True)
class Param:
    """A ``$NAME`` placeholder filled from ``filterValues`` at request time."""

    name: str
    position: int


Value: TypeAlias = Literal_ | Param


@dataclass(frozen=True)
class Membership:
    """``field [NOT] IN (values)``."""

    field: Field
    negated: bool
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Comparison:
    """``field op value`` with op one of = != < <= > >=."""

    field: Field
    op: str
    value: Value


@dataclass(frozen=True)
class BoolOp:
    """AND / OR over two or more conditions."""

    op: Literal["AND", "OR"]
    operands: tuple[Condition, ...]


Condition: TypeAlias = Membership | Comparison | BoolOp


@dataclass(frozen=True)
class Part:
    """``INCLUDE|EXCLUDE ItemID WHERE condition``."""

    action: Literal["INCLUDE", "EXCLUDE"]
    condition: Condition


@dataclass(frozen=True)
class FilterExpression:
    """A parsed expression: one or more parts joined by ``|``."""

    text: str
    parts: tuple[Part, ...]


_DATASETS = {"items": "Items", "interactions": "Interactions"}
_UNSUPPORTED_DATASETS = {"currentitem", "currentuser", "users"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def at_end(self) -> bool:
        return self.tok.kind == "end"

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.value.upper() in words

    def expect_word(self, word: str) -> Token:
        if not self.is_word(word):
            raise FilterSyntaxError(f"expected {word}, found {self._describe()}", self.tok.position)
        return self.advance()

    def expect_punct(self, punct: str) -> Token:
        if self.tok.kind != "punct" or self.tok.value != punct:
            raise FilterSyntaxError(
                f"expected '{punct}', found {self._describe()}", self.tok.position
            )
        return self.advance()

    def _describe(self) -> str:
        return "end of expression" if self.tok.kind == "end" else repr(self.tok.value)

    def parse(self) -> FilterExpression:
        if self.tok.kind == "end":
            raise FilterSyntaxError("empty filter expression", 0)
        parts = [self.part()]
        while self.tok.kind == "punct" and self.tok.value == "|":
            self.advance()
            parts.append(self.part())
        if not self.at_end():
            raise FilterSyntaxError(f"unexpected {self._describe()}", self.tok.position)
        return FilterExpression(self.text, tuple(parts))

    def part(self) -> Part:
        if self.is_word("IF"):
            raise FilterSyntaxError("IF conditions are not supported", self.tok.position)
        if not self.is_word("INCLUDE", "EXCLUDE"):
            raise FilterSyntaxError(
                f"expected INCLUDE or EXCLUDE, found {self._describe()}", self.tok.position
            )
        action: Literal["INCLUDE", "EXCLUDE"] = (
            "INCLUDE" if self.advance().value.upper() == "INCLUDE" else "EXCLUDE"
        )
        self.expect_word("ITEMID")
        self.expect_word("WHERE")
        return Part(action, self.or_expr())

    def or_expr(self) -> Condition:
        operands = [self.and_expr()]
        while self.is_word("OR"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("OR", tuple(operands))

    def and_expr(self) -> Condition:
        operands = [self.atom()]
        while self.is_word("AND"):
            self.advance()
            operands.append(self.atom())
        return operands[0] if len(operands) == 1 else BoolOp("AND", tuple(operands))

    def atom(self) -> Condition:
        if self.tok.kind == "punct" and self.tok.value == "(":
            self.advance()
            inner = self.or_expr()
            self.expect_punct(")")
            return inner
        fld = self.field()
        if self.is_word("NOT", "IN"):
            negated = self.advance().value.upper() == "NOT"
            if negated:
                self.expect_word("IN")
            self.expect_punct("(")
            values = [self.value()]
            while self.tok.kind == "punct" and self.tok.value == ",":
                self.advance()
                values.append(self.value())
            self.expect_punct(")")
            if negated:
                for v in values:
                    if isinstance(v, Param):
                        raise FilterSyntaxError(
                            "placeholders cannot be used with NOT IN", v.position
                        )
            return Membership(fld, negated, tuple(values))
        if self.tok.kind == "op":
            op = self.advance().value
            return Comparison(fld, op, self.value())
        raise FilterSyntaxError(
            f"expected IN, NOT IN or a comparison, found {self._describe()}", self.tok.position
        )

    def field(self) -> Field:
        tok = self.tok
        if tok.kind != "word":
            raise FilterSyntaxError(f"expected a field, found {self._describe()}", tok.position)
        self.advance()
        dataset = tok.value.lower()
        if dataset in _UNSUPPORTED_DATASETS:
            raise FilterSyntaxError(f"{tok.value} is not supported", tok.position)
        if dataset not in _DATASETS:
            raise FilterSyntaxError(
                f"expected Items or Interactions, found {tok.value!r}", tok.position
            )
        self.expect_punct(".")
        name = self.tok
        if name.kind != "word":
            raise FilterSyntaxError(
                f"expected a field name, found {self._describe()}", name.position
            )
        self.advance()
        return Field(_DATASETS[dataset], name.value.upper(), tok.position)

    def value(self) -> Value:
        tok = self.advance()
        if tok.kind == "string":
            return Literal_(tok.value, False, tok.position)
        if tok.kind == "number":
            return Literal_(tok.value, True, tok.position)
        if tok.kind == "param":
            return Param(tok.value, tok.position)
        self.i -= 1
        raise FilterSyntaxError(f"expected a value, found {self._describe()}", tok.position)


def parse_filter(text: str) -> FilterExpression:
    """Parse an expression; raises FilterSyntaxError with the offending position."""
    return _Parser(text).parse()


# --- filterValues ----------------------------------------------------------------------


def parse_filter_value(name: str, raw: str) -> list[str]:
    """Split one filterValues entry (``"\\"a\\",\\"b\\""``) into its values.

    Values are double-quoted and comma-separated; ``\\"`` and ``\\\\`` escape inside
    quotes. A bare unquoted token (``50``) is accepted too, for numbers.
    """
    values: list[str] = []
    i, n = 0, len(raw)
    while True:
        while i < n and raw[i].isspace():
            i += 1
        if i >= n:
            raise InvalidInputException(f"Invalid filter value for {name}: expected a value")
        if raw[i] == '"':
            i += 1
            buf: list[str] = []
            while i < n and raw[i] != '"':
                if raw[i] == "\\" and i + 1 < n:
                    i += 1
                buf.append(raw[i])
                i += 1
            if i >= n:
                raise InvalidInputException(f"Invalid filter value for {name}: unterminated quote")
            i += 1
            values.append("".join(buf))
        else:
            start = i
            while i < n and raw[i] != ",":
                i += 1
            token = raw[start:i].strip()
            if not token or '"' in token:
                raise InvalidInputException(f"Invalid filter value for {name}: {raw!r}")
            values.append(token)
        while i < n and raw[i].isspace():
            i += 1
        if i >= n:
            return values
        if raw[i] != ",":
            raise InvalidInputException(
                f"Invalid filter value for {name}: expected ',' at position {i}"
            )
        i += 1


# --- binding and evaluation ------------------------------------------------------------


@dataclass(frozen=True)
class EvalContext:
    """What a request contributes: the user (index or None) and parsed filterValues."""

    user: int | None
    values: Mapping[str, list[str]]


_Evaluator = Callable[[EvalContext], Mask | None]

_COMPARE: dict[str, Callable[[NDArray[np.float64], float], Mask]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class CompiledFilter:
    """A filter bound to a dataset; ``allowed()`` gives the item mask for one request."""

    def __init__(self, arn: str, expression: str, dataset: Dataset) -> None:
        self.arn = arn
        self.expression = parse_filter(expression)
        self._dataset = dataset
        self._n_items = len(dataset.items)
        self.parameters: dict[str, Literal["INCLUDE", "EXCLUDE"]] = {}
        self._parts: list[tuple[Literal["INCLUDE", "EXCLUDE"], frozenset[str], _Evaluator]] = []
        for part in self.expression.parts:
            params: set[str] = set()
            evaluator = self._bind(part.condition, params)
            for p in params:
                # A name used by any INCLUDE part is required.
                if self.parameters.get(p) != "INCLUDE":
                    self.parameters[p] = part.action
            self._parts.append((part.action, frozenset(params), evaluator))

    def allowed(self, user: int | None, filter_values: Mapping[str, str]) -> Mask:
        """Boolean mask over the Items table of the items this filter lets through."""
        values = {k: parse_filter_value(k, v) for k, v in filter_values.items()}
        missing = sorted(
            p for p, action in self.parameters.items() if action == "INCLUDE" and p not in values
        )
        if missing:
            raise InvalidInputException(
                f"Filter {self.arn} requires filterValues for: {', '.join(missing)}"
            )
        ctx = EvalContext(user, values)
        include: Mask | None = None
        exclude: Mask | None = None
        for action, _params, evaluator in self._parts:
            mask = evaluator(ctx)
            if action == "INCLUDE":
                mask = mask if mask is not None else np.zeros(self._n_items, dtype=bool)
                include = mask if include is None else include | mask
            elif mask is not None:
                exclude = mask if exclude is None else exclude | mask
        result = include.copy() if include is not None else np.ones(self._n_items, dtype=bool)
        if exclude is not None:
            result &= ~exclude
        return result

    # Binding turns each syntax node into a closure over precomputed arrays, so request
    # time is a handful of vectorised numpy operations.
    def _bind(self, cond: Condition, params: set[str]) -> _Evaluator:
        if isinstance(cond, BoolOp):
            subs = [self._bind(c, params) for c in cond.operands]
            return self._bool(cond.op, subs)
        values = cond.values if isinstance(cond, Membership) else (cond.value,)
        params.update(v.name for v in values if isinstance(v, Param))
        if cond.field.dataset == "Interactions":
            return self._bind_interactions(cond)
        return self._bind_items(cond)

    @staticmethod
    def _bool(op: str, subs: list[_Evaluator]) -> _Evaluator:
        def run(ctx: EvalContext) -> Mask | None:
            result: Mask | None = None
            for sub in subs:
                mask = sub(ctx)
                if mask is None:  # a skipped EXCLUDE clause drops out of AND and OR alike
                    continue
                if result is None:
                    result = mask
                elif op == "AND":
                    result = result & mask
                else:
                    result = result | mask
            return result

        return run

    def _resolve(self, values: tuple[Value, ...], ctx: EvalContext) -> list[str] | None:
        out: list[str] = []
        for v in values:
            if isinstance(v, Param):
                if v.name not in ctx.values:
                    return None
                out.extend(ctx.values[v.name])
            else:
                out.append(v.value)
        return out

    def _bind_interactions(self, cond: Membership | Comparison) -> _Evaluator:
        if cond.field.name != "EVENT_TYPE" or not isinstance(cond, Membership) or cond.negated:
            raise FilterSyntaxError(
                "only Interactions.EVENT_TYPE IN (...) is supported", cond.field.position
            )
        inter = self._dataset.interactions
        type_code = {e.lower(): i for i, e in enumerate(inter.event_types)}
        n_items = self._n_items

        def run(ctx: EvalContext) -> Mask | None:
            wanted = self._resolve(cond.values, ctx)
            if wanted is None:
                return None
            mask = np.zeros(n_items, dtype=bool)
            if ctx.user is None:
                return mask
            lowered = {w.lower() for w in wanted}
            codes = (
                list(type_code.values())
                if "*" in lowered
                else [type_code[w] for w in lowered if w in type_code]
            )
            rows = inter.history(ctx.user)
            items, events = inter.item[rows], inter.event[rows]
            for code in codes:
                mask[items[events == code][-INTERACTION_LOOKBACK:]] = True
            return mask

        return run

    def _bind_items(self, cond: Membership | Comparison) -> _Evaluator:
        column = self._dataset.items.columns.get(cond.field.name)
        if column is None:
            raise FilterSyntaxError(f"unknown Items field {cond.field.name}", cond.field.position)
        if column.kind == "text":
            raise FilterSyntaxError(
                f"textual field {cond.field.name} cannot be used in filters", cond.field.position
            )
        if isinstance(cond, Comparison):
            if column.numbers is None:
                raise FilterSyntaxError(f"{cond.field.name} is not numeric", cond.field.position)
            return self._bind_comparison(cond, column.numbers)
        if column.codes is not None:
            return self._bind_categorical(cond, column.codes, column.code_of)
        assert column.numbers is not None
        return self._bind_numeric_membership(cond, column.numbers)

    def _bind_comparison(self, cond: Comparison, numbers: NDArray[np.float64]) -> _Evaluator:
        compare = _COMPARE[cond.op]
        if isinstance(cond.value, Literal_):
            try:
                threshold = float(cond.value.value)
            except ValueError:
                raise FilterSyntaxError(
                    f"{cond.field.name} must be compared with a number", cond.value.position
                ) from None
            fixed = compare(numbers, threshold)
            return lambda ctx: fixed

        name = cond.value.name

        def run(ctx: EvalContext) -> Mask | None:
            if name not in ctx.values:
                return None
            given = ctx.values[name]
            if len(given) != 1:
                raise InvalidInputException(
                    f"filterValues {name} must hold exactly one number for {cond.op}"
                )
            return compare(numbers, _number(name, given[0]))

        return run

    def _bind_categorical(
        self, cond: Membership, codes: NDArray[np.int32], code_of: Mapping[str, int]
    ) -> _Evaluator:
        n_codes = len(code_of)

        def run(ctx: EvalContext) -> Mask | None:
            wanted = self._resolve(cond.values, ctx)
            if wanted is None:
                return None
            hit = np.zeros(n_codes + 1, dtype=bool)
            for w in wanted:
                code = code_of.get(w)
                if code is not None:
                    hit[code] = True
            mask = hit[codes]
            return ~mask if cond.negated else mask

        return run

    def _bind_numeric_membership(
        self, cond: Membership, numbers: NDArray[np.float64]
    ) -> _Evaluator:
        def run(ctx: EvalContext) -> Mask | None:
            wanted = self._resolve(cond.values, ctx)
            if wanted is None:
                return None
            mask = np.isin(numbers, [_number(cond.field.name, w) for w in wanted])
            return ~mask if cond.negated else mask

        return run


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputException(f"Filter value for {name} must be a number: {text!r}") from None
    if not np.isfinite(value):
        raise InvalidInputException(f"Filter value for {name} must be a finite number")
    return value
