"""A faster executor for the bulk of every answer: the lists of recommended items.

graphql-core completes each field of each list entry on its own (about 3 µs a field);
a 50-user by 25-item batch is some 5,000 `PredictedItem` fields. Nothing under
`PredictedItem` can fail or suspend — its fields read a `ResultItem` and the entity
reference is built from the item id — so for a selection made only of those fields
the whole list is built by one generated list comprehension, compiled once per
distinct selection. A selection without directives (no @skip, @include or @defer, in
fragments too) collects the same fields whatever the variables, so its plan is kept
across operations by the identity of its field nodes (`schema.node_memo`), which
belong to the document cache's parsed document. Anything else
(another field, `@defer`, a type we do not know) takes graphql-core's path, which
stays the definition of the results: tests compare both paths on the same queries.
"""

import functools
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from graphql import (
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
    SelectionSetNode,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from domain.result import ResultItem
from schema.node_memo import NodeMemo

# Builds the whole list of one field's answer.
Build = Callable[[Sequence[ResultItem]], list[dict[str, Any]]]

# Plans kept across operations, per schema (see SubgraphExecutionContext.shared_plans).
SHARED_PLANS_MAX = 1024

# Python expressions over `i`, a ResultItem, for each leaf of PredictedItem.
_LEAVES: dict[str, str] = {
    "itemId": "i.item_id",
    # GraphQL's Float serialises integers as floats; JSON scores may arrive as ints.
    "score": "(None if i.score is None else float(i.score))",
    "promotionName": "i.promotion_name",
    "reasons": "list(i.reasons)",
}


def _alive(context: "weakref.ref[SubgraphExecutionContext]") -> "SubgraphExecutionContext":
    found = context()
    if found is None:
        raise RuntimeError("the operation that owned these execution helpers has ended")
    return found


class SubgraphExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with `[PredictedItem!]!` lists built from plans.

    Class attributes are set by `schema.build` for the schema at hand: the names of the
    PredictedItem, MetadataEntry and item entity types, and the item's key field.
    """

    predicted_type_name = "PredictedItem"
    metadata_type_name = "MetadataEntry"
    item_type_name = "Item"
    item_key = "id"
    # Set per schema by `schema.build`: plans of directive-free selections, by their
    # field nodes (kept while those nodes live, that is while their document is cached
    # or in use).
    shared_plans: ClassVar[NodeMemo[Build | None]] = NodeMemo(SHARED_PLANS_MAX)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core keeps bound methods of the context in `async_helpers`, on the
        # context: a reference cycle, which left each operation's whole object graph
        # (context, loaders, answers: some 300 objects) to the cyclic GC instead of
        # reference counting. Its collections cost about a sixth of the CPU under load
        # and were the longest pauses. The same helpers, through a weak reference:
        # resolvers call them only while the operation runs, and the context with it.
        context = weakref.ref(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: _alive(context).gather_async_work(values),
            track=lambda values: _alive(context).track_async_work(values),
        )
        # Plans for this operation, by the identity of the list's field details (the
        # same object for every entity of an `_entities` batch); the value keeps the
        # key object alive so its id cannot be reused meanwhile.
        self._plans: dict[int, tuple[FieldDetailsList, Build | None]] = {}

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        item_type = return_type.of_type
        if (
            isinstance(item_type, GraphQLNonNull)
            and isinstance(item_type.of_type, GraphQLObjectType)
            and item_type.of_type.name == self.predicted_type_name
            and isinstance(result, tuple | list)
        ):
            build = self._plan(item_type.of_type, field_details_list)
            if build is not None:
                return build(result)
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plan(self, predicted: GraphQLObjectType, details: FieldDetailsList) -> Build | None:
        cached = self._plans.get(id(details))
        if cached is not None and cached[0] is details:
            return cached[1]
        nodes = [d.node for d in details]
        shared = self.shared_plans.get(predicted.name, nodes)
        if shared is not None:
            build = shared[0]
        else:
            expression = self._predicted(predicted, details)
            build = None if expression is None else compile_items(expression)
            if self._variable_free(details):
                self.shared_plans.put(predicted.name, nodes, build)
        self._plans[id(details)] = (details, build)
        return build

    def _variable_free(self, details: FieldDetailsList) -> bool:
        """Whether collecting these fields' subfields cannot depend on variable values."""
        if any(d.defer_usage is not None or d.fragment_variable_values for d in details):
            return False
        return all(self._no_directives(d.node.selection_set, set()) for d in details)

    def _no_directives(self, selections: SelectionSetNode | None, seen: set[str]) -> bool:
        if selections is None:
            return True
        for selection in selections.selections:
            if selection.directives:
                return False
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None:
                    return False
                if name in seen:
                    continue
                seen.add(name)
                if fragment.definition.directives or fragment.definition.variable_definitions:
                    return False
                if not self._no_directives(fragment.definition.selection_set, seen):
                    return False
            elif not self._no_directives(selection.selection_set, seen):  # type: ignore[attr-defined]
                return False
        return True

    def _fields(
        self, parent: GraphQLObjectType, details: FieldDetailsList
    ) -> list[tuple[str, str, FieldDetailsList]] | None:
        """(response key, field name, details) of a selection, or None if it needs the
        general path (deferred fields, arguments)."""
        collected = self.collect_subfields(parent, details)
        if collected.new_defer_usages:
            return None
        fields = []
        for key, field_details in collected.grouped_field_set.items():
            if any(d.defer_usage is not None for d in field_details):
                return None
            node = field_details[0].node
            if node.arguments:
                return None
            fields.append((key, node.name.value, field_details))
        return fields

    def _predicted(self, predicted: GraphQLObjectType, details: FieldDetailsList) -> str | None:
        names = ItemNames(self.metadata_type_name, self.item_type_name, self.item_key)
        return predicted_expression(names, predicted, details, self._fields)


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


@functools.lru_cache(maxsize=256)
def compile_items(expression: str) -> Build:
    """One list comprehension per distinct selection, shared by every operation."""
    source = f"lambda items: [{expression} for i in items]"
    # The generated code may use only what it is given: no builtins beyond these two.
    names = {"__builtins__": {}, "float": float, "list": list}
    build: Build = eval(compile(source, "<predicted-items>", "eval"), names)
    return build
