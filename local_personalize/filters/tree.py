"""The syntax tree of a parsed filter expression.

Plain frozen dataclasses and two readers of conditions, so the parser builds trees and
the evaluator reads them without either depending on the other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TypeAlias

FieldDataset = Literal["Items", "Interactions", "CurrentUser"]


@dataclass(frozen=True)
class Field:
    """``Dataset.NAME`` as written; ``dataset`` is normalised to its canonical spelling."""

    dataset: FieldDataset
    name: str
    position: int


@dataclass(frozen=True)
class LiteralValue:
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


Value: TypeAlias = LiteralValue | Param | CurrentItemRef


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


def atom_values(atom: Atom) -> tuple[Value, ...]:
    """The values an atom tests against: a membership's list, a comparison's one value."""
    return atom.values if isinstance(atom, Membership) else (atom.value,)
