"""Python list comprehensions that build a whole `[PredictedItem!]!` answer at once.

Nothing under `PredictedItem` can fail or suspend: its fields read a `ResultItem`, and
the entity reference is built from the item id. So for a selection made only of those
fields, the list is one generated comprehension, compiled once per distinct selection
and shared by every operation. Both fast paths use it: the list shortcut under
graphql-core (`schema.compiled.lists`) and the compiled operations
(`schema.compiled.rendering`). A selection it cannot express yields None, and the
field is completed by graphql-core.
"""

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType

from domain.result import ResultItem

# Builds the whole list of one field's answer.
ItemsBuilder = Callable[[Sequence[ResultItem]], list[dict[str, Any]]]

# Python expressions over `i`, a ResultItem, for each leaf of PredictedItem.
_LEAVES: dict[str, str] = {
    "itemId": "i.item_id",
    # GraphQL's Float serialises integers as floats; JSON scores may arrive as ints.
    "score": "(None if i.score is None else float(i.score))",
    "promotionName": "i.promotion_name",
    "reasons": "list(i.reasons)",
}


@dataclass(frozen=True, slots=True)
class ItemNames:
    """The schema's names that a PredictedItem plan needs."""

    metadata_type: str
    item_type: str
    item_key: str


S = TypeVar("S")
# The fields of a selection `S` on a type: (response key, field name, their selection),
# or None when the selection is beyond a plan.
Fields = Callable[[GraphQLObjectType, S], list[tuple[str, str, S]] | None]


def predicted_expression(
    names: ItemNames, predicted: GraphQLObjectType, selection: S, fields: Fields[S]
) -> str | None:
    """A dict display over `i` (a ResultItem) for this selection of PredictedItem, or None."""
    found = fields(predicted, selection)
    if found is None:
        return None
    parts: list[tuple[str, str]] = []
    for key, name, below in found:
        expression: str | None
        if name == "__typename":
            expression = repr(predicted.name)
        elif name in _LEAVES:
            expression = _LEAVES[name]
        elif name == "item":
            # Item.related and anything else under the item is the general path's.
            expression = _object(
                predicted, name, names.item_type, {names.item_key: "i.item_id"}, below, fields
            )
        elif name == "metadata":
            entry = _object(
                predicted,
                name,
                names.metadata_type,
                {"key": "p[0]", "value": "p[1]"},
                below,
                fields,
            )
            expression = (
                None
                if entry is None
                else f"(None if i.metadata is None else [{entry} for p in i.metadata])"
            )
        else:
            expression = None
        if expression is None:
            return None
        parts.append((key, expression))
    return _display(parts)


def _field_type(parent: GraphQLObjectType, name: str) -> GraphQLObjectType | None:
    field_type = parent.fields[name].type
    while isinstance(field_type, GraphQLNonNull | GraphQLList):
        field_type = field_type.of_type
    return field_type if isinstance(field_type, GraphQLObjectType) else None


def _object(
    parent: GraphQLObjectType,
    field: str,
    type_name: str,
    leaves: dict[str, str],
    selection: S,
    fields: Fields[S],
) -> str | None:
    """A dict display for a selection of `parent.field` (an object type named `type_name`)
    made only of `__typename` and the given leaves (field name -> expression); else None."""
    object_type = _field_type(parent, field)
    if object_type is None or object_type.name != type_name:
        return None
    found = fields(object_type, selection)
    if found is None:
        return None
    parts: list[tuple[str, str]] = []
    for key, name, _ in found:
        if name == "__typename":
            parts.append((key, repr(object_type.name)))
        elif name in leaves:
            parts.append((key, leaves[name]))
        else:
            return None
    return _display(parts)


def _display(parts: list[tuple[str, str]]) -> str:
    # Response keys are GraphQL names (the lexer allows nothing else), quoted anyway.
    return "{" + ", ".join(f"{key!r}: {expression}" for key, expression in parts) + "}"


# Expressions kept by `compile_items`, and the longest one kept: response keys are the
# client's aliases, of any length, so what the cache holds is bounded in bytes too
# (256 x 8 KB of text, its code and its constants: a few MB). Longer ones are compiled
# for their own operation only.
COMPILED_ITEMS_MAX = 256
COMPILED_EXPRESSION_MAX = 8 * 1024


def items_builder(expression: str) -> ItemsBuilder:
    """The builder of `expression`: shared by every operation, unless it is very long."""
    if len(expression) > COMPILED_EXPRESSION_MAX:
        return _compile(expression)
    return compile_items(expression)


@functools.lru_cache(maxsize=COMPILED_ITEMS_MAX)
def compile_items(expression: str) -> ItemsBuilder:
    """One list comprehension per distinct selection, shared by every operation."""
    return _compile(expression)


def _compile(expression: str) -> ItemsBuilder:
    source = f"lambda items: [{expression} for i in items]"
    # The generated code may use only what it is given: no builtins beyond these two.
    names = {"__builtins__": {}, "float": float, "list": list}
    build: ItemsBuilder = eval(compile(source, "<predicted-items>", "eval"), names)
    return build
