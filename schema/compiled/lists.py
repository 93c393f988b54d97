"""The list shortcut: graphql-core's executor, with `[PredictedItem!]!` lists built whole.

graphql-core completes each field of each list entry on its own; a 50-user by 25-item
batch is some 5,000 `PredictedItem` fields. For a selection that `schema.compiled.items`
can express, the list is built by one generated comprehension instead. A selection
without directives (no @skip, @include or @defer, in fragments too) collects the same
fields whatever the variables, so its builder is kept across operations by the identity
of its field nodes (`schema.compiled.node_memo`), which belong to the document cache's
parsed document. Anything else takes graphql-core's completion, which stays the
definition of the results.
"""

from dataclasses import dataclass, field
from typing import Any, Final

from graphql import (
    FragmentSpreadNode,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    SelectionSetNode,
)

from schema.compiled.items import (
    COMPILED_EXPRESSION_MAX,
    ItemNames,
    ItemsBuilder,
    items_builder,
    predicted_expression,
)
from schema.compiled.node_memo import NodeMemo
from schema.graphql_core_internals import (
    FieldDetailsList,
    ListShortcutExecutionContext,
    depends_on_variables,
    detail_nodes,
)

# Builders kept across operations, per schema (see ItemLists.shared).
SHARED_BUILDERS_MAX = 1024
# Where a schema keeps its ItemLists: graphql-core's `GraphQLSchema.extensions`, the
# one place an execution context can reach that belongs to its schema.
_EXTENSION_KEY: Final = "personalize_subgraph.item_lists"


@dataclass(frozen=True)
class ItemLists:
    """What the list shortcut needs to know of one schema, and the builders it keeps."""

    names: ItemNames
    predicted_type: str = "PredictedItem"
    # Builders of directive-free selections, by their field nodes (kept while those
    # nodes live, that is while their document is cached or in use).
    shared: NodeMemo[ItemsBuilder | None] = field(
        default_factory=lambda: NodeMemo(SHARED_BUILDERS_MAX)
    )

    def install(self, schema: GraphQLSchema) -> None:
        """Make these the lists of every operation `ItemListsExecutionContext` runs on
        `schema`."""
        schema.extensions = {**(schema.extensions or {}), _EXTENSION_KEY: self}


class ItemListsExecutionContext(ListShortcutExecutionContext):
    """Strawberry's execution context, with `[PredictedItem!]!` lists built whole.

    A schema without installed `ItemLists` runs as plain graphql-core.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        found = (self.schema.extensions or {}).get(_EXTENSION_KEY)
        self._lists: ItemLists | None = found if isinstance(found, ItemLists) else None
        # Builders for this operation, by the identity of the list's field details (the
        # same object for every entity of an `_entities` batch); the value keeps the key
        # object alive so its id cannot be reused meanwhile.
        self._builders: dict[int, tuple[FieldDetailsList, ItemsBuilder | None]] = {}

    def list_shortcut(
        self, item_type: GraphQLOutputType, details: FieldDetailsList, result: Any
    ) -> ItemsBuilder | None:
        lists = self._lists
        if (
            lists is not None
            and isinstance(item_type, GraphQLNonNull)
            and isinstance(item_type.of_type, GraphQLObjectType)
            and item_type.of_type.name == lists.predicted_type
            and isinstance(result, tuple | list)
        ):
            return self._builder(lists, item_type.of_type, details)
        return None

    def _builder(
        self, lists: ItemLists, predicted: GraphQLObjectType, details: FieldDetailsList
    ) -> ItemsBuilder | None:
        cached = self._builders.get(id(details))
        if cached is not None and cached[0] is details:
            return cached[1]
        nodes = detail_nodes(details)
        shared = lists.shared.get(predicted.name, nodes)
        if shared is not None:
            build = shared[0]
        else:
            expression = predicted_expression(lists.names, predicted, details, self.plain_subfields)
            build = None if expression is None else items_builder(expression)
            # A builder of very long aliases is not kept past its operation (items.py).
            short = expression is None or len(expression) <= COMPILED_EXPRESSION_MAX
            if short and self._variable_free(details):
                lists.shared.put(predicted.name, nodes, build)
        self._builders[id(details)] = (details, build)
        return build

    def _variable_free(self, details: FieldDetailsList) -> bool:
        """Whether collecting these fields' subfields cannot depend on variable values."""
        if depends_on_variables(details):
            return False
        return all(self._no_directives(node.selection_set, set()) for node in detail_nodes(details))

    def _no_directives(self, selections: SelectionSetNode | None, seen: set[str]) -> bool:
        if selections is None:
            return True
        for selection in selections.selections:
            if selection.directives:
                return False
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragment_definition(name)
                if fragment is None:
                    return False
                if name in seen:
                    continue
                seen.add(name)
                if fragment.directives or fragment.variable_definitions:
                    return False
                if not self._no_directives(fragment.selection_set, seen):
                    return False
            elif not self._no_directives(selection.selection_set, seen):  # type: ignore[attr-defined]
                return False
        return True
