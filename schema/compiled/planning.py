"""Compiling an operation of a cached document, once, into what running it needs.

An operation compiles when it is a query without directives whose root fields are
`_entities(representations: ...)` and Query's own Personalize fields. Under `_entities`:
`__typename` and inline fragments on our entity types, holding `__typename`, the key
and the Personalize fields. Each Personalize field selects what
`schema.compiled.rendering` can show. No named fragments, directives or repeated
response keys. Anything else is Declined: graphql-core answers it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
)
from graphql.execution.values import VariableValues, get_argument_values
from strawberry.types.arguments import StrawberryArgument

from resolvers.recommendations import PersonalizeResolver, RequestBuilder
from schema.compiled.direct import PlainField, has_variables
from schema.compiled.items import ItemNames
from schema.compiled.rendering import Render, recommendations_renderer
from schema.compiled.selections import TYPENAME, Declined, plain_fields, response_key, selected
from schema.strawberry_internals import ArgumentConverter

# Arguments whose fields the compiled path leaves to graphql-core.
_DECLINED = frozenset({"after", "experiment", "sessionId"})

# The plain function and arguments behind a field, when it may be called directly.
FieldLookup = Callable[[GraphQLField], PlainField | None]


@dataclass(frozen=True, slots=True)
class PersonalizeCall:
    """A Personalize field (of an entity, or of Query): how to build its request and
    show its answer."""

    key: str
    node: FieldNode
    definition: GraphQLField
    arguments: list[StrawberryArgument]
    build: RequestBuilder
    # The converted arguments, when the node's are all literals; else per operation.
    literal: dict[str, Any] | None
    render: Render


@dataclass(frozen=True, slots=True)
class EntityPart:
    """One response key of an entity: a call, the entity's key field, or `__typename`."""

    key: str
    call: PersonalizeCall | None = None
    # The key field's name (GraphQL and Python alike), when the part shows the key.
    key_field: str | None = None


@dataclass(frozen=True, slots=True)
class EntitiesRoot:
    """The `_entities` root field and, per entity type, its parts in response order."""

    key: str
    node: FieldNode
    definition: GraphQLField
    parts: dict[str, list[EntityPart]]


@dataclass(frozen=True, slots=True)
class CompiledOperation:
    """One operation of a cached document, ready to run any number of times."""

    name: str | None
    operation: OperationDefinitionNode
    # The root fields in order: `_entities`, or Query's own Personalize fields.
    roots: list[EntitiesRoot | PersonalizeCall]


def convert_arguments(
    convert: ArgumentConverter,
    definition: GraphQLField,
    node: FieldNode,
    arguments: list[StrawberryArgument],
    variables: VariableValues | None,
) -> dict[str, Any]:
    """A field's arguments read by graphql-core and converted by Strawberry."""
    return convert(get_argument_values(definition, node, variables), arguments)


class Planner:
    """Compiles the operations of one schema."""

    def __init__(
        self,
        graphql: GraphQLSchema,
        lookup: FieldLookup,
        convert: ArgumentConverter,
        names: ItemNames,
        keys: dict[str, str],
    ) -> None:
        """`keys`: each entity type's key field (GraphQL and Python name alike)."""
        self._graphql = graphql
        self._lookup = lookup
        self._convert = convert
        self._names = names
        self._keys = keys

    def compile(
        self, operation: OperationDefinitionNode, operation_name: str | None
    ) -> CompiledOperation:
        """The operation compiled; Declined if graphql-core must answer it."""
        if operation.operation is not OperationType.QUERY or operation.directives:
            raise Declined
        query_type = self._graphql.query_type
        if query_type is None:
            raise Declined
        roots: list[EntitiesRoot | PersonalizeCall] = []
        for key, name, node in selected(operation.selection_set):
            definition = query_type.fields.get(name)
            if definition is None:
                raise Declined
            if name == "_entities":
                roots.append(self._entities_root(key, node, definition))
            else:
                roots.append(self._call(key, node, definition))
        return CompiledOperation(
            name=operation_name or (operation.name.value if operation.name else None),
            operation=operation,
            roots=roots,
        )

    def _entities_root(self, key: str, node: FieldNode, definition: GraphQLField) -> EntitiesRoot:
        if node.selection_set is None:
            raise Declined
        by_type: dict[str, list[tuple[str, FieldNode]]] = {name: [] for name in self._keys}
        for selection in node.selection_set.selections:
            if selection.directives:
                raise Declined
            if isinstance(selection, FieldNode):
                if selection.name.value != TYPENAME or selection.arguments:
                    raise Declined
                for listed in by_type.values():
                    listed.append((response_key(selection), selection))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                targets = (
                    list(by_type)
                    if condition is None
                    else [condition.name.value]
                    if condition.name.value in by_type
                    else None
                )
                if targets is None:
                    raise Declined
                for field in plain_fields(selection.selection_set):
                    for target in targets:
                        by_type[target].append((response_key(field), field))
            else:
                raise Declined
        parts = {}
        for name, chosen in by_type.items():
            entity = self._graphql.type_map[name]
            if not isinstance(entity, GraphQLObjectType):
                raise Declined
            parts[name] = self._entity_parts(entity, chosen)
        return EntitiesRoot(key=key, node=node, definition=definition, parts=parts)

    def _entity_parts(
        self, entity: GraphQLObjectType, chosen: list[tuple[str, FieldNode]]
    ) -> list[EntityPart]:
        keys = [key for key, _ in chosen]
        if len(set(keys)) != len(keys):
            raise Declined  # merged fields: graphql-core's
        parts: list[EntityPart] = []
        for key, node in chosen:
            name = node.name.value
            definition = entity.fields.get(name)
            if name == TYPENAME:
                parts.append(EntityPart(key))
            elif definition is None:
                raise Declined
            elif name == self._keys[entity.name]:
                if node.arguments or node.selection_set is not None:
                    raise Declined
                parts.append(EntityPart(key, key_field=name))
            else:
                parts.append(EntityPart(key, call=self._call(key, node, definition)))
        return parts

    def _call(self, key: str, node: FieldNode, definition: GraphQLField) -> PersonalizeCall:
        found = self._lookup(definition)
        if found is None or node.selection_set is None:
            raise Declined
        function, arguments = found.function, found.arguments
        if not isinstance(function, PersonalizeResolver):
            raise Declined
        if any(argument.name.value in _DECLINED for argument in node.arguments or ()):
            # A later page of a scroll (resolvers.scroll), or an experiment's variant
            # (resolvers.experiments, `sessionId` only matters to one): graphql-core's
            raise Declined
        literal = None
        if not any(has_variables(argument.value) for argument in node.arguments or ()):
            try:
                literal = convert_arguments(self._convert, definition, node, arguments, None)
            except Exception:
                # Converted again per operation, like variables: a refusal (or a bug)
                # then surfaces in that operation's answer.
                literal = None
        returns = definition.type
        if not isinstance(returns, GraphQLObjectType):
            raise Declined  # Personalize fields are nullable objects
        return PersonalizeCall(
            key=key,
            node=node,
            definition=definition,
            arguments=arguments,
            build=function.build,
            literal=literal,
            render=recommendations_renderer(self._names, returns, node.selection_set),
        )
