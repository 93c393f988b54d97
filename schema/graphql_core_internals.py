"""Every use of graphql-core beyond its documented API, in one place.

graphql-core is pinned exactly; an upgrade that moves one of these breaks the test of
that access in `tests/schema/test_library_internals.py`, which names it. The list fast
path (`schema.compiled.lists`) reaches graphql-core's executor only through this module:
one overridden method (`complete_list_value`), the executor's async helpers, and its
field collection (`collect_subfields`, field details, fragments).
"""

import weakref
from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLList,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLResolveInfoHelpers,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path

from schema.strawberry_internals import ExecutionContextBase

# Builds a whole list value at once (see `ListShortcutExecutionContext.list_shortcut`).
ListBuilder = Callable[[Any], list[Any]]

__all__ = ["FieldDetailsList", "ListShortcutExecutionContext"]


def _alive(
    context: "weakref.ref[ListShortcutExecutionContext]",
) -> "ListShortcutExecutionContext":
    found = context()
    if found is None:
        raise RuntimeError("the operation that owned these execution helpers has ended")
    return found


class ListShortcutExecutionContext(ExecutionContextBase):
    """Strawberry's execution context, with a seam for building whole lists at once.

    `complete_list_value` asks `list_shortcut` first; a builder it returns makes the list
    value instead of graphql-core completing each entry. Subclasses supply the shortcut.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core keeps bound methods of the context in `async_helpers`, on the
        # context: a reference cycle, which left each operation's whole object graph
        # (context, loaders, answers) to the cyclic collector instead of reference
        # counting, whose collections were the longest pauses under load. The same
        # helpers through a weak reference: resolvers call them only while the operation
        # runs, and the context with it.
        context = weakref.ref(self)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=lambda values: _alive(context).gather_async_work(values),
            track=lambda values: _alive(context).track_async_work(values),
        )

    def list_shortcut(
        self, item_type: GraphQLOutputType, details: FieldDetailsList, result: Any
    ) -> ListBuilder | None:
        """A builder of the whole list for this field and value, or None (graphql-core's)."""
        return None

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        build = self.list_shortcut(return_type.of_type, field_details_list, result)
        if build is not None:
            return build(result)
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def fragment_definition(self, name: str) -> FragmentDefinitionNode | None:
        """The operation's fragment of that name, if the document defines it."""
        fragment = self.fragments.get(name)
        return None if fragment is None else fragment.definition

    def plain_subfields(
        self, parent: GraphQLObjectType, details: FieldDetailsList
    ) -> list[tuple[str, str, FieldDetailsList]] | None:
        """(response key, field name, details) of the fields selected under `details` on
        `parent`, as graphql-core collects them; None when one is deferred or takes
        arguments (those need graphql-core's own completion)."""
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


def detail_nodes(details: FieldDetailsList) -> list[FieldNode]:
    """The field nodes of a list of field details."""
    return [d.node for d in details]


def depends_on_variables(details: Sequence[Any]) -> bool:
    """Whether these field details are deferred or carry fragment variables (either makes
    what they collect depend on the operation's variables)."""
    return any(d.defer_usage is not None or d.fragment_variable_values for d in details)


def unlink_tokens(document: DocumentNode) -> None:
    """Make the document's token list singly linked: drop each token's `prev`.

    graphql-core's lexer links tokens both ways, a reference cycle per document: a
    document dropped by its last user goes only when the cyclic collector reaches its
    tokens, and a comment's token holds a copy of the comment's text. After start-up
    the collector's full collections are rare (server.py freezes the engine), so
    documents of large comments piled up at ~1 MB each. Nothing reads `prev` once the
    parser is done; without it the tokens go by reference counting with their document.
    """
    token = document.loc.start_token if document.loc is not None else None
    while token is not None:
        token.prev = None
        token = token.next
