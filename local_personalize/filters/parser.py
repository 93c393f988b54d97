"""Personalize's filter expressions parsed into the syntax tree (``tree``).

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

Beyond the grammar the parser rejects what the service rejects whatever the data: AND /
OR across datasets (clauses on different datasets are joined with ``|`` instead) and
``$PARAM`` with NOT IN. Which fields exist, and their types, depend on the data and are
checked when a filter is bound to it (``evaluation``).
"""

from __future__ import annotations

from typing import Literal

from .syntax import FilterSyntaxError, Token, tokenize
from .tree import (
    Atom,
    BoolOp,
    Comparison,
    Condition,
    CurrentItemRef,
    Field,
    FieldDataset,
    FilterExpression,
    LiteralValue,
    Membership,
    Param,
    Part,
    Value,
    atoms,
)

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
            return LiteralValue(tok.value, False, tok.position)
        if tok.kind == "number":
            self.advance()
            return LiteralValue(tok.value, True, tok.position)
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
