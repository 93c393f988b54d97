"""Every use of Strawberry beyond its documented API, in one place.

Strawberry is pinned exactly; an upgrade that moves one of these names breaks the test
of that access in `tests/schema/test_library_internals.py`, which names it. Nothing else
in the project imports from Strawberry's modules below `strawberry.schema` or
`strawberry.types`, nor reads an underscored attribute of a Strawberry object.
"""

from collections.abc import Callable
from typing import Any

from graphql import GraphQLField, GraphQLSchema
from strawberry.federation.schema import Schema as FederationSchema
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import StrawberryArgument, convert_arguments
from strawberry.types.field import StrawberryField

# The execution context Strawberry gives graphql-core; subclassed by the list fast path.
ExecutionContextBase = StrawberryGraphQLCoreExecutionContext

# Converts graphql-core's argument values (a dict by Python name) into the resolver's.
ArgumentConverter = Callable[[dict[str, Any], list[StrawberryArgument]], dict[str, Any]]


def graphql_schema(schema: FederationSchema) -> GraphQLSchema:
    """The graphql-core schema Strawberry built (`Schema._schema`)."""
    built: GraphQLSchema = schema._schema
    return built


def strawberry_field(field: GraphQLField) -> StrawberryField | None:
    """The Strawberry field behind a graphql-core field (its DEFINITION_BACKREF), if any."""
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    return definition if isinstance(definition, StrawberryField) else None


def resolver_function(field: StrawberryField) -> Callable[..., Any] | None:
    """The function a field was declared with (`base_resolver.wrapped_func`), if any."""
    if field.base_resolver is None:
        return None
    function = field.base_resolver.wrapped_func
    return function if callable(function) else None


def runs_strawberry_wrapper(schema: FederationSchema, field: StrawberryField) -> bool:
    """Whether something of Strawberry's must run around the field's resolver: field
    extensions, permissions, or the schema's exception handlers (applied in its wrapper)."""
    if getattr(schema.schema_converter, "exception_handlers", ()):
        return True
    return bool(field.extensions or field.permission_classes)


def argument_converter(schema: FederationSchema) -> ArgumentConverter:
    """Strawberry's own conversion of argument values (`convert_arguments`) for `schema`:
    input types, enums and scalars as the field's resolver would receive them."""
    registry = schema.schema_converter.scalar_registry
    config = schema.config

    def convert(values: dict[str, Any], arguments: list[StrawberryArgument]) -> dict[str, Any]:
        converted: dict[str, Any] = convert_arguments(
            values, arguments, scalar_registry=registry, config=config
        )
        return converted

    return convert
