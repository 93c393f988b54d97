"""The compiled path's front door: an operation of a cached document, answered without
graphql-core's executor, or None (graphql-core answers it)."""

import functools
import logging
from typing import Any, Protocol

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLField,
    OperationType,
    get_operation_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import AddValidationRules, MaxTokensLimiter
from strawberry.federation.schema import Schema

from domain.errors import ConfigurationError, SubgraphError
from domain.request import RecommendationRequest
from resolvers.context import Context
from schema.compiled.direct import PlainField, plain_field
from schema.compiled.documents import DocumentCache, DocumentStore, compiled_cost
from schema.compiled.items import ItemNames
from schema.compiled.planning import (
    CompiledOperation,
    EntitiesRoot,
    PersonalizeCall,
    Planner,
    convert_arguments,
)
from schema.compiled.running import FieldCall, ReadyEntity, ReadyRoot, run
from schema.compiled.selections import Declined
from schema.error_codes import ErrorCodes
from schema.fields import ResolverFields
from schema.operation_info import OperationInfo
from schema.strawberry_internals import argument_converter, graphql_schema

log = logging.getLogger(__name__)


# The schema extensions whose work the compiled path does itself, or need not do
# (the package's docstring says why for each); no other is allowed beside it.
KNOWN_EXTENSIONS: tuple[type, ...] = (
    ErrorCodes,
    MaxTokensLimiter,
    AddValidationRules,
    DocumentCache,
    OperationInfo,
)


class EntitySchema(Protocol):
    """What the compiled path uses of the subgraph's schema beyond Strawberry's."""

    def entities_resolver(self, info: Any, representations: list[Any]) -> list[Any]: ...

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None: ...


def extension_class(extension: Any) -> Any:
    """The class behind a schema extension given as a class or a `functools.partial`."""
    return extension.func if isinstance(extension, functools.partial) else extension


class CompiledPath:
    """Compiled operations of one schema, kept with their cached documents."""

    def __init__(
        self,
        schema: Schema,
        fields: ResolverFields,
        documents: DocumentStore,
        names: ItemNames,
        keys: dict[str, str],
    ) -> None:
        """`keys`: each entity type's key field (GraphQL and Python name alike).

        An extension of `schema` that is not in KNOWN_EXTENSIONS stops start-up: it would
        silently be skipped for compiled operations.
        """
        unknown = [
            extension_class(e)
            for e in schema.extensions
            if extension_class(e) not in KNOWN_EXTENSIONS
        ]
        if unknown:
            names_ = ", ".join(getattr(e, "__name__", repr(e)) for e in unknown)
            raise ConfigurationError(
                f"the compiled path does not know the schema extension(s) {names_}: "
                "teach schema/compiled what they do, or set server.compiled_path = false"
            )
        self._schema: EntitySchema = schema
        graphql = graphql_schema(schema)
        self._graphql = graphql
        self._documents = documents
        self._convert = argument_converter(schema)

        def lookup(field: GraphQLField) -> PlainField | None:
            return plain_field(schema, fields, field)

        self._planner = Planner(graphql, lookup, self._convert, names, keys)

    def operation_for(self, query: str, operation_name: str | None) -> CompiledOperation | None:
        """That operation compiled, when its document is cached, valid and compilable."""
        entry = self._documents.get(query)
        # errors is [] once the document has been validated without any.
        if entry is None or entry.errors is None or entry.errors:
            return None
        compiled = entry.compiled
        if operation_name not in compiled:
            operation = get_operation_ast(entry.document, operation_name)
            if operation is None:
                # No such operation: nothing is kept, so a client cannot grow the entry
                # with names; graphql-core answers with its error.
                return None
            try:
                compiled[operation_name] = self._planner.compile(operation, operation_name)
            except Declined:
                compiled[operation_name] = None
            except Exception:
                log.exception(
                    "could not compile operation %r; graphql-core answers it", operation_name
                )
                compiled[operation_name] = None
            self._documents.charge(query, entry, compiled_cost(query))
        found: CompiledOperation | None = compiled[operation_name]
        return found

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
    ) -> ExecutionResult | None:
        """The result, or None: graphql-core answers instead. Like `OperationInfo` on the
        general path, tells `context.on_operation` the operation's name and type."""
        operation = self.operation_for(query, operation_name)
        if operation is None:
            return None
        try:
            roots = self._ready(operation, variables or {}, context)
        except Declined:
            return None
        if _spend_order_differs(roots, context.loaders.recommendations.calls_left):
            return None
        if context.on_operation is not None:
            context.on_operation(operation.name, OperationType.QUERY.value)
        return await run(roots, context, self._schema.process_errors)

    def _ready(
        self, operation: CompiledOperation, variables: dict[str, Any], context: Context
    ) -> list[ReadyRoot]:
        """Each root field with its request, or with its entities and theirs, in order."""
        coerced = get_variable_values(
            self._graphql, operation.operation.variable_definitions or (), variables
        )
        if not isinstance(coerced, VariableValues):
            raise Declined
        ready: list[ReadyRoot] = []
        for root in operation.roots:
            if isinstance(root, PersonalizeCall):
                ready.append(
                    ReadyRoot(root.key, call=self._field_call(root, None, context, coerced))
                )
            else:
                ready.append(ReadyRoot(root.key, entities=self._entities(root, context, coerced)))
        return ready

    def _entities(
        self, root: EntitiesRoot, context: Context, coerced: VariableValues
    ) -> list[ReadyEntity]:
        try:
            args = get_argument_values(root.definition, root.node, coerced)
        except GraphQLError:
            raise Declined from None
        representations = args.get("representations")
        if not isinstance(representations, list):
            raise Declined
        entities = self._schema.entities_resolver(None, representations)
        found = []
        for representation, entity in zip(representations, entities, strict=True):
            if isinstance(entity, BaseException):
                raise Declined
            typename = representation["__typename"]
            parts = root.parts[typename]
            calls = [
                self._field_call(part.call, entity, context, coerced)
                for part in parts
                if part.call is not None
            ]
            found.append(ReadyEntity(typename, parts, entity, calls))
        return found

    def _field_call(
        self, call: PersonalizeCall, source: Any, context: Context, coerced: VariableValues
    ) -> FieldCall:
        """The field's request. A refused argument declines the operation (nothing has
        been called: graphql-core's error is the definition); a bug in the request builder
        becomes this field's error, logged and masked as graphql-core's path would."""
        try:
            converted = call.literal
            if converted is None:
                converted = convert_arguments(
                    self._convert, call.definition, call.node, call.arguments, coerced
                )
            return FieldCall(call, request=call.build(source, context.settings, converted))
        except (GraphQLError, SubgraphError):
            raise Declined from None
        except Exception as exc:
            return FieldCall(call, failure=exc)


def _spend_order_differs(roots: list[ReadyRoot], calls_left: int) -> bool:
    """Whether the call budget could refuse other fields here than graphql-core refuses.

    Over budget, the fields refused are the last to spend. The compiled path spends in
    field order; graphql-core does too within one root field, but completes a list of
    several entities after the root fields that follow it. Such operations are left to
    graphql-core, whose order is the definition.
    """
    requests: set[RecommendationRequest] = set()
    rooted = 0
    several = False
    for root in roots:
        built = {c.request for c in root.calls() if c.request is not None}
        requests |= built
        rooted += bool(built)
        several = several or sum(1 for e in root.entities if e.calls) > 1
    return len(requests) > calls_left and rooted > 1 and several
