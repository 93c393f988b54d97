"""Fields whose arguments are only known at start-up (use-case enums, filter inputs).

Strawberry reads a resolver's arguments from its signature, so a generic resolver gets
a signature built from configuration; the resolvers themselves stay plain functions.

`install_direct_resolvers` then lets graphql-core call those functions itself. Per call,
Strawberry's wrapper builds its Info, converts the arguments, chains the (absent) field
extensions and awaits the result through two more coroutines: about 15 µs per field,
the largest share of a page's GraphQL work once answers are at hand. The direct
resolver converts the arguments with Strawberry's own `convert_arguments`, and only
once per field node when they are all literals (the same document, the same values;
kept while the node lives, see `schema.node_memo`).
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLResolveInfo, Node, VariableNode
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from schema.node_memo import NodeMemo


@dataclass(frozen=True)
class Arg:
    """One GraphQL argument: Python name, type annotation, default and description."""

    name: str
    annotation: Any
    default: Any = inspect.Parameter.empty
    description: str | None = None


Resolver = Callable[..., Awaitable[Any]]


def resolver_field(
    impl: Resolver,
    *,
    name: str,
    args: list[Arg],
    returns: Any,
    description: str,
    requires: list[str] | None = None,
) -> Any:
    """A Strawberry field calling `impl(root, info, **arguments)` with the given arguments."""

    async def resolver(root: Any, info: strawberry.Info, **kwargs: Any) -> Any:
        return await impl(root, info, **kwargs)

    parameters = [
        inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter(
            "info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=strawberry.Info
        ),
    ]
    for arg in args:
        # The GraphQL name is given, not derived: Strawberry would otherwise camel-case
        # every argument name again on every call (a fifth of a warm batch's CPU).
        annotation = arg.annotation
        annotation = Annotated[
            annotation,
            strawberry.argument(description=arg.description, name=to_camel_case(arg.name)),
        ]
        parameters.append(
            inspect.Parameter(
                arg.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=arg.default
            )
        )
    resolver.__signature__ = inspect.Signature(parameters, return_annotation=returns)  # type: ignore[attr-defined]
    resolver.__annotations__ = {p.name: p.annotation for p in parameters[1:]} | {"return": returns}
    resolver.__name__ = resolver.__qualname__ = name
    resolver.subgraph_impl = impl  # type: ignore[attr-defined]
    if requires:
        return strawberry.federation.field(
            resolver=resolver, description=description, requires=requires
        )
    return strawberry.field(resolver=resolver, description=description)


# Converted literal arguments kept per field (by field node) of each direct resolver.
LITERAL_ARGUMENTS_MAX = 1024


def has_variables(node: Node) -> bool:
    if isinstance(node, VariableNode):
        return True
    for key in node.keys:
        value = getattr(node, key, None)
        values = value if isinstance(value, tuple | list) else (value,)
        if any(isinstance(v, Node) and has_variables(v) for v in values):
            return True
    return False


def _direct(impl: Resolver, field: StrawberryField, schema: Any) -> Callable[..., Any]:
    arguments = field.arguments
    registry = schema.schema_converter.scalar_registry
    config = schema.config
    # Per field node whose arguments are all literals, while that node lives.
    literal: NodeMemo[dict[str, Any]] = NodeMemo(LITERAL_ARGUMENTS_MAX)

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Awaitable[Any]:
        nodes = info.field_nodes[:1]
        found = literal.get(None, nodes)
        if found is not None:
            converted = found[0]
        else:
            converted = convert_arguments(
                kwargs, arguments, scalar_registry=registry, config=config
            )
            if not any(has_variables(argument.value) for argument in nodes[0].arguments or ()):
                literal.put(None, nodes, converted)
        return impl(source, info, **converted)

    return resolve


def install_direct_resolvers(schema: Any) -> int:
    """Let graphql-core call every `resolver_field` of `schema` directly; returns how many.

    A field with Strawberry field extensions or permissions keeps Strawberry's wrapper,
    and so does every field of a schema with exception handlers (which Strawberry applies
    in its wrapper). The resolvers read only `info.context`, which graphql-core's info
    has as well; no input type here builds itself from `info` (`from_input`).
    """
    installed = 0
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for graphql_field in graphql_type.fields.values():
            found = plain_impl(schema, graphql_field)
            if found is not None:
                graphql_field.resolve = _direct(*found, schema)
                installed += 1
    return installed


def plain_impl(schema: Any, graphql_field: GraphQLField) -> tuple[Resolver, StrawberryField] | None:
    """The `resolver_field` implementation behind `graphql_field` and its Strawberry field,
    when nothing of Strawberry's (field extensions, permissions, exception handlers)
    has to run around it; else None."""
    if getattr(schema.schema_converter, "exception_handlers", ()):
        return None
    definition = (graphql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or definition.base_resolver is None:
        return None
    impl = getattr(definition.base_resolver.wrapped_func, "subgraph_impl", None)
    if impl is None or definition.extensions or definition.permission_classes:
        return None
    return impl, definition
