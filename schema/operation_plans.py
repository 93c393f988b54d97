"""The compiled path: the operations a federation gateway sends, without graphql-core.

A gateway sends the same few operations over and over: `_entities` over a list of
representations with inline fragments on our entities, and root fields such as
`popularItems`. Through graphql-core, every field is completed on its own, every async
field is a task gathered with its siblings, and the loader waits a loop turn to batch:
a home page's four carousels took some 11 loop turns from arrival to answer. Under
load a turn waits for every other operation's ready work, so each turn cost the page
0.4 to 0.9 ms at concurrency 8 on two cores. Here the operation is planned once per
document, all its calls are started at once and the answer is built straight from
the results, in about 4 turns.

What is compiled: a query whose root fields are `_entities(representations: ...)` and
Query's own Personalize fields. Under `_entities`: `__typename` and inline fragments
on our entity types, holding `__typename`, the key and the Personalize fields. Each
Personalize field selects `__typename`, `recommendationId`, `source` and `items`,
under which a list plan covers the selection (`schema.execution.predicted_expression`).
No directives, named fragments or repeated response keys. Anything else, and any
document not yet validated clean, is graphql-core's.

What stays the same: variables are coerced and arguments read by graphql-core's own
functions and converted by Strawberry's, entities are resolved by the schema's own
`_entities` resolver and requests built by the resolvers' own builders. If any of that
fails (a bad variable, representation or argument), nothing has been called yet and
the general path answers: its errors are the definition. The calls go through the
operation's loader, a failed call through the field's fallback chain, and errors are
located as graphql-core does and coded by `schema.error_codes.coded`. Tests compare
both paths' answers, errors included.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_operation_ast,
    located_error,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.types.arguments import StrawberryArgument, convert_arguments

from domain.errors import SubgraphError
from domain.request import RecommendationRequest
from loaders.recommendations import Answer
from resolvers.context import Context
from resolvers.recommendations import (
    REQUESTS,
    RecommendationsView,
    RequestBuilder,
    answered,
    recovered,
)
from schema.document_cache import DocumentStore
from schema.error_codes import coded
from schema.execution import Build, ItemNames, compile_items, predicted_expression
from schema.fields import has_variables, plain_impl

log = logging.getLogger(__name__)

# (response key, field name, the field's node) of one selection set.
Selected = list[tuple[str, str, FieldNode]]
Render = Callable[[RecommendationsView], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Call:
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


# One response key of an entity: its `__typename`, its key field, or a call.
_Part = tuple[str, str | _Call]
_TYPENAME = "__typename"
# One entity of an operation: its type's name, its parts, its object and its requests.
_Entity = tuple[str, list[_Part], Any, list[RecommendationRequest]]


@dataclass(frozen=True, slots=True)
class _Entities:
    """The `_entities` root field and, per entity type, its response keys in order:
    each `__typename`, the key field's name or a call."""

    key: str
    node: FieldNode
    definition: GraphQLField
    parts: dict[str, list[_Part]]


@dataclass(frozen=True, slots=True)
class _Plan:
    name: str | None
    operation: OperationDefinitionNode
    # The root fields in order: `_entities`, or Query's own Personalize fields.
    roots: list[_Entities | _Call]


# One root field of an operation, ready to run: a root call's request, or the entities.
_Ready = tuple[_Entities | _Call, RecommendationRequest | list[_Entity]]


class _Calls:
    """The calls of one operation, told of each outcome as it is known (`begin`'s
    `settled`): a degradable failure starts its field's fallback at once, as the field's
    resolver would, and the operation goes on in the loop turn after its last call.

    Waiting here never cancels a call: calls are shared with other operations (the
    coalescer), so a cancelled operation leaves them running, as graphql-core's path
    does behind its shield. Fallbacks are the operation's own and are cancelled with it.
    """

    def __init__(self, context: Context, requests: list[RecommendationRequest]) -> None:
        self._context = context
        self._requests = requests
        # The slots of each called request (see `wait`).
        self._slots: dict[RecommendationRequest, list[int]] = {}
        self._begun: Sequence[Answer | asyncio.Task[Answer]] = ()
        self._pending: set[RecommendationRequest] = set()
        self._outcomes: dict[RecommendationRequest, Answer | BaseException] = {}
        self._recoveries: dict[int, asyncio.Task[RecommendationsView]] = {}
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._closed = False

    async def wait(self, begun: Sequence[Answer | asyncio.Task[Answer]]) -> None:
        """Until every started call has an outcome and every fallback has ended."""
        called = [
            (slot, request)
            for slot, (request, started) in enumerate(zip(self._requests, begun, strict=True))
            if not isinstance(started, Answer)
        ]
        self._begun = begun
        self._pending = {request for _, request in called}
        # Only fields whose answer was not stored wait for the call (and its fallback):
        # a stored answer may expire between two fields of the same key.
        self._slots = {}
        for slot, request in called:
            self._slots.setdefault(request, []).append(slot)
        self._check()
        await self._done

    def settled(self, request: RecommendationRequest, outcome: Answer | BaseException) -> None:
        if self._closed or request not in self._pending:
            return
        self._pending.discard(request)
        self._outcomes[request] = outcome
        if isinstance(outcome, SubgraphError) and outcome.degradable:
            for slot in self._slots[request]:
                recovery = asyncio.ensure_future(recovered(self._context, request, outcome))
                recovery.add_done_callback(self._recovered)
                self._recoveries[slot] = recovery
        self._check()

    def _recovered(self, recovery: "asyncio.Task[RecommendationsView]") -> None:
        if not self._closed:
            self._check()

    def _check(self) -> None:
        if self._done.done() or self._pending:
            return
        if all(recovery.done() for recovery in self._recoveries.values()):
            self._done.set_result(None)

    def close(self) -> None:
        """Stop listening; cancel the fallbacks still running (the operation ended)."""
        self._closed = True
        for recovery in self._recoveries.values():
            if not recovery.done():
                recovery.cancel()
            elif not recovery.cancelled():
                # Read, so that a failure left unread (the operation was cancelled) is
                # not reported as never retrieved.
                recovery.exception()

    def outcome(self, slot: int) -> RecommendationsView | Exception:
        """What the field at `slot` shows: its answer (stored or called), its fallback's,
        or its error."""
        started = self._begun[slot]
        if isinstance(started, Answer):
            return answered(started)
        recovery = self._recoveries.get(slot)
        if recovery is not None:
            if recovery.cancelled():
                raise asyncio.CancelledError
            failure = recovery.exception()
            if failure is None:
                return recovery.result()
            outcome: Answer | BaseException = failure
        else:
            outcome = self._outcomes[self._requests[slot]]
        if isinstance(outcome, Answer):
            return answered(outcome)
        if not isinstance(outcome, Exception):
            raise outcome  # cancelled (the app is shutting down)
        return outcome


class _Bail(Exception):
    """The general path must answer this operation (nothing has been called yet)."""


class OperationPlans:
    """Plans of one schema's gateway operations, kept with their cached documents."""

    def __init__(
        self, schema: Any, documents: DocumentStore, names: ItemNames, keys: dict[str, str]
    ) -> None:
        """`keys`: each entity type's key field (GraphQL and Python name alike)."""
        self._schema = schema
        self._keys = keys
        self._graphql = schema._schema
        self._documents = documents
        self._names = names
        self._registry = schema.schema_converter.scalar_registry
        self._config = schema.config

    def plan_for(self, query: str, operation_name: str | None) -> _Plan | None:
        """The plan of that operation, when the document is cached, valid and compilable."""
        entry = self._documents.get(query)
        # errors is [] once the document has been validated without any.
        if entry is None or entry.errors is None or entry.errors:
            return None
        plans = entry.plans
        if operation_name not in plans:
            operation = get_operation_ast(entry.document, operation_name)
            if operation is None:
                # No such operation: nothing is kept, so a client cannot grow the entry
                # with names; graphql-core answers with its error.
                return None
            try:
                plans[operation_name] = self._compile(operation, operation_name)
            except _Bail:
                plans[operation_name] = None
            except Exception:
                log.exception(
                    "could not plan operation %r; graphql-core answers it", operation_name
                )
                plans[operation_name] = None
        plan: _Plan | None = plans[operation_name]
        return plan

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        context: Context,
    ) -> tuple[ExecutionResult, str | None] | None:
        """The result and the operation's name, or None: graphql-core answers instead."""
        plan = self.plan_for(query, operation_name)
        if plan is None:
            return None
        try:
            ready = self._calls(plan, variables or {}, context)
        except _Bail:
            return None
        return await self._run(plan, ready, context), plan.name

    # --- running an operation

    def _calls(self, plan: _Plan, variables: dict[str, Any], context: Context) -> list[_Ready]:
        """Each root field with its request, or with its entities (type, parts, object and
        the requests of their calls), in order."""
        coerced = get_variable_values(
            self._graphql, plan.operation.variable_definitions or (), variables
        )
        if not isinstance(coerced, VariableValues):
            raise _Bail
        ready: list[_Ready] = []
        for root in plan.roots:
            if isinstance(root, _Call):
                ready.append((root, self._request(root, None, context, coerced)))
            else:
                ready.append((root, self._entities(root, context, coerced)))
        return ready

    def _entities(
        self, root: _Entities, context: Context, coerced: VariableValues
    ) -> list[_Entity]:
        try:
            args = get_argument_values(root.definition, root.node, coerced)
        except GraphQLError:
            raise _Bail from None
        representations = args.get("representations")
        if not isinstance(representations, list):
            raise _Bail
        entities = self._schema.entities_resolver(None, representations)
        found = []
        for representation, entity in zip(representations, entities, strict=True):
            if isinstance(entity, BaseException):
                raise _Bail
            typename = representation["__typename"]
            parts = root.parts[typename]
            requests = [
                self._request(part, entity, context, coerced)
                for _, part in parts
                if isinstance(part, _Call)
            ]
            found.append((typename, parts, entity, requests))
        return found

    def _request(
        self, call: _Call, source: Any, context: Context, coerced: VariableValues
    ) -> RecommendationRequest:
        try:
            converted = call.literal
            if converted is None:
                converted = self._convert(call.definition, call.node, call.arguments, coerced)
            return call.build(source, context.settings, converted)
        except Exception:
            raise _Bail from None

    def _convert(
        self,
        definition: GraphQLField,
        node: FieldNode,
        arguments: list[StrawberryArgument],
        variables: VariableValues | None,
    ) -> dict[str, Any]:
        """A field's arguments read by graphql-core and converted by Strawberry."""
        raw = get_argument_values(definition, node, variables)
        converted: dict[str, Any] = convert_arguments(
            raw, arguments, scalar_registry=self._registry, config=self._config
        )
        return converted

    async def _run(self, plan: _Plan, ready: list[_Ready], context: Context) -> ExecutionResult:
        requests: list[RecommendationRequest] = []
        for _, prepared in ready:
            if isinstance(prepared, RecommendationRequest):
                requests.append(prepared)
            else:
                for *_, entity_requests in prepared:
                    requests.extend(entity_requests)
        calls = _Calls(context, requests)
        begun = context.loaders.recommendations.begin(requests, calls.settled)
        try:
            await calls.wait(begun)
        finally:
            calls.close()
        return self._result(ready, [calls.outcome(slot) for slot in range(len(requests))])

    def _result(
        self, ready: list[_Ready], outcomes: Sequence[RecommendationsView | Exception]
    ) -> ExecutionResult:
        errors: list[GraphQLError] = []
        data: dict[str, Any] = {}
        next_outcome = iter(outcomes)

        def show(call: _Call, path: list[str | int]) -> dict[str, Any] | None:
            outcome = next(next_outcome)
            if not isinstance(outcome, Exception):
                try:
                    return call.render(outcome)
                except Exception as exc:  # a bug: masked and logged by `coded`, as anywhere
                    outcome = exc
            errors.append(coded(located_error(outcome, [call.node], path), executed=True))
            return None

        for root, prepared in ready:
            if isinstance(root, _Call):
                data[root.key] = show(root, [root.key])
                continue
            listed: list[dict[str, Any]] = []
            # An `_entities` root was prepared with its entities.
            entities = cast(list[_Entity], prepared)
            for index, (typename, parts, entity, _) in enumerate(entities):
                shown: dict[str, Any] = {}
                for key, part in parts:
                    if isinstance(part, _Call):
                        shown[key] = show(part, [root.key, index, key])
                    elif part == _TYPENAME:
                        shown[key] = typename
                    else:
                        shown[key] = getattr(entity, part)
                listed.append(shown)
            data[root.key] = listed
        if errors:
            self._schema.process_errors(errors)
        return ExecutionResult(data, errors or None)

    # --- planning an operation

    def _compile(self, operation: OperationDefinitionNode, operation_name: str | None) -> _Plan:
        if operation.operation is not OperationType.QUERY or operation.directives:
            raise _Bail
        query_type = self._graphql.query_type
        roots: list[_Entities | _Call] = []
        for key, name, node in _selected(operation.selection_set):
            definition = query_type.fields.get(name)
            if definition is None:
                raise _Bail
            if name == "_entities":
                roots.append(self._entities_root(key, node, definition))
            else:
                roots.append(self._call(key, node, definition))
        return _Plan(
            name=operation_name or (operation.name.value if operation.name else None),
            operation=operation,
            roots=roots,
        )

    def _entities_root(self, key: str, node: FieldNode, definition: GraphQLField) -> _Entities:
        if node.selection_set is None:
            raise _Bail
        by_type: dict[str, list[tuple[str, FieldNode]]] = {
            name: [] for name in self._schema.entity_names
        }
        for selection in node.selection_set.selections:
            if selection.directives:
                raise _Bail
            if isinstance(selection, FieldNode):
                if selection.name.value != _TYPENAME or selection.arguments:
                    raise _Bail
                for listed in by_type.values():
                    listed.append((_key(selection), selection))
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
                    raise _Bail
                for field in _plain_fields(selection.selection_set):
                    for target in targets:
                        by_type[target].append((_key(field), field))
            else:
                raise _Bail
        parts = {
            name: self._entity_parts(self._graphql.type_map[name], selected)
            for name, selected in by_type.items()
        }
        return _Entities(key=key, node=node, definition=definition, parts=parts)

    def _entity_parts(
        self, entity: GraphQLObjectType, selected: list[tuple[str, FieldNode]]
    ) -> list[_Part]:
        keys = [key for key, _ in selected]
        if len(set(keys)) != len(keys):
            raise _Bail  # merged fields: graphql-core's
        parts: list[_Part] = []
        for key, node in selected:
            name = node.name.value
            definition = entity.fields.get(name)
            if name == _TYPENAME:
                parts.append((key, _TYPENAME))
            elif definition is None:
                raise _Bail
            elif name == self._keys[entity.name]:
                if node.arguments or node.selection_set is not None:
                    raise _Bail
                parts.append((key, name))
            else:
                parts.append((key, self._call(key, node, definition)))
        return parts

    def _call(self, key: str, node: FieldNode, definition: GraphQLField) -> _Call:
        found = plain_impl(self._schema, definition)
        build = REQUESTS.get(found[0]) if found is not None else None
        if found is None or build is None or node.selection_set is None:
            raise _Bail
        arguments = found[1].arguments
        literal = None
        if not any(has_variables(argument.value) for argument in node.arguments or ()):
            try:
                literal = self._convert(definition, node, arguments, None)
            except Exception:
                literal = None  # converted (and refused) per operation, like variables
        returns = definition.type
        if not isinstance(returns, GraphQLObjectType):
            raise _Bail  # Personalize fields are nullable objects
        return _Call(
            key=key,
            node=node,
            definition=definition,
            arguments=arguments,
            build=build,
            literal=literal,
            render=self._render(returns, node.selection_set),
        )

    def _render(self, recommendations: GraphQLObjectType, selection: SelectionSetNode) -> Render:
        shown: list[tuple[str, Callable[[RecommendationsView], Any]]] = []
        for key, name, node in _selected(selection):
            if name == _TYPENAME:
                shown.append((key, _constant(recommendations.name)))
            elif name == "recommendationId" and node.selection_set is None:
                shown.append((key, _recommendation_id))
            elif name == "source" and node.selection_set is None:
                shown.append((key, _source))
            elif name == "items" and node.selection_set is not None:
                predicted = recommendations.fields["items"].type
                while not isinstance(predicted, GraphQLObjectType):
                    predicted = predicted.of_type
                below: SelectionSetNode | None = node.selection_set
                expression = predicted_expression(self._names, predicted, below, _fields_of)
                if expression is None:
                    raise _Bail
                shown.append((key, _items(compile_items(expression))))
            else:
                raise _Bail

        def render(view: RecommendationsView) -> dict[str, Any]:
            return {key: value(view) for key, value in shown}

        return render


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _plain_fields(selection: SelectionSetNode) -> list[FieldNode]:
    """The fields of a selection made only of fields without directives; else _Bail."""
    fields = []
    for node in selection.selections:
        if not isinstance(node, FieldNode) or node.directives:
            raise _Bail
        fields.append(node)
    return fields


def _selected(selection: SelectionSetNode) -> Selected:
    """(key, name, node) of a plain selection whose response keys are all distinct; else
    _Bail (a repeated key merges fields: graphql-core's)."""
    fields = [(_key(node), node.name.value, node) for node in _plain_fields(selection)]
    if len({key for key, _, _ in fields}) != len(fields):
        raise _Bail
    return fields


def _fields_of(
    parent: GraphQLObjectType, selection: SelectionSetNode | None
) -> list[tuple[str, str, SelectionSetNode | None]] | None:
    """`schema.execution.Fields` over plain selection sets, for the list plans."""
    if selection is None:
        return []
    try:
        fields = _selected(selection)
    except _Bail:
        return None
    for _, name, node in fields:
        if node.arguments or (name != _TYPENAME and name not in parent.fields):
            return None
    return [(key, name, node.selection_set) for key, name, node in fields]


def _constant(value: str) -> Callable[[RecommendationsView], str]:
    return lambda view: value


def _recommendation_id(view: RecommendationsView) -> str | None:
    return view.recommendation_id


def _source(view: RecommendationsView) -> str:
    # The enum's GraphQL name, as graphql-core serialises it.
    return view.source.name


def _items(build: Build) -> Callable[[RecommendationsView], list[dict[str, Any]]]:
    return lambda view: build(view.items)
