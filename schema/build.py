"""Schema assembly: configuration in, a federation schema out."""

import functools
from typing import Any

import strawberry
from strawberry.extensions import AddValidationRules, MaxTokensLimiter

from resolvers.cart import MAX_SEEDS, cart_recommendations
from resolvers.recommendations import (
    item_related,
    popular_items,
    user_ranked_items,
    user_recommendations,
)
from schema.compiled import CompiledPath
from schema.compiled.direct import install_direct_resolvers
from schema.compiled.documents import DocumentCache, DocumentStore
from schema.compiled.items import ItemNames
from schema.compiled.lists import ItemLists, ItemListsExecutionContext
from schema.entities import METADATA_TYPE, Entities, build_entities
from schema.error_codes import ErrorCodes
from schema.events import RecordEventsResult, record_events
from schema.fields import Arg, ResolverFields
from schema.inputs import Inputs, build_inputs
from schema.limits import introspection_rules, limit_rules
from schema.operation_info import OperationInfo
from schema.page import PageFields
from schema.strawberry_internals import graphql_schema
from schema.subgraph_schema import SubgraphSchema
from schema.types import ContextEntry
from settings import ServedField, Settings

UNSET: Any = strawberry.UNSET

_NUM_RESULTS = "How many items, 1..500 (at most 50 when the use case returns item metadata)."
_AFTER = (
    "A previous page's pageInfo.endCursor: the next numResults items of the same list, "
    "with no new call (README: infinite scroll)."
)
_CART_ITEMS = f"The cart: 1..{MAX_SEEDS} item ids (a repeated id counts once)."
_CART = (
    "What goes with a cart: one related call per cart item, all at once, merged by "
    "reciprocal-rank fusion (score: the sum of 1 / (60 + rank) over the items' lists), "
    "without the cart's items and with no item twice; with a userId and cart.rerank "
    "configured, re-ranked for the user. A cart item whose call fails leaves the others' "
    "merge, with its error beside the data (README: a cart's recommendations)."
)
_EXPERIMENT = (
    "A configured experiment, in place of useCase: the user (or sessionId) is bucketed "
    "into one of its variants (README: Experiments)."
)
_SESSION = "An anonymous visitor's session, bucketed by `experiment` when there is no userId."
_CONTEXT = "Contextual metadata for this request, for use cases trained with it."


def _args(inputs: Inputs, field: ServedField, *, num_results: bool) -> list[Arg]:
    args: list[Arg] = []
    enum = inputs.use_case_enums[field]
    if enum is not None:
        args.append(
            Arg("use_case", enum | None, UNSET, "Which configured use case; omitted, the default.")
        )
    experiment = inputs.experiment_enums[field]
    if experiment is not None:
        args.append(Arg("experiment", experiment | None, UNSET, _EXPERIMENT))
    if num_results:
        args.append(Arg("num_results", int | None, 25, _NUM_RESULTS))
        args.append(Arg("after", str | None, UNSET, _AFTER))
    return args


def _session(inputs: Inputs, field: ServedField) -> list[Arg]:
    if inputs.experiment_enums[field] is None:
        return []
    return [Arg("session_id", strawberry.ID | None, UNSET, _SESSION)]


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


def build_schema(settings: Settings) -> SubgraphSchema:
    """Generate types from configuration and assemble the federation schema.

    With `server.compiled_path` off,
    graphql-core and Strawberry answer every field: the reference the compiled path is
    tested against.
    """
    compiled = settings.server.compiled_path
    inputs = build_inputs(settings)
    fields = ResolverFields()
    user_id = Arg("user_id", strawberry.ID | None, UNSET, "The user, for use cases that need one.")
    page = PageFields(settings, inputs, fields)

    # Fields owned by other subgraphs that become Personalize context (via @requires).
    graph_fields = settings.federation.user_context_fields
    requires = [" ".join(graph_fields)] if graph_fields else None

    def user_fields(recommendations: type) -> dict[str, Any]:
        returns = recommendations | None
        return {
            "recommendations": fields.field(
                user_recommendations,
                name="recommendations",
                args=_args(inputs, ServedField.RECOMMENDATIONS, num_results=True)
                + _filtering(inputs, promotion=True),
                returns=returns,
                description="Items recommended for this user.",
                requires=requires,
            ),
            "ranked_items": fields.field(
                user_ranked_items,
                name="ranked_items",
                args=[
                    Arg("item_ids", list[strawberry.ID], description="1..500 item ids to rank."),
                    *_args(inputs, ServedField.RANKED_ITEMS, num_results=False),
                    *_filtering(inputs, promotion=False),
                ],
                returns=returns,
                description="The given items reordered for this user (unknown items last).",
                requires=requires,
            ),
            **page.user(recommendations, requires),
        }

    def item_fields(recommendations: type) -> dict[str, Any]:
        return {
            "related": fields.field(
                item_related,
                name="related",
                args=[
                    *_args(inputs, ServedField.RELATED, num_results=True),
                    user_id,
                    *_session(inputs, ServedField.RELATED),
                    *_filtering(inputs, promotion=True),
                ],
                returns=recommendations | None,
                description="Items related to this one.",
            ),
            **page.item(recommendations),
        }

    entities: Entities = build_entities(settings.federation, user_fields, item_fields)

    query_cls = type("Query", (), {"__module__": __name__})
    query_cls.popular_items = fields.field(  # type: ignore[attr-defined]
        popular_items,
        name="popular_items",
        args=[
            *_args(inputs, ServedField.POPULAR_ITEMS, num_results=True),
            user_id,
            *_session(inputs, ServedField.POPULAR_ITEMS),
            *_filtering(inputs, promotion=True),
        ],
        returns=entities.recommendations | None,
        description="Popular or trending items, optionally for a user.",
    )
    query_cls.recommendation_page = page.query(entities.recommendations)  # type: ignore[attr-defined]
    if settings.use_cases_for(ServedField.RELATED):
        query_cls.cart_recommendations = fields.field(  # type: ignore[attr-defined]
            cart_recommendations,
            name="cart_recommendations",
            args=[
                Arg("item_ids", list[strawberry.ID], description=_CART_ITEMS),
                user_id,
                *_args(inputs, ServedField.RELATED, num_results=False),
                Arg("num_results", int | None, 25, _NUM_RESULTS),
                *_filtering(inputs, promotion=False),
            ],
            returns=entities.recommendations | None,
            description=_CART,
        )
    query = strawberry.type(query_cls)
    mutation = _mutation() if settings.events.tracking_id is not None else None

    # Built once: the same rule classes every time keep the validation cache's key stable.
    rules = limit_rules(settings.limits) + introspection_rules(settings.server.introspection)
    documents = DocumentStore(
        max_bytes=settings.memory.documents_bytes,
        max_document_bytes=settings.memory.document_max_bytes,
    )
    federation = settings.federation
    schema = SubgraphSchema(
        query=query,
        mutation=mutation,
        types=[entities.user, entities.item],
        federation_version=federation.version,
        # Order matters: the rules and the token limit are set in on_operation, before
        # the document cache parses or validates anything. Partials, not lambdas: the
        # compiled path checks that it knows every extension's class.
        extensions=[
            ErrorCodes,
            functools.partial(MaxTokensLimiter, max_token_count=settings.limits.max_tokens),
            functools.partial(AddValidationRules, rules),
            functools.partial(DocumentCache, documents),
            OperationInfo,
        ],
        execution_context_class=ItemListsExecutionContext if compiled else None,
        entity_names=frozenset({federation.user_type, federation.item_type}),
    )
    if compiled:
        names = ItemNames(METADATA_TYPE, federation.item_type, federation.item_key)
        ItemLists(names).install(graphql_schema(schema))
        install_direct_resolvers(schema, fields)
        schema.compiled = CompiledPath(
            schema,
            fields,
            documents,
            names,
            {federation.user_type: federation.user_key, federation.item_type: federation.item_key},
        )
    return schema
