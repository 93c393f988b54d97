"""The compiled path answers what graphql-core answers, errors included.

Each operation runs in-process on the embedded engine twice: through the compiled path
of the fast schema and through the reference schema (graphql-core and Strawberry only).
Errors are compared in path order: graphql-core lists them as the fields fail.
"""

import re
from typing import Any

import orjson
import pytest
from graphql import ExecutionResult
from prometheus_client import CollectorRegistry
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult as StrawberryResult

from backends.cache import CachedBackend
from backends.guard import Breakers, GuardedBackend
from backends.local import LocalBackend
from backends.memory_store import MemoryStore
from domain.errors import ConfigurationError
from loaders.recommendations import operation_loaders
from observability.call_metrics import CallMetrics
from resolvers.context import Context
from schema.build import build_schema
from schema.compiled import CompiledPath
from schema.compiled.documents import DocumentStore
from schema.compiled.items import ItemNames
from schema.compiled.path import KNOWN_EXTENSIONS, extension_class
from schema.fields import ResolverFields
from settings import Settings, load_settings
from tests.schema.reference import graphql_core_only

RECOMMENDATION_ID = re.compile(rb'"recommendationId":"[^"]*"')

HOME = """query Home($representations: [_Any!]!, $candidates: [ID!]!) {
  _entities(representations: $representations) {
    ... on User {
      forYou: recommendations { items { itemId score item { __typename id } } }
      picks: recommendations(useCase: USER_PERSONALIZATION, numResults: 5) {
        recommendationId items { itemId } }
      notBought: recommendations(filter: {excludePurchased: true}, numResults: 4) {
        items { itemId score } }
      ranked: rankedItems(itemIds: $candidates) { items { itemId score } }
    }
  }
}"""
HOME_VARIABLES = {
    "representations": [{"__typename": "User", "id": "user-0017"}],
    "candidates": ["item-0003", "item-0100", "nope", "item-0042"],
}

PRODUCT = """query Product($representations: [_Any!]!, $candidates: [ID!]!, $n: Int) {
  all: _entities(representations: $representations) {
    __typename
    ... on Item { id related(numResults: $n) { __typename source items {
      __typename itemId item { id } } } }
    ... on User { key: id rankedItems(itemIds: $candidates) { s: source
      recommendationId items { itemId score reasons promotionName } } }
  }
}"""
PRODUCT_VARIABLES = {
    "representations": [
        {"__typename": "Item", "id": "item-0007"},
        {"__typename": "User", "id": "user-0008"},
        {"__typename": "Item", "id": 12},
        {"__typename": "User", "id": "user-0008"},
    ],
    "candidates": ["item-0001", "item-0002", "item-0300"],
    "n": 3,
}

PROMOTED = """{ _entities(representations: [{__typename: "User", id: "user-0003"}]) {
  ... on User { recommendations(numResults: 6, promotion: {name: "cheap",
    percentPromotedItems: 50, filter: {maxPrice: {maxPrice: 20}}}) {
      items { itemId promotionName reasons } } } } }"""

Run = tuple[dict[str, Any], list[dict[str, Any]]]


def _context(settings: Settings, backend: LocalBackend, max_calls: int = 100) -> Context:
    guarded = GuardedBackend(backend, settings.personalize, Breakers(settings.breaker))
    return Context(
        loaders=operation_loaders(guarded, max_calls=max_calls, deadline_s=5.0),
        settings=settings,
    )


def _shown(result: ExecutionResult | StrawberryResult) -> bytes:
    errors = sorted((e.formatted for e in result.errors or []), key=lambda e: str(e["path"]))
    # Each call gets a fresh recommendationId; everything else must be equal.
    return RECOMMENDATION_ID.sub(
        b'"recommendationId":"-"', orjson.dumps({"data": result.data, "errors": errors})
    )


async def both(
    settings: Settings,
    backend: LocalBackend,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    max_calls: int = 100,
    repeat: int = 1,
) -> bytes:
    """The compiled path's answer, checked equal to the reference's; repeated runs
    reuse the plan."""
    fast, general = build_schema(settings), build_schema(graphql_core_only(settings))
    plans = fast.compiled
    assert plans is not None
    # Not compiled before graphql-core has parsed and validated the document once.
    assert plans.operation_for(query, None) is None
    await fast.execute(query, variable_values=variables, context_value=_context(settings, backend))
    plan = plans.operation_for(query, None)
    assert plan is not None
    shown = b""
    for _ in range(repeat):
        compiled = await plans.execute(
            query, variables, None, _context(settings, backend, max_calls)
        )
        assert compiled is not None
        assert plans.operation_for(query, None) is plan
        reference = await general.execute(
            query,
            variable_values=variables,
            context_value=_context(settings, backend, max_calls),
        )
        shown = _shown(compiled)
        assert shown == _shown(reference)
    return shown


async def test_a_home_page_is_compiled_and_answers_the_same(backend: LocalBackend) -> None:
    shown = await both(load_settings(), backend, HOME, HOME_VARIABLES, repeat=2)
    user = orjson.loads(shown)["data"]["_entities"][0]
    assert [len(user[k]["items"]) for k in ("forYou", "picks", "notBought")] == [25, 5, 4]
    assert b'"errors":[]' in shown


async def test_items_and_users_in_one_batch_answer_the_same(backend: LocalBackend) -> None:
    shown = await both(load_settings(), backend, PRODUCT, PRODUCT_VARIABLES)
    listed = orjson.loads(shown)["data"]["all"]
    assert [e["__typename"] for e in listed] == ["Item", "User", "Item", "User"]
    # A numeric key reads as the string graphql-core makes of it.
    assert listed[2]["id"] == "12"
    assert listed[1]["key"] == "user-0008"


async def test_promotions_answer_the_same(backend: LocalBackend) -> None:
    shown = await both(load_settings(), backend, PROMOTED)
    assert b'"promotionName":"cheap"' in shown


async def test_root_personalize_fields_are_compiled_with_the_entities(
    backend: LocalBackend,
) -> None:
    # The zipf workload's shape: a root field of Query's next to `_entities`.
    query = """query Zipf($representations: [_Any!]!, $candidates: [ID!]!) {
      best: popularItems(numResults: 4) { source items { itemId item { id } } }
      _entities(representations: $representations) {
        ... on User { rankedItems(itemIds: $candidates) { items { itemId } } } }
      popularItems(useCase: MOST_VIEWED, numResults: 2) { __typename items { score } }
    }"""
    variables = {k: v for k, v in PRODUCT_VARIABLES.items() if k != "n"}
    shown = orjson.loads(await both(load_settings(), backend, query, variables))
    assert list(shown["data"]) == ["best", "_entities", "popularItems"]
    assert len(shown["data"]["best"]["items"]) == 4


async def test_a_failed_root_field_has_a_root_path(backend: LocalBackend) -> None:
    settings = load_settings()
    cases = dict(settings.use_cases)
    cases["gone"] = cases["popularity"].model_copy(
        update={"arn": "arn:aws:personalize:us-east-1:000000000000:campaign/gone"}
    )
    broken = settings.model_copy(update={"use_cases": cases})
    query = """{ bad: popularItems(useCase: GONE) { items { itemId } }
      ok: popularItems(numResults: 2) { items { itemId } } }"""
    shown = orjson.loads(await both(broken, backend, query))
    assert [e["path"] for e in shown["errors"]] == [["bad"]]
    assert shown["data"]["bad"] is None
    assert len(shown["data"]["ok"]["items"]) == 2


@pytest.mark.parametrize("n", [3, 5, 1])
async def test_variable_arguments_are_read_per_operation(backend: LocalBackend, n: int) -> None:
    shown = await both(load_settings(), backend, PRODUCT, {**PRODUCT_VARIABLES, "n": n})
    assert len(orjson.loads(shown)["data"]["all"][0]["related"]["items"]) == n


async def test_metadata_answers_the_same(
    backend: LocalBackend, with_columns: tuple[Settings, str]
) -> None:
    settings, query = with_columns
    shown = await both(settings, backend, query)
    assert b'"key":"CATEGORY"' in shown


def _with_broken(settings: Settings, **update: Any) -> Settings:
    cases = dict(settings.use_cases)
    cases["broken"] = cases["userPersonalization"].model_copy(
        update={"arn": "arn:aws:personalize:us-east-1:000000000000:campaign/gone", **update}
    )
    return settings.model_copy(update={"use_cases": cases})


async def test_a_failed_call_nulls_its_field_with_the_same_coded_error(
    backend: LocalBackend,
) -> None:
    broken = _with_broken(load_settings())
    query = """{ _entities(representations: [{__typename: "User", id: "user-0005"},
        {__typename: "User", id: "user-0006"}]) { ... on User {
          good: recommendations(numResults: 2) { items { itemId } }
          bad: recommendations(useCase: BROKEN, numResults: 2) { items { itemId } } } } }"""
    shown = orjson.loads(await both(broken, backend, query))
    assert [e["bad"] for e in shown["data"]["_entities"]] == [None, None]
    assert [e["path"] for e in shown["errors"]] == [
        ["_entities", 0, "bad"],
        ["_entities", 1, "bad"],
    ]
    assert {e["extensions"]["code"] for e in shown["errors"]} == {"NOT_CONFIGURED"}
    assert all(e["locations"] for e in shown["errors"])


async def test_a_failed_call_falls_back_the_same(backend: LocalBackend) -> None:
    broken = _with_broken(load_settings(), fallback_items=("item-0001", "item-0002"))
    query = """{ _entities(representations: [{__typename: "User", id: "user-0005"}]) {
        ... on User { recommendations(useCase: BROKEN, numResults: 2) {
          __typename source recommendationId items { itemId item { id } } } } } }"""
    shown = await both(broken, backend, query)
    assert b'"source":"FALLBACK","recommendationId":null' in shown


async def test_the_call_budget_is_spent_in_field_order_the_same(backend: LocalBackend) -> None:
    shown = orjson.loads(await both(load_settings(), backend, HOME, HOME_VARIABLES, max_calls=2))
    assert [e["path"][-1] for e in shown["errors"]] == ["notBought", "ranked"]
    assert {e["extensions"]["code"] for e in shown["errors"]} == {"OPERATION_TOO_EXPENSIVE"}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        # A representation of a type we do not own, and one without its key.
        (HOME, {**HOME_VARIABLES, "representations": [{"__typename": "Order", "id": "1"}]}),
        (HOME, {**HOME_VARIABLES, "representations": [{"__typename": "User"}]}),
        # A variable of the wrong type, and an argument out of range.
        (HOME, {**HOME_VARIABLES, "candidates": [{"id": "item-0001"}]}),
        (PRODUCT, {**PRODUCT_VARIABLES, "n": 900}),
        (HOME, {**HOME_VARIABLES, "candidates": []}),
    ],
)
async def test_bad_input_is_left_to_graphql_core_before_anything_is_called(
    backend: LocalBackend, query: str, variables: dict[str, Any]
) -> None:
    settings = load_settings()
    fast = build_schema(settings)
    plans = fast.compiled
    assert plans is not None
    good = HOME_VARIABLES if query == HOME else PRODUCT_VARIABLES
    await fast.execute(query, variable_values=good, context_value=_context(settings, backend))
    assert plans.operation_for(query, None) is not None
    batches: list[int] = []
    guarded = GuardedBackend(backend, settings.personalize, Breakers(settings.breaker))
    context = Context(
        loaders=operation_loaders(guarded, max_calls=100, deadline_s=5.0, on_batch=batches.append),
        settings=settings,
    )
    assert await plans.execute(query, variables, None, context) is None
    assert batches == []
    # graphql-core then answers with its coded errors.
    result = await fast.execute(query, variable_values=variables, context_value=context)
    assert result.errors
    assert all((e.extensions or {}).get("code") == "BAD_USER_INPUT" for e in result.errors)


@pytest.mark.parametrize(
    "query",
    [
        # A directive, a named fragment, a second root field, a merged field.
        """query($yes: Boolean!) { _entities(representations: [{__typename: "User",
             id: "u"}]) { ... on User { recommendations @include(if: $yes) {
             items { itemId } } } } }""",
        """{ _entities(representations: [{__typename: "User", id: "u"}]) { ...U } }
           fragment U on User { recommendations { items { itemId } } }""",
        # A root __typename; a root field that is not Personalize's; a merged root field.
        """{ __typename popularItems { items { itemId } } }""",
        "{ popularItems { source } popularItems { items { itemId } } }",
        "{ _service { sdl } }",
        """{ _entities(representations: [{__typename: "User", id: "u"}]) { ... on User {
             recommendations { items { itemId } } }
             ... on User { recommendations { items { score } } } } }""",
        # A list that scrolls: pageInfo selected, or after given (resolvers.scroll).
        "{ popularItems(numResults: 3) { items { itemId } pageInfo { hasNextPage } } }",
        '{ popularItems(numResults: 3, after: "x") { items { itemId } } }',
        # A cart: one call per item, fused after (resolvers.cart).
        '{ cartRecommendations(itemIds: ["i", "j"]) { items { itemId } } }',
        '{ popularItems { source } cartRecommendations(itemIds: ["i"]) { source } }',
        # A fragment on the union; a field under items the plans lack.
        """{ _entities(representations: [{__typename: "User", id: "u"}]) {
             ... on _Entity { __typename } } }""",
        """{ _entities(representations: [{__typename: "Item", id: "i"}]) { ... on Item {
             related { items { item { related { source } } } } } } }""",
    ],
)
async def test_other_operations_are_not_compiled(backend: LocalBackend, query: str) -> None:
    settings = load_settings()
    fast = build_schema(settings)
    await fast.execute(
        query, variable_values={"yes": True}, context_value=_context(settings, backend)
    )
    assert fast.compiled is not None
    assert fast.compiled.operation_for(query, None) is None


async def test_an_invalid_document_is_never_compiled(backend: LocalBackend) -> None:
    settings = load_settings()
    fast = build_schema(settings)
    query = """{ _entities(representations: []) { ... on User { nope } } }"""
    result = await fast.execute(query, context_value=_context(settings, backend))
    assert result.errors
    assert fast.compiled is not None
    assert fast.compiled.operation_for(query, None) is None


async def test_stored_answers_are_counted_per_field_as_graphql_core_counts_them(
    backend: LocalBackend,
) -> None:
    settings = load_settings()
    registry = CollectorRegistry()
    guarded = GuardedBackend(backend, settings.personalize, Breakers(settings.breaker))
    cached = CachedBackend(
        guarded,
        MemoryStore(100),
        settings.cache,
        settings.use_cases,
        CallMetrics(registry, settings.use_cases),
    )

    def context() -> Context:
        loaders = operation_loaders(cached, max_calls=100, deadline_s=5.0)
        return Context(loaders=loaders, settings=settings)

    # The same item twice: related items are cached by default.
    query = """{ _entities(representations: [{__typename: "Item", id: "item-0007"},
        {__typename: "Item", id: "item-0007"}]) { ... on Item {
          related(numResults: 2) { items { itemId } } } } }"""

    def hits() -> float:
        labels = {"use_case": "similarItems", "outcome": "hit"}
        return registry.get_sample_value("personalize_subgraph_cache_lookups_total", labels) or 0

    fast = build_schema(settings)
    await fast.execute(query, context_value=context())  # stores the answer, caches the document
    before = hits()
    await fast.execute(query, context_value=context())
    through_graphql_core = hits() - before
    assert fast.compiled is not None
    assert await fast.compiled.execute(query, None, None, context()) is not None
    assert hits() - before - through_graphql_core == through_graphql_core == 2


async def test_operation_names_that_match_nothing_keep_nothing(backend: LocalBackend) -> None:
    settings = load_settings()
    fast = build_schema(settings)
    plans = fast.compiled
    assert plans is not None
    query = HOME + "\nquery Other { popularItems { items { itemId } } }"
    for name in ("Home", "Other"):
        await fast.execute(
            query,
            variable_values=HOME_VARIABLES,
            operation_name=name,
            context_value=_context(settings, backend),
        )
        assert plans.operation_for(query, name) is not None
    for n in range(200):
        assert plans.operation_for(query, f"Nope{n}") is None
    # Two operations, so no plan without a name either.
    assert plans.operation_for(query, None) is None
    entry = plans._documents.get(query)
    assert entry is not None
    assert set(entry.compiled) == {"Home", "Other"}


async def test_fallback_chains_through_failed_siblings_answer_the_same(
    backend: LocalBackend,
) -> None:
    # ua and uc have open breakers (they fail at once, after spending the budget); uc
    # falls back to ua, then its static list; ud fails at Personalize and falls back to
    # ub. A fallback that asks for a call its operation has already seen fail makes it
    # again, on both paths, whatever else settled in the same loop turn.
    settings = load_settings()
    base = settings.use_cases["userPersonalization"]
    gone = "arn:aws:personalize:us-east-1:000000000000:campaign/"
    cases = dict(settings.use_cases)
    cases["ua"] = base.model_copy(update={"arn": gone + "ua"})
    cases["uc"] = base.model_copy(
        update={"arn": gone + "uc", "fallback": ("ua",), "fallback_items": ("s1", "s2")}
    )
    cases["ud"] = base.model_copy(update={"arn": gone + "ud", "fallback": ("ub",)})
    cases["ub"] = base
    chained = settings.model_copy(update={"use_cases": cases})
    query = """{ _entities(representations: [{__typename: "User", id: "user-0005"}]) {
      ... on User { a: recommendations(useCase: UA, numResults: 2) { source items { itemId } }
        c: recommendations(useCase: UC, numResults: 2) { source items { itemId } }
        d: recommendations(useCase: UD, numResults: 2) { source items { itemId } } } } }"""

    def context() -> Context:
        breakers = Breakers(chained.breaker)
        for name in ("ua", "uc"):
            for _ in range(chained.breaker.failures):
                breakers.failed(cases[name].arn)
        guarded = GuardedBackend(backend, chained.personalize, breakers)
        loaders = operation_loaders(guarded, max_calls=4, deadline_s=5.0)
        return Context(loaders=loaders, settings=chained)

    fast, general = build_schema(chained), build_schema(graphql_core_only(chained))
    await fast.execute(query, context_value=context())
    assert fast.compiled is not None
    compiled = await fast.compiled.execute(query, None, None, context())
    assert compiled is not None
    reference = await general.execute(query, context_value=context())
    assert _shown(compiled) == _shown(reference)
    shown = orjson.loads(_shown(reference))["data"]["_entities"][0]
    assert shown["c"]["source"] == "FALLBACK"


def test_the_compiled_path_can_be_switched_off() -> None:
    settings = load_settings()
    server = settings.server.model_copy(update={"compiled_path": False})
    assert build_schema(settings.model_copy(update={"server": server})).compiled is None
    assert build_schema(settings).compiled is not None


class _Masking(SchemaExtension):
    """An extension the compiled path has not been taught: it must not be skipped."""


def test_an_unknown_schema_extension_stops_start_up() -> None:
    schema = build_schema(graphql_core_only(load_settings()))
    schema.extensions = (*schema.extensions, _Masking)
    with pytest.raises(ConfigurationError, match=r"does not know the schema extension.*_Masking"):
        CompiledPath(schema, ResolverFields(), DocumentStore(), ItemNames("M", "Item", "id"), {})


def test_the_schema_as_built_has_only_known_extensions() -> None:
    schema = build_schema(load_settings())
    assert schema.compiled is not None
    assert {extension_class(e) for e in schema.extensions} <= set(KNOWN_EXTENSIONS)
