"""Schema assembly: configuration in, a federation schema out."""

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import AddValidationRules
from strawberry.federation import Schema
from strawberry.federation.schema import FederationAny
from strawberry.types import ExecutionContext, Info

from domain.errors import InvalidArgument
from resolvers.recommendations import (
    item_related,
    popular_items,
    user_ranked_items,
    user_recommendations,
)
from schema.document_cache import DocumentCache, DocumentStore
from schema.entities import Entities, build_entities
from schema.error_codes import ErrorCodes
from schema.events import RecordEventsResult, record_events
from schema.execution import SHARED_PLANS_MAX, ItemNames, SubgraphExecutionContext
from schema.fields import Arg, install_direct_resolvers, resolver_field
from schema.inputs import Inputs, build_inputs
from schema.limits import TokenLimit, introspection_rules, limit_rules
from schema.node_memo import NodeMemo
from schema.operation_plans import OperationPlans
from schema.types import ContextEntry
from settings import Field_, Settings

log = logging.getLogger(__name__)
UNSET: Any = strawberry.UNSET

_NUM_RESULTS = "How many items, 1..500 (at most 50 when the use case returns item metadata)."
_CONTEXT = "Contextual metadata for this request, for use cases trained with it."


def _args(inputs: Inputs, field: Field_, *, num_results: bool) -> list[Arg]:
    args: list[Arg] = []
    enum = inputs.use_case_enums[field]
    if enum is not None:
        args.append(
            Arg("use_case", enum | None, UNSET, "Which configured use case; omitted, the default.")
        )
    if num_results:
        args.append(Arg("num_results", int | None, 25, _NUM_RESULTS))
    return args


def _filtering(inputs: Inputs, *, promotion: bool) -> list[Arg]:
    args: list[Arg] = []
    if inputs.recommendation_filter is not None:
        args.append(
            Arg("filter", inputs.recommendation_filter | None, UNSET, "A configured filter.")
        )
    args.append(Arg("context", list[ContextEntry] | None, UNSET, _CONTEXT))
    if promotion and inputs.promotion is not None:
        args.append(
            Arg("promotion", inputs.promotion | None, UNSET, "Promote items from a filter.")
        )
    return args


class SubgraphSchema(Schema):
    """The federation schema, with expected errors kept quiet and representations checked.

    Client mistakes and upstream failures are expected and already coded; the unexpected
    ones are logged once, with their traceback, by ErrorCodes.
    """

    # The entity types `_entities` resolves; set once the types exist.
    entity_names: frozenset[str] = frozenset()
    # The compiled path for the operations a gateway sends; None: graphql-core only.
    operation_plans: "OperationPlans | None" = None

    # Strawberry builds the `_entities` field from this signature: keep its annotations.
    def entities_resolver(
        self, info: Info, representations: list[FederationAny]
    ) -> list[FederationAny]:
        """Strawberry's resolver, after refusing representations it would crash on.

        A representation that is not an object with the `__typename` of one of our
        entities gets a coded error at its own index instead of failing the whole list.
        """
        results: list[Any] = [None] * len(representations)
        raw: list[Any] = list(representations)
        good: list[tuple[int, dict[str, Any]]] = []
        for index, representation in enumerate(raw):
            typename = (
                representation.get("__typename") if isinstance(representation, dict) else None
            )
            if isinstance(typename, str) and typename in self.entity_names:
                # Strawberry pops `__typename` from the dict it is given: give it a copy.
                good.append((index, dict(representation)))
            else:
                names = ", ".join(sorted(self.entity_names))
                results[index] = InvalidArgument(
                    f"representations[{index}] must be an object whose __typename is one of {names}"
                )
        # Representations are `_Any` scalars: plain dicts at run time.
        chosen: list[Any] = [r for _, r in good]
        resolved = super().entities_resolver(info, chosen) if good else []
        for (index, _), result in zip(good, resolved, strict=True):
            results[index] = result
        return results  # Exceptions in place: each becomes an error at its own index.

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            log.debug("graphql error at %s: %s", error.path, error.message)


def _mutation() -> type:
    """Mutation.recordEvents, present when an event tracker is configured."""

    @strawberry.type
    class Mutation:
        record_events: RecordEventsResult = strawberry.mutation(
            resolver=record_events,
            description=(
                "Report what a user did (1..10 events) so Personalize learns from it; "
                "send the recommendationId and impression of the list acted on."
            ),
        )

    return Mutation


def build_schema(settings: Settings, *, fast_lists: bool = True) -> SubgraphSchema:
    """Generate types from configuration and assemble the federation schema.

    `fast_lists=False` leaves every field to graphql-core and Strawberry (no list plans,
    no direct resolvers, no compiled `_entities` path): the reference the fast paths are
    tested against.
    """
    inputs = build_inputs(settings)
    user_id = Arg("user_id", strawberry.ID | None, UNSET, "The user, for use cases that need one.")

    # Fields owned by other subgraphs that become Personalize context (via @requires).
    graph_fields = settings.federation.user_context_fields
    requires = [" ".join(graph_fields)] if graph_fields else None

    def user_fields(recommendations: type) -> dict[str, Any]:
        returns = recommendations | None
        return {
            "recommendations": resolver_field(
                user_recommendations,
                name="recommendations",
                args=_args(inputs, Field_.RECOMMENDATIONS, num_results=True)
                + _filtering(inputs, promotion=True),
                returns=returns,
                description="Items recommended for this user.",
                requires=requires,
            ),
            "ranked_items": resolver_field(
                user_ranked_items,
                name="ranked_items",
                args=[
                    Arg("item_ids", list[strawberry.ID], description="1..500 item ids to rank."),
                    *_args(inputs, Field_.RANKED_ITEMS, num_results=False),
                    *_filtering(inputs, promotion=False),
                ],
                returns=returns,
                description="The given items reordered for this user (unknown items last).",
                requires=requires,
            ),
        }

    def item_fields(recommendations: type) -> dict[str, Any]:
        return {
            "related": resolver_field(
                item_related,
                name="related",
                args=[
                    *_args(inputs, Field_.RELATED, num_results=True),
                    user_id,
                    *_filtering(inputs, promotion=True),
                ],
                returns=recommendations | None,
                description="Items related to this one.",
            )
        }

    entities: Entities = build_entities(settings.federation, user_fields, item_fields)

    query_cls = type("Query", (), {"__module__": __name__})
    query_cls.popular_items = resolver_field(  # type: ignore[attr-defined]
        popular_items,
        name="popular_items",
        args=[
            *_args(inputs, Field_.POPULAR_ITEMS, num_results=True),
            user_id,
            *_filtering(inputs, promotion=True),
        ],
        returns=entities.recommendations | None,
        description="Popular or trending items, optionally for a user.",
    )
    query = strawberry.type(query_cls)
    mutation = _mutation() if settings.events.tracking_id is not None else None

    # Built once: the same rule classes every time keep the validation cache's key stable.
    rules = limit_rules(settings.limits) + introspection_rules(settings.server.introspection)
    max_tokens = settings.limits.max_tokens
    documents = DocumentStore()
    execution = type(
        "SubgraphExecutionContext",
        (SubgraphExecutionContext,),
        {
            "item_type_name": settings.federation.item_type,
            "item_key": settings.federation.item_key,
            "shared_plans": NodeMemo(SHARED_PLANS_MAX),
        },
    )
    schema = SubgraphSchema(
        query=query,
        mutation=mutation,
        types=[entities.user, entities.item],
        federation_version=settings.federation.version,
        # Order matters: the rules and the token limit are set in on_operation, before
        # the document cache parses or validates anything.
        extensions=[
            ErrorCodes,
            lambda: TokenLimit(max_tokens),
            lambda: AddValidationRules(rules),
            lambda: DocumentCache(documents),
        ],
        execution_context_class=execution if fast_lists else None,
    )
    federation = settings.federation
    schema.entity_names = frozenset({federation.user_type, federation.item_type})
    if fast_lists:
        install_direct_resolvers(schema)
    if fast_lists and settings.server.compiled_plans:
        schema.operation_plans = OperationPlans(
            schema,
            documents,
            ItemNames(
                SubgraphExecutionContext.metadata_type_name,
                federation.item_type,
                federation.item_key,
            ),
            {federation.user_type: federation.user_key, federation.item_type: federation.item_key},
        )
    return schema
