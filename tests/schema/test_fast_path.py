"""The fast list path answers exactly what graphql-core answers, errors included.

Each query runs twice in-process on the embedded engine: through the schema with the
fast path and through one without it; the JSON must be identical.
"""

import gc
import re
from collections import Counter
from typing import Any

import orjson
import pytest
from graphql import GraphQLObjectType

from backends.guard import Breakers, GuardedBackend
from backends.local import LocalBackend
from loaders.recommendations import operation_loaders
from resolvers.context import Context
from schema.build import build_schema
from schema.compiled.items import compile_items
from schema.strawberry_internals import graphql_schema
from settings import Settings, load_settings
from tests.schema.reference import graphql_core_only

USERS = '{__typename: "User", id: "user-0007"}, {__typename: "User", id: "user-0042"}'
QUERIES = [
    # The gateway's batch shape.
    f"""{{ _entities(representations: [{USERS}]) {{ ... on User {{
        recommendations(numResults: 5) {{
          recommendationId items {{ itemId score item {{ __typename id }} }} }} }} }} }}""",
    # Aliases, __typename everywhere, every leaf.
    """{ popularItems(numResults: 4) { __typename a: items { __typename b: itemId score
         promotionName reasons c: item { __typename d: id } } } }""",
    # Named and inline fragments, the same field twice.
    """query { popularItems(numResults: 3) {
         items { ...P ... on PredictedItem { itemId score } } } }
       fragment P on PredictedItem { itemId item { id } }""",
    # @skip/@include with variables.
    """query($yes: Boolean!, $no: Boolean!) { popularItems(numResults: 3) {
         items { itemId @include(if: $yes) score @skip(if: $yes)
                 item @include(if: $no) { id } } } }""",
    # A field the fast path does not cover (Item.related): the general path answers.
    """{ popularItems(numResults: 2) { items { itemId item { id related(numResults: 2) {
         items { itemId item { id } } } } } } }""",
    # Promotions and reasons.
    """{ _entities(representations: [{__typename: "User", id: "user-0003"}]) { ... on User {
         recommendations(numResults: 6, promotion: {name: "cheap", percentPromotedItems: 50,
           filter: {maxPrice: {maxPrice: 20}}}) { items { itemId promotionName reasons } } } } }""",
    # Errors next to fast lists: a failed field and a good one.
    """{ good: popularItems(numResults: 2) { items { itemId } }
         bad: popularItems(numResults: 900) { items { itemId } } }""",
    # Ranked items, unknown ones included.
    """{ _entities(representations: [{__typename: "User", id: "user-0011"}]) { ... on User {
         rankedItems(itemIds: ["item-0001", "nope", "item-0300"]) {
           items { itemId score } } } } }""",
    # Every field of Recommendations, aliased and skipped, around fast lists.
    """query($yes: Boolean!) { _entities(representations: [{__typename: "User",
         id: "user-0009"}]) { ... on User { a: recommendations(numResults: 2) {
           __typename s: source recommendationId t: __typename source @skip(if: $yes)
           items { itemId } i2: items { score } } } } }""",
]
VARIABLES = {"yes": True, "no": False}
RECOMMENDATION_ID = re.compile(rb'"recommendationId":"[^"]*"')


async def answer(
    schema: Any,
    settings: Settings,
    backend: LocalBackend,
    query: str,
    variables: dict[str, Any] = VARIABLES,
) -> bytes:
    guarded = GuardedBackend(backend, settings.personalize, Breakers(settings.breaker))
    context = Context(
        loaders=operation_loaders(guarded, max_calls=100, deadline_s=5.0), settings=settings
    )
    result = await schema.execute(query, variable_values=variables, context_value=context)
    errors = [e.formatted for e in result.errors or []]
    # Each call gets a fresh recommendationId; everything else must be equal.
    return RECOMMENDATION_ID.sub(
        b'"recommendationId":"-"', orjson.dumps({"data": result.data, "errors": errors})
    )


def plans_looked_up() -> int:
    info = compile_items.cache_info()
    return info.hits + info.misses


@pytest.mark.parametrize("query", QUERIES)
async def test_the_fast_path_answers_what_graphql_core_answers(
    backend: LocalBackend, query: str
) -> None:
    settings = load_settings()
    before = plans_looked_up()
    fast = await answer(build_schema(settings), settings, backend, query)
    # The fast path really built lists for this query.
    assert plans_looked_up() > before
    general = await answer(build_schema(graphql_core_only(settings)), settings, backend, query)
    assert fast == general
    assert b'"item-' in fast


async def test_metadata_lists_match_too(
    backend: LocalBackend, with_columns: tuple[Settings, str]
) -> None:
    settings, query = with_columns
    fast = await answer(build_schema(settings), settings, backend, query)
    general = await answer(build_schema(graphql_core_only(settings)), settings, backend, query)
    assert fast == general
    assert b'"key":"CATEGORY"' in fast


async def test_documents_are_parsed_and_validated_once(backend: LocalBackend) -> None:
    settings = load_settings()
    schema = build_schema(settings)
    invalid = "{ popularItems { nope } }"
    first = await answer(schema, settings, backend, invalid)
    second = await answer(schema, settings, backend, invalid)
    # The cached validation answers the same, code included.
    assert first == second
    assert b"GRAPHQL_VALIDATION_FAILED" in first
    # A syntax error is not cached and keeps its code.
    broken = await answer(schema, settings, backend, "{ popularItems {")
    assert b"GRAPHQL_PARSE_FAILED" in broken


async def test_an_answered_operation_leaves_no_reference_cycle(backend: LocalBackend) -> None:
    # Its objects then go by reference counting; what the cyclic collector would find
    # here is every operation's whole graph, which made it the costliest pause under load.
    settings = load_settings()
    schema = build_schema(settings)
    # An answer with an error keeps the error's traceback, whose frames hold the context:
    # that cycle is left to the collector (rarer, and bounded by its threshold).
    clean = [
        query
        for query in QUERIES
        if b'"errors":[]' in await answer(schema, settings, backend, query)
    ]
    assert len(clean) == len(QUERIES) - 1
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for query in clean:
            await answer(schema, settings, backend, query)
        gc.collect()
        left = Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    ours = {"SubgraphExecutionContext", "Context", "RecommendationLoader", "RecommendationResult"}
    assert not {name: n for name, n in left.items() if name in ours}


async def test_fallback_answers_match_too(backend: LocalBackend) -> None:
    # A use case whose ARN the engine does not know falls back to its static list:
    # source FALLBACK and a null recommendationId, through both paths.
    settings = load_settings()
    cases = dict(settings.use_cases)
    cases["broken"] = cases["userPersonalization"].model_copy(
        update={
            "arn": "arn:aws:personalize:us-east-1:000000000000:campaign/does-not-exist",
            "fallback_items": ("item-0001", "item-0002"),
        }
    )
    broken = settings.model_copy(update={"use_cases": cases})
    query = """{ _entities(representations: [{__typename: "User", id: "user-0005"}]) {
        ... on User { recommendations(useCase: BROKEN, numResults: 2) {
          __typename source recommendationId items { itemId item { id } } } } } }"""
    fast = await answer(build_schema(broken), broken, backend, query)
    general = await answer(build_schema(graphql_core_only(broken)), broken, backend, query)
    assert fast == general
    assert b'"source":"FALLBACK","recommendationId":null' in fast


async def test_plans_of_directive_free_selections_are_kept_across_operations(
    backend: LocalBackend,
) -> None:
    settings = load_settings()
    schema = build_schema(settings)
    query = QUERIES[0]
    first = await answer(schema, settings, backend, query)
    before = plans_looked_up()
    second = await answer(schema, settings, backend, query)
    # Found by the identity of the cached document's field nodes: nothing was rebuilt.
    assert plans_looked_up() == before
    assert second == first
    general = build_schema(graphql_core_only(settings))
    assert second == await answer(general, settings, backend, query)


@pytest.mark.parametrize(
    "query",
    [
        # A directive on a field of the list.
        """query($yes: Boolean!) { popularItems(numResults: 3) {
             items { itemId @include(if: $yes) score item { id @skip(if: $yes) } } } }""",
        # Only inside a fragment.
        """query($yes: Boolean!) { popularItems(numResults: 3) { items { ...P } } }
           fragment P on PredictedItem { score ... on PredictedItem @include(if: $yes) {
             itemId } }""",
    ],
)
async def test_selections_that_depend_on_variables_follow_them(
    backend: LocalBackend, query: str
) -> None:
    settings = load_settings()
    fast, general = build_schema(settings), build_schema(graphql_core_only(settings))
    # The same document on one schema, its variables flipping between operations.
    seen = set()
    for yes in (True, False, True, False):
        ours = await answer(fast, settings, backend, query, {"yes": yes})
        assert ours == await answer(general, settings, backend, query, {"yes": yes})
        seen.add((yes, b'"itemId"' in ours))
    assert seen == {(True, True), (False, False)}


def test_every_personalize_field_gets_a_direct_resolver() -> None:
    settings = load_settings()
    schema = build_schema(settings)
    direct = {
        f"{name}.{field_name}"
        for name, graphql_type in graphql_schema(schema).type_map.items()
        if isinstance(graphql_type, GraphQLObjectType)
        for field_name, field in graphql_type.fields.items()
        if getattr(field.resolve, "__qualname__", "").startswith("_direct.")
    }
    assert direct == {
        "User.recommendations",
        "User.rankedItems",
        "Item.related",
        "Query.popularItems",
        "User.recommendationPage",
        "Item.recommendationPage",
        "Query.recommendationPage",
        "Query.cartRecommendations",
    }
    # The reference schema keeps Strawberry's resolvers.
    general = build_schema(graphql_core_only(settings))
    assert not any(
        getattr(field.resolve, "__qualname__", "").startswith("_direct.")
        for graphql_type in graphql_schema(general).type_map.values()
        if isinstance(graphql_type, GraphQLObjectType)
        for field in graphql_type.fields.values()
    )


async def test_arguments_follow_their_variables_and_literals_are_kept(
    backend: LocalBackend,
) -> None:
    settings = load_settings()
    fast, general = build_schema(settings), build_schema(graphql_core_only(settings))
    # numResults from a variable, the filter a literal: converted on every call.
    query = """query($n: Int!) { popularItems(numResults: $n,
        filter: {maxPrice: {maxPrice: 30}}) { items { itemId } }
      two: popularItems(numResults: 2) { items { itemId } } }"""
    for n in (3, 5, 3, 1):
        ours = await answer(fast, settings, backend, query, {"n": n})
        assert ours == await answer(general, settings, backend, query, {"n": n})
        data = orjson.loads(ours)["data"]
        assert len(data["popularItems"]["items"]) == n
        assert len(data["two"]["items"]) == 2
