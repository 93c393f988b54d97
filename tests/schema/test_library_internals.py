"""One test per access to a name outside Strawberry's or graphql-core's documented API.

Every such access lives in `schema/strawberry_internals.py` or
`schema/graphql_core_internals.py`. When an upgrade moves one, the test of that access
fails and its message names it, so the upgrade knows what to change and where.
"""

import gc
from typing import Any

import pytest
import strawberry
from graphql import (
    FieldNode,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
)
from graphql.execution.collect_fields import collect_fields
from graphql.execution.values import VariableValues, get_variable_values
from strawberry.extensions import FieldExtension
from strawberry.federation import Schema
from strawberry.types.field import StrawberryField

from schema import graphql_core_internals as core
from schema import strawberry_internals as internals
from schema.build import build_schema
from schema.compiled.lists import ItemListsExecutionContext
from settings import load_settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _named(access: str) -> str:
    return f"library internal moved or changed: {access}"


@strawberry.type
class Query:
    @strawberry.field
    def hello(self, name: str = "you") -> str:
        return f"hello {name}"

    plain: str = "plain"


class _Noop(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs)


@strawberry.type
class Oops:
    message: str


class _Handler:
    exception_type = ValueError
    error_type = Oops

    def handle(self, exception: ValueError, *, field: Any, info: Any) -> Oops:
        return Oops(message=str(exception))


def _field(schema: Schema, type_name: str, field_name: str) -> Any:
    graphql = internals.graphql_schema(schema)
    found = graphql.type_map[type_name]
    assert isinstance(found, GraphQLObjectType)
    return found.fields[field_name]


def test_strawberry_schema_private_schema() -> None:
    schema = Schema(query=Query)
    assert isinstance(internals.graphql_schema(schema), GraphQLSchema), _named(
        "strawberry Schema._schema"
    )


def test_strawberry_definition_backref() -> None:
    schema = Schema(query=Query)
    definition = internals.strawberry_field(_field(schema, "Query", "hello"))
    assert isinstance(definition, StrawberryField), _named(
        "GraphQLCoreConverter.DEFINITION_BACKREF in a graphql-core field's extensions"
    )
    assert definition.python_name == "hello", _named("DEFINITION_BACKREF")


def test_strawberry_base_resolver_wrapped_func() -> None:
    schema = Schema(query=Query)
    definition = internals.strawberry_field(_field(schema, "Query", "hello"))
    assert definition is not None
    function = internals.resolver_function(definition)
    assert function is not None, _named("StrawberryField.base_resolver.wrapped_func")
    assert function.__name__ == "hello", _named("StrawberryField.base_resolver.wrapped_func")
    plain = internals.strawberry_field(_field(schema, "Query", "plain"))
    assert plain is not None
    assert internals.resolver_function(plain) is None, _named("StrawberryField.base_resolver")


def test_strawberry_field_extensions_and_exception_handlers() -> None:
    @strawberry.type(name="Query")
    class Guarded:
        @strawberry.field(extensions=[_Noop()])  # type: ignore[untyped-decorator]
        def guarded(self) -> str:
            return "x"

        @strawberry.field
        def open(self) -> str:
            return "y"

    schema = Schema(query=Guarded)
    guarded = internals.strawberry_field(_field(schema, "Query", "guarded"))
    opened = internals.strawberry_field(_field(schema, "Query", "open"))
    assert guarded is not None
    assert opened is not None
    assert internals.runs_strawberry_wrapper(schema, guarded), _named("StrawberryField.extensions")
    assert not internals.runs_strawberry_wrapper(schema, opened), _named(
        "StrawberryField.extensions / permission_classes"
    )
    handled = Schema(query=Guarded, exception_handlers=[_Handler()])
    opened_handled = internals.strawberry_field(_field(handled, "Query", "open"))
    assert opened_handled is not None
    assert internals.runs_strawberry_wrapper(handled, opened_handled), _named(
        "Schema.schema_converter.exception_handlers"
    )


def test_strawberry_convert_arguments_with_scalar_registry() -> None:
    schema = Schema(query=Query)
    definition = internals.strawberry_field(_field(schema, "Query", "hello"))
    assert definition is not None
    convert = internals.argument_converter(schema)
    assert convert({"name": "Ada"}, definition.arguments) == {"name": "Ada"}, _named(
        "strawberry.types.arguments.convert_arguments with schema_converter.scalar_registry"
    )


def test_strawberry_execution_context_base() -> None:
    from graphql.execution import Executor

    assert issubclass(internals.ExecutionContextBase, Executor), _named(
        "strawberry.schema.schema.StrawberryGraphQLCoreExecutionContext"
    )


def _context(query: str) -> tuple[ItemListsExecutionContext, OperationDefinitionNode]:
    schema = build_schema(load_settings())
    graphql = internals.graphql_schema(schema)
    document = parse(query)
    built = ItemListsExecutionContext.build(graphql, document)
    assert isinstance(built, ItemListsExecutionContext), built
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return built, operation


def test_graphql_core_complete_list_value_and_async_helpers() -> None:
    base = internals.ExecutionContextBase
    assert callable(getattr(base, "complete_list_value", None)), _named(
        "ExecutionContext.complete_list_value"
    )
    context, _ = _context("{ __typename }")
    assert hasattr(context, "async_helpers"), _named("ExecutionContext.async_helpers")
    assert callable(context.async_helpers.gather), _named("GraphQLResolveInfoHelpers.gather")


def test_graphql_core_fragments() -> None:
    context, _ = _context("query { ...F } fragment F on Query { __typename }")
    fragment = context.fragment_definition("F")
    assert fragment is not None, _named("ExecutionContext.fragments[name].definition")
    assert fragment.name.value == "F", _named("ExecutionContext.fragments[name].definition")
    assert context.fragment_definition("G") is None


def test_graphql_core_collect_subfields_and_field_details() -> None:
    query = """{ popularItems(numResults: 1) { items { itemId s: score } } }"""
    context, operation = _context(query)
    graphql = context.schema
    query_type = graphql.query_type
    assert query_type is not None
    variables = get_variable_values(graphql, (), {})
    assert isinstance(variables, VariableValues)
    collected = collect_fields(graphql, context.fragments, variables, query_type, operation)
    details = collected.grouped_field_set["popularItems"]
    nodes = core.detail_nodes(details)
    assert [type(n) for n in nodes] == [FieldNode], _named("FieldDetails.node")
    assert not core.depends_on_variables(details), _named(
        "FieldDetails.defer_usage / fragment_variable_values"
    )
    recommendations = graphql.type_map["Recommendations"]
    assert isinstance(recommendations, GraphQLObjectType)
    below = context.plain_subfields(recommendations, details)
    access = "ExecutionContext.collect_subfields -> grouped_field_set / new_defer_usages"
    assert below is not None, _named(access)
    assert [(k, n) for k, n, _ in below] == [("items", "items")], _named(access)


def test_unlink_tokens_leaves_no_token_cycle() -> None:
    access = "graphql.language.ast.Token.prev/next (the lexer's doubly linked tokens)"
    document = parse("{ a }\n# a comment the token copies\n")
    assert document.loc is not None
    second = document.loc.start_token.next
    assert second is not None, _named(access)
    assert second.prev is document.loc.start_token, _named(access)
    core.unlink_tokens(document)
    token: Any = document.loc.start_token
    count = 0
    while token is not None:
        assert token.prev is None, _named(access)
        token, count = token.next, count + 1
    assert count == 6, _named(access)  # <SOF> { a } <comment> <EOF>
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        del document, second
        gc.collect()
        left = [o for o in gc.garbage if type(o).__name__ == "Token"]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    # Freed by reference counting: nothing for the cyclic collector.
    assert not left, _named(access)
