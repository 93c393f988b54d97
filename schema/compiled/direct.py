"""Direct resolvers: graphql-core calls a field's plain function, not Strawberry's wrapper.

Per call, Strawberry's wrapper builds its Info, converts the arguments, chains the
(absent) field extensions and awaits the result through two more coroutines; once
answers are at hand that is the largest share of a page's GraphQL work. A direct
resolver converts the arguments with Strawberry's own conversion, and only once per
field node when they are all literals (the same document, the same values; kept while
the node lives, see `schema.compiled.node_memo`).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo, Node, VariableNode
from strawberry.federation.schema import Schema
from strawberry.types.arguments import StrawberryArgument

from schema.compiled.node_memo import NodeMemo
from schema.fields import FieldFunction, ResolverFields
from schema.strawberry_internals import (
    ArgumentConverter,
    argument_converter,
    graphql_schema,
    resolver_function,
    runs_strawberry_wrapper,
    strawberry_field,
)

# Converted literal arguments kept per field (by field node) of each direct resolver.
LITERAL_ARGUMENTS_MAX = 1024


@dataclass(frozen=True, slots=True)
class PlainField:
    """A field whose plain function may be called without Strawberry's wrapper."""

    function: FieldFunction
    arguments: list[StrawberryArgument]


def plain_field(
    schema: Schema, fields: ResolverFields, graphql_field: GraphQLField
) -> PlainField | None:
    """The plain function and arguments behind `graphql_field`, when `fields` made it and
    nothing of Strawberry's (field extensions, permissions, exception handlers) has to
    run around it; else None."""
    definition = strawberry_field(graphql_field)
    if definition is None or runs_strawberry_wrapper(schema, definition):
        return None
    function = fields.function(resolver_function(definition))
    if function is None:
        return None
    return PlainField(function, definition.arguments)


def has_variables(node: Node) -> bool:
    """Whether a variable appears anywhere under `node`."""
    if isinstance(node, VariableNode):
        return True
    for key in node.keys:
        value = getattr(node, key, None)
        values = value if isinstance(value, tuple | list) else (value,)
        if any(isinstance(v, Node) and has_variables(v) for v in values):
            return True
    return False


def _direct(field: PlainField, convert: ArgumentConverter) -> Callable[..., Awaitable[Any]]:
    function, arguments = field.function, field.arguments
    # Per field node whose arguments are all literals, while that node lives.
    literal: NodeMemo[dict[str, Any]] = NodeMemo(LITERAL_ARGUMENTS_MAX)

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Awaitable[Any]:
        nodes = info.field_nodes[:1]
        found = literal.get(None, nodes)
        if found is not None:
            converted = found[0]
        else:
            converted = convert(kwargs, arguments)
            if not any(has_variables(argument.value) for argument in nodes[0].arguments or ()):
                literal.put(None, nodes, converted)
        return function(source, info, **converted)

    return resolve


def install_direct_resolvers(schema: Schema, fields: ResolverFields) -> int:
    """Let graphql-core call every plain field of `schema` directly; returns how many.

    The functions read only `info.context` (and a cart its `info.path`, whose `as_list`
    both infos have), which graphql-core's info has as well; no
    input type here builds itself from `info` (`from_input`).
    """
    installed = 0
    convert = argument_converter(schema)
    for graphql_type in graphql_schema(schema).type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for graphql_field in graphql_type.fields.values():
            found = plain_field(schema, fields, graphql_field)
            if found is not None:
                graphql_field.resolve = _direct(found, convert)
                installed += 1
    return installed
