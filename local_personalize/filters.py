"""Personalize's filter expression language: tokenizer, parser and evaluator.

The grammar, parsed by recursive descent so every error has a 0-based position:

    expression := part ("|" part)*
    part       := ("INCLUDE" | "EXCLUDE") "ItemID" "WHERE" or_expr ["IF" user_atom]
    or_expr    := and_expr ("OR" and_expr)*
    and_expr   := atom ("AND" atom)*
    atom       := "(" or_expr ")" | field ["NOT"] "IN" "(" value ("," value)* ")"
                | field ("=" | "!=" | "<" | "<=" | ">" | ">=") value
    user_atom  := "CurrentUser" "." NAME (["NOT"] "IN" "(" values ")" | op value)
    field      := ("Items" | "Interactions") "." NAME
    value      := "string" | number | $PARAM | "CurrentItem" "." NAME

Semantics follow the service:

- ``Interactions.EVENT_TYPE IN (...)`` looks at the user's latest 100 events of each
  listed type (``"*"`` = every type); event types compare case-insensitively, item
  metadata case-sensitively. A request may bring the user's history with real-time
  events merged in (``UserHistory``); it replaces the dataset's for that request.
- Categorical fields may hold several values separated by ``|``; IN matches when any
  of them is listed (NOT IN when none is).
- ``CurrentItem.F`` is the request's ``itemId``'s own value of F, so it only works on
  related-items requests; an itemId missing from the Items dataset matches nothing.
- ``IF CurrentUser.F ...`` reads the requesting user's row of the Users dataset; when
  the condition does not hold (or the user has no row) the clause does not apply.
- AND / OR combine conditions on one dataset only; parts joined by ``|`` combine as the
  union of applying INCLUDEs minus the union of EXCLUDEs.
- INCLUDE parts need every ``$PARAM`` in ``filterValues``; a clause of an EXCLUDE part
  whose parameter is missing is skipped; ``$PARAM`` cannot be used with NOT IN.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import NDArray

from .data import Column, Dataset, UserHistory
from .errors import InvalidInputException

INTERACTION_LOOKBACK = 100
"""Events per event type that Interactions filters consider, as in the service."""

MULTI_VALUE_SEPARATOR = "|"
"""How a categorical field's several values are joined in the data, as in the service."""

Mask = NDArray[np.bool_]

ParameterKind = Literal["strings", "number"]


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
  | (?P<number>-?[0-9]+(?:\.[0-9]+)?(?![A-Za-z_]))
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

FieldDataset = Literal["Items", "Interactions", "CurrentUser"]


@dataclass(frozen=True)
class Field:
    """``Dataset.NAME`` as written; ``dataset`` is normalised to its canonical spelling."""

    dataset: FieldDataset
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


@dataclass(frozen=True)
class CurrentItemRef:
    """``CurrentItem.NAME``: the request item's own value of an Items field."""

    name: str
    position: int


Value: TypeAlias = Literal_ | Param | CurrentItemRef


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
Atom: TypeAlias = Membership | Comparison


@dataclass(frozen=True)
class Part:
    """``INCLUDE|EXCLUDE ItemID WHERE condition [IF CurrentUser...]``."""

    action: Literal["INCLUDE", "EXCLUDE"]
    condition: Condition
    when: Atom | None = None


@dataclass(frozen=True)
class FilterExpression:
    """A parsed expression: one or more parts joined by ``|``."""

    text: str
    parts: tuple[Part, ...]


def atoms(cond: Condition) -> Iterator[Atom]:
    """Every comparison or membership test in ``cond``, left to right."""
    if isinstance(cond, BoolOp):
        for sub in cond.operands:
            yield from atoms(sub)
    else:
        yield cond


def _values(atom: Atom) -> tuple[Value, ...]:
    return atom.values if isinstance(atom, Membership) else (atom.value,)


_WHERE_DATASETS: dict[str, FieldDataset] = {"items": "Items", "interactions": "Interactions"}


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

    def is_punct(self, punct: str) -> bool:
        return self.tok.kind == "punct" and self.tok.value == punct

    def expect_word(self, word: str) -> Token:
        if not self.is_word(word):
            raise FilterSyntaxError(f"expected {word}, found {self._describe()}", self.tok.position)
        return self.advance()

    def expect_punct(self, punct: str) -> Token:
        if not self.is_punct(punct):
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
        while self.is_punct("|"):
            self.advance()
            parts.append(self.part())
        if not self.at_end():
            raise FilterSyntaxError(f"unexpected {self._describe()}", self.tok.position)
        return FilterExpression(self.text, tuple(parts))

    def part(self) -> Part:
        if self.is_word("IF"):
            raise FilterSyntaxError(
                "IF goes at the end of a clause, after its WHERE condition", self.tok.position
            )
        if not self.is_word("INCLUDE", "EXCLUDE"):
            raise FilterSyntaxError(
                f"expected INCLUDE or EXCLUDE, found {self._describe()}", self.tok.position
            )
        action: Literal["INCLUDE", "EXCLUDE"] = (
            "INCLUDE" if self.advance().value.upper() == "INCLUDE" else "EXCLUDE"
        )
        self.expect_word("ITEMID")
        self.expect_word("WHERE")
        condition = self.or_expr()
        _check_one_dataset(condition)
        when: Atom | None = None
        if self.is_word("IF"):
            self.advance()
            when = self.atom(user=True)
            if self.is_word("AND", "OR", "IF"):
                raise FilterSyntaxError(
                    "a clause takes a single IF CurrentUser condition", self.tok.position
                )
        return Part(action, condition, when)

    def or_expr(self) -> Condition:
        operands = [self.and_expr()]
        while self.is_word("OR"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("OR", tuple(operands))

    def and_expr(self) -> Condition:
        operands: list[Condition] = [self.primary()]
        while self.is_word("AND"):
            self.advance()
            operands.append(self.primary())
        return operands[0] if len(operands) == 1 else BoolOp("AND", tuple(operands))

    def primary(self) -> Condition:
        if self.is_punct("("):
            self.advance()
            inner = self.or_expr()
            self.expect_punct(")")
            return inner
        return self.atom(user=False)

    def atom(self, *, user: bool) -> Atom:
        fld = self.user_field() if user else self.field()
        if self.is_word("NOT", "IN"):
            negated = self.advance().value.upper() == "NOT"
            if negated:
                self.expect_word("IN")
            self.expect_punct("(")
            values = [self.value()]
            while self.is_punct(","):
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

    def _dotted(self) -> tuple[Token, Token]:
        tok = self.tok
        if tok.kind != "word":
            raise FilterSyntaxError(f"expected a field, found {self._describe()}", tok.position)
        self.advance()
        self.expect_punct(".")
        name = self.tok
        if name.kind != "word":
            raise FilterSyntaxError(
                f"expected a field name, found {self._describe()}", name.position
            )
        self.advance()
        return tok, name

    def field(self) -> Field:
        tok = self.tok
        dataset = tok.value.lower() if tok.kind == "word" else ""
        # Say why the name is wrong here rather than "expected Items": these are real
        # dataset names, just not usable on the left of a WHERE condition.
        if dataset == "currentitem":
            raise FilterSyntaxError(
                "CurrentItem can only be a value, as in Items.F IN (CurrentItem.F)", tok.position
            )
        if dataset in ("currentuser", "users"):
            raise FilterSyntaxError(
                "Users fields can only be used in an IF CurrentUser condition at the end "
                "of a clause",
                tok.position,
            )
        if tok.kind == "word" and dataset not in _WHERE_DATASETS:
            raise FilterSyntaxError(
                f"expected Items or Interactions, found {tok.value!r}", tok.position
            )
        ds, name = self._dotted()
        return Field(_WHERE_DATASETS[ds.value.lower()], name.value.upper(), ds.position)

    def user_field(self) -> Field:
        tok = self.tok
        if not self.is_word("CURRENTUSER"):
            raise FilterSyntaxError(
                f"IF takes a CurrentUser field, found {self._describe()}", tok.position
            )
        ds, name = self._dotted()
        return Field("CurrentUser", name.value.upper(), ds.position)

    def value(self) -> Value:
        tok = self.tok
        if tok.kind == "string":
            self.advance()
            return Literal_(tok.value, False, tok.position)
        if tok.kind == "number":
            self.advance()
            return Literal_(tok.value, True, tok.position)
        if tok.kind == "param":
            self.advance()
            return Param(tok.value, tok.position)
        if self.is_word("CURRENTITEM"):
            _, name = self._dotted()
            return CurrentItemRef(name.value.upper(), tok.position)
        raise FilterSyntaxError(f"expected a value, found {self._describe()}", tok.position)


def _check_one_dataset(cond: Condition) -> None:
    # The service rejects AND/OR across datasets; clauses on different datasets are
    # joined with "|" instead, whose combination rules are well defined.
    first: Field | None = None
    for atom in atoms(cond):
        if first is None:
            first = atom.field
        elif atom.field.dataset != first.dataset:
            raise FilterSyntaxError(
                f"AND/OR cannot combine {first.dataset} and {atom.field.dataset} conditions; "
                "join separate clauses with |",
                atom.field.position,
            )


def parse_filter(text: str) -> FilterExpression:
    """Parse an expression; raises FilterSyntaxError with the offending position."""
    return _Parser(text).parse()


def filter_parameters(expression: str) -> dict[str, str]:
    """Each ``$PARAM`` of ``expression`` (name without ``$``) mapped to its value kind.

    ``"strings"``: used in an ``IN (...)`` list (categorical fields, EVENT_TYPE), so
    ``filterValues`` may carry several quoted values. ``"number"``: used with a
    comparison operator, so exactly one number. Names keep first-use order. Raises
    FilterSyntaxError for an invalid expression or a name used both ways.
    """
    kinds: dict[str, str] = {}
    for part in parse_filter(expression).parts:
        found = list(atoms(part.condition))
        if part.when is not None:
            found.append(part.when)
        for atom in found:
            kind = "strings" if isinstance(atom, Membership) else "number"
            for v in _values(atom):
                if not isinstance(v, Param):
                    continue
                if kinds.setdefault(v.name, kind) != kind:
                    raise FilterSyntaxError(
                        f"${v.name} is used both as a list of values and as a number",
                        v.position,
                    )
    return kinds


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
    """What a request contributes to evaluation.

    ``user`` indexes the Interactions users, ``user_row`` the Users dataset and
    ``item_row`` the Items dataset (the request's itemId); ``values`` are the parsed
    filterValues; ``history``, when given, is the user's history with real-time events.
    """

    user: int | None
    user_row: int | None
    item_row: int | None
    values: Mapping[str, list[str]]
    history: UserHistory | None = None


_Evaluator = Callable[[EvalContext], Mask | None]
_Predicate = Callable[[EvalContext], bool | None]
_Getter = Callable[[EvalContext], list[str] | None]

# Any: the same operators compare whole arrays (items) and single floats (the user).
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class _Categorical:
    """A categorical column seen as sets of ``|``-separated values, for any-of matching.

    Built here rather than in data.py so the dataset containers stay format-agnostic;
    work is per vocabulary entry, so matching stays one vectorised lookup per request.
    """

    def __init__(self, column: Column) -> None:
        assert column.codes is not None
        self.codes = column.codes
        self.tokens_of_code = tuple(
            frozenset(v.split(MULTI_VALUE_SEPARATOR)) for v in column.vocabulary
        )
        by_token: dict[str, list[int]] = {}
        for code, tokens in enumerate(self.tokens_of_code):
            for token in tokens:
                by_token.setdefault(token, []).append(code)
        self.codes_of_token = {t: np.asarray(c, dtype=np.int64) for t, c in by_token.items()}

    def mask(self, wanted: list[str]) -> Mask:
        # One spare slot keeps any out-of-vocabulary code (-1) unmatched.
        hit = np.zeros(len(self.tokens_of_code) + 1, dtype=bool)
        for w in wanted:
            codes = self.codes_of_token.get(w)
            if codes is not None:
                hit[codes] = True
        result: Mask = hit[self.codes]
        return result

    def tokens(self, row: int) -> frozenset[str]:
        code = int(self.codes[row])
        return self.tokens_of_code[code] if 0 <= code < len(self.tokens_of_code) else frozenset()


class CompiledFilter:
    """A filter bound to a dataset; ``allowed()`` gives the item mask for one request."""

    def __init__(self, arn: str, expression: str, dataset: Dataset) -> None:
        self.arn = arn
        self.expression = parse_filter(expression)
        self.kinds = filter_parameters(expression)
        self._dataset = dataset
        self._n_items = len(dataset.items)
        self._categoricals: dict[tuple[str, str], _Categorical] = {}
        self.uses_current_item = False
        self.parameters: dict[str, Literal["INCLUDE", "EXCLUDE"]] = {}
        self._parts: list[tuple[Literal["INCLUDE", "EXCLUDE"], _Predicate | None, _Evaluator]] = []
        for part in self.expression.parts:
            params: set[str] = set()
            evaluator = self._bind(part.condition, params)
            predicate = None if part.when is None else self._bind_user(part.when, params)
            for p in params:
                # A name used by any INCLUDE part is required.
                if self.parameters.get(p) != "INCLUDE":
                    self.parameters[p] = part.action
            self._parts.append((part.action, predicate, evaluator))

    def allowed(
        self,
        user: int | None,
        filter_values: Mapping[str, str],
        *,
        user_id: str | None = None,
        item_id: str | None = None,
        history: UserHistory | None = None,
    ) -> Mask:
        """Boolean mask over the Items table of the items this filter lets through.

        ``user`` indexes the Interactions users; ``user_id`` (derived from ``user``
        when omitted) finds the Users row for IF conditions; ``item_id`` is the
        related-items request's item, which CurrentItem refers to; ``history``
        (real-time events merged in) replaces the user's Interactions rows.
        """
        values = {k: parse_filter_value(k, v) for k, v in filter_values.items()}
        missing = sorted(
            p for p, action in self.parameters.items() if action == "INCLUDE" and p not in values
        )
        if missing:
            raise InvalidInputException(
                f"Filter {self.arn} requires filterValues for: {', '.join(missing)}"
            )
        if self.uses_current_item and item_id is None:
            raise InvalidInputException(
                f"Filter {self.arn} uses CurrentItem, which needs an itemId: use it with "
                "related-items recommendations"
            )
        inter = self._dataset.interactions
        if user_id is None and user is not None:
            user_id = inter.user_ids[user]
        ctx = EvalContext(
            user,
            None if user_id is None else self._dataset.users.index.get(user_id),
            None if item_id is None else self._dataset.items.index.get(item_id),
            values,
            history,
        )
        include: Mask | None = None
        exclude: Mask | None = None
        for action, predicate, evaluator in self._parts:
            # False (condition fails) and None (its EXCLUDE parameter is missing) both
            # mean the clause does not apply to this request.
            if predicate is not None and not predicate(ctx):
                continue
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
        params.update(v.name for v in _values(cond) if isinstance(v, Param))
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

    def _categorical(self, table: str, column: Column) -> _Categorical:
        key = (table, column.name)
        if key not in self._categoricals:
            self._categoricals[key] = _Categorical(column)
        return self._categoricals[key]

    def _item_column(self, name: str, position: int) -> Column:
        column = self._dataset.items.columns.get(name)
        if column is None:
            raise FilterSyntaxError(f"unknown Items field {name}", position)
        if column.kind == "text":
            raise FilterSyntaxError(f"textual field {name} cannot be used in filters", position)
        return column

    def _getter(self, value: Value) -> _Getter:
        if isinstance(value, Literal_):
            fixed = [value.value]
            return lambda ctx: fixed
        if isinstance(value, Param):
            name = value.name
            return lambda ctx: ctx.values.get(name)
        self.uses_current_item = True
        column = self._item_column(value.name, value.position)
        if column.codes is not None:
            cat = self._categorical("Items", column)
            return lambda ctx: [] if ctx.item_row is None else sorted(cat.tokens(ctx.item_row))
        numbers = column.numbers
        assert numbers is not None
        return lambda ctx: [] if ctx.item_row is None else [repr(float(numbers[ctx.item_row]))]

    def _resolver(self, values: tuple[Value, ...]) -> _Getter:
        getters = [self._getter(v) for v in values]

        def resolve(ctx: EvalContext) -> list[str] | None:
            out: list[str] = []
            for get in getters:
                got = get(ctx)
                if got is None:
                    return None
                out.extend(got)
            return out

        return resolve

    def _bind_interactions(self, cond: Atom) -> _Evaluator:
        if cond.field.name != "EVENT_TYPE" or not isinstance(cond, Membership) or cond.negated:
            raise FilterSyntaxError(
                "only Interactions.EVENT_TYPE IN (...) is supported", cond.field.position
            )
        for v in cond.values:
            if isinstance(v, CurrentItemRef):
                raise FilterSyntaxError(
                    "CurrentItem cannot be compared with Interactions fields", v.position
                )
        resolve = self._resolver(cond.values)
        inter = self._dataset.interactions
        dataset_codes: dict[str, list[int]] = {}
        for i, e in enumerate(inter.event_types):
            dataset_codes.setdefault(e.lower(), []).append(i)
        n_items = self._n_items

        def run(ctx: EvalContext) -> Mask | None:
            wanted = resolve(ctx)
            if wanted is None:
                return None
            mask = np.zeros(n_items, dtype=bool)
            lowered = {w.lower() for w in wanted}
            history = ctx.history
            items: NDArray[np.integer[Any]]
            events: NDArray[np.integer[Any]]
            if history is not None:
                items, events = history.items, history.events
                type_codes = {name: [code] for name, code in history.type_code.items()}
            elif ctx.user is not None:
                rows = inter.history(ctx.user)
                items, events = inter.item[rows], inter.event[rows]
                type_codes = dataset_codes
            else:
                return mask
            codes = [
                code
                for name, group in type_codes.items()
                if "*" in lowered or name in lowered
                for code in group
            ]
            for code in codes:
                # Items the Items table lacks (-1) still count among the latest 100.
                latest = items[events == code][-INTERACTION_LOOKBACK:]
                mask[latest[latest >= 0]] = True
            return mask

        return run

    def _bind_items(self, cond: Atom) -> _Evaluator:
        column = self._item_column(cond.field.name, cond.field.position)
        if column.codes is not None:
            cat = self._categorical("Items", column)
            values, negated = _as_membership(cond)
            resolve = self._resolver(values)

            def run_categorical(ctx: EvalContext) -> Mask | None:
                wanted = resolve(ctx)
                if wanted is None:
                    return None
                mask = cat.mask(wanted)
                return ~mask if negated else mask

            return run_categorical
        numbers = column.numbers
        assert numbers is not None
        if isinstance(cond, Comparison):
            return self._bind_comparison(cond, numbers)
        resolve = self._resolver(cond.values)
        name = cond.field.name

        def run_numeric(ctx: EvalContext) -> Mask | None:
            wanted = resolve(ctx)
            if wanted is None:
                return None
            mask = np.isin(numbers, [_number(name, w) for w in wanted])
            return ~mask if cond.negated else mask

        return run_numeric

    def _bind_comparison(self, cond: Comparison, numbers: NDArray[np.float64]) -> _Evaluator:
        compare = _COMPARE[cond.op]
        value = cond.value
        if isinstance(value, CurrentItemRef):
            self.uses_current_item = True
            ref = self._item_column(value.name, value.position).numbers
            if ref is None:
                raise FilterSyntaxError(f"CurrentItem.{value.name} is not numeric", value.position)
            n_items = self._n_items

            def run_current(ctx: EvalContext) -> Mask | None:
                if ctx.item_row is None:
                    return np.zeros(n_items, dtype=bool)
                return np.asarray(compare(numbers, float(ref[ctx.item_row])), dtype=bool)

            return run_current
        number = self._number_of(cond.field.name, value, cond.op)

        def run(ctx: EvalContext) -> Mask | None:
            threshold = number(ctx)
            if threshold is None:
                return None
            return np.asarray(compare(numbers, threshold), dtype=bool)

        return run

    @staticmethod
    def _number_of(
        field: str, value: Literal_ | Param, op: str
    ) -> Callable[[EvalContext], float | None]:
        if isinstance(value, Literal_):
            try:
                fixed = float(value.value)
            except ValueError:
                raise FilterSyntaxError(
                    f"{field} must be compared with a number", value.position
                ) from None
            return lambda ctx: fixed
        name = value.name

        def get(ctx: EvalContext) -> float | None:
            if name not in ctx.values:
                return None
            given = ctx.values[name]
            if len(given) != 1:
                raise InvalidInputException(
                    f"filterValues {name} must hold exactly one number for {op}"
                )
            return _number(name, given[0])

        return get

    def _bind_user(self, cond: Atom, params: set[str]) -> _Predicate:
        params.update(v.name for v in _values(cond) if isinstance(v, Param))
        for v in _values(cond):
            if isinstance(v, CurrentItemRef):
                raise FilterSyntaxError("CurrentItem cannot be used in an IF condition", v.position)
        column = self._dataset.users.columns.get(cond.field.name)
        if column is None:
            raise FilterSyntaxError(f"unknown Users field {cond.field.name}", cond.field.position)
        if column.kind == "text":
            raise FilterSyntaxError(
                f"textual field {cond.field.name} cannot be used in filters", cond.field.position
            )
        if column.codes is not None:
            cat = self._categorical("Users", column)
            values, negated = _as_membership(cond)
            resolve = self._resolver(values)

            def categorical(ctx: EvalContext) -> bool | None:
                wanted = resolve(ctx)
                if wanted is None:
                    return None
                if ctx.user_row is None:
                    return False
                return bool(cat.tokens(ctx.user_row) & set(wanted)) != negated

            return categorical
        numbers = column.numbers
        assert numbers is not None
        if isinstance(cond, Comparison):
            assert not isinstance(cond.value, CurrentItemRef)
            compare = _COMPARE[cond.op]
            number = self._number_of(cond.field.name, cond.value, cond.op)

            def numeric(ctx: EvalContext) -> bool | None:
                threshold = number(ctx)
                if threshold is None:
                    return None
                if ctx.user_row is None:
                    return False
                return bool(compare(float(numbers[ctx.user_row]), threshold))

            return numeric
        resolve = self._resolver(cond.values)
        name, negated = cond.field.name, cond.negated

        def numeric_in(ctx: EvalContext) -> bool | None:
            wanted = resolve(ctx)
            if wanted is None:
                return None
            if ctx.user_row is None:
                return False
            hit = float(numbers[ctx.user_row]) in {_number(name, w) for w in wanted}
            return hit != negated

        return numeric_in


def _as_membership(cond: Atom) -> tuple[tuple[Value, ...], bool]:
    """A test on a categorical field as (values, negated): ``= "x"`` is ``IN ("x")``."""
    if isinstance(cond, Membership):
        return cond.values, cond.negated
    # Only a single literal (or CurrentItem) makes sense for = / != on a category;
    # a $PARAM there would be typed as a number by filter_parameters, so require IN.
    if (
        cond.op not in ("=", "!=")
        or isinstance(cond.value, Param)
        or (isinstance(cond.value, Literal_) and cond.value.is_number)
    ):
        raise FilterSyntaxError(
            f'{cond.field.name} is categorical: use IN (...) or = "value"', cond.field.position
        )
    return (cond.value,), cond.op == "!="


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputException(f"Filter value for {name} must be a number: {text!r}") from None
    if not np.isfinite(value):
        raise InvalidInputException(f"Filter value for {name} must be a finite number")
    return value
