"""Filter parameters: what each ``$PARAM`` of an expression takes, and how a request's
``filterValues`` carry it.

The two sides of one contract: ``filter_parameters`` tells callers the kind of value each
placeholder needs, ``parse_filter_value`` splits what a request sends for it.
"""

from __future__ import annotations

from typing import Literal

from ..errors import InvalidInputException
from .parser import parse_filter
from .syntax import FilterSyntaxError
from .tree import Membership, Param, atom_values, atoms

ParameterKind = Literal["strings", "number"]


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
            for v in atom_values(atom):
                if not isinstance(v, Param):
                    continue
                if kinds.setdefault(v.name, kind) != kind:
                    raise FilterSyntaxError(
                        f"${v.name} is used both as a list of values and as a number",
                        v.position,
                    )
    return kinds


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
