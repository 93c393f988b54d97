"""The schema executed in-process on the embedded engine: entities, SDL, configured names."""

from typing import Any

from strawberry.federation import Schema

from backends.guard import Breakers, GuardedBackend
from backends.local import LocalBackend
from loaders.recommendations import operation_loaders
from resolvers.context import Context
from schema.build import build_schema
from settings import FederationSettings, Settings, load_settings


async def run(
    schema: Schema, settings: Settings, backend: LocalBackend, query: str
) -> dict[str, Any]:
    guarded = GuardedBackend(backend, settings.personalize, Breakers(settings.breaker))
    context = Context(
        loaders=operation_loaders(guarded, max_calls=100, deadline_s=5.0), settings=settings
    )
    result = await schema.execute(query, context_value=context)
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    return body


async def test_entities_resolve_users_and_items(backend: LocalBackend) -> None:
    settings = load_settings()
    body = await run(
        build_schema(settings),
        settings,
        backend,
        """{ _entities(representations: [
               {__typename: "User", id: "user-0005"}, {__typename: "Item", id: "item-0100"}]) {
             ... on User {
               id recommendations(numResults: 3) { source items { itemId item { id } } } }
             ... on Item { id related(numResults: 2) { items { itemId } } }
        } }""",
    )
    assert "errors" not in body, body
    user, item = body["data"]["_entities"]
    assert user["id"] == "user-0005"
    assert user["recommendations"]["source"] == "LOCAL"
    assert [i["item"]["id"] for i in user["recommendations"]["items"]] == [
        i["itemId"] for i in user["recommendations"]["items"]
    ]
    assert len(item["related"]["items"]) == 2


async def test_filters_and_metadata_reach_the_engine(backend: LocalBackend) -> None:
    demo = load_settings()
    with_metadata = demo.use_cases["userPersonalization"].model_copy(
        update={"metadata_columns": ("CATEGORY",)}
    )
    settings = demo.model_copy(
        update={"use_cases": {**demo.use_cases, "userPersonalization": with_metadata}}
    )
    schema = build_schema(settings)

    def query(filter_argument: str) -> str:
        return (
            '{ _entities(representations: [{__typename: "User", id: "user-0009"}]) {'
            " ... on User { recommendations(useCase: USER_PERSONALIZATION, numResults: 10"
            f"{filter_argument}) {{ items {{ itemId metadata {{ key value }} }} }} }} }} }}"
        )

    def categories(body: dict[str, Any]) -> list[str]:
        items = body["data"]["_entities"][0]["recommendations"]["items"]
        return [m["value"] for i in items for m in i["metadata"] if m["key"] == "CATEGORY"]

    unfiltered = await run(schema, settings, backend, query(""))
    assert "errors" not in unfiltered, unfiltered
    seen = categories(unfiltered)
    assert len(seen) == 10
    wanted = seen[-1]
    filtered = await run(
        schema, settings, backend, query(f', filter: {{byCategory: {{category: ["{wanted}"]}}}}')
    )
    assert "errors" not in filtered, filtered
    assert set(categories(filtered)) == {wanted}
    # numResults is capped at 50 when metadata is returned, before any call.
    too_many = await run(
        schema, settings, backend, query("").replace("numResults: 10", "numResults: 51")
    )
    assert too_many["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_product_sku_by_configuration(backend: LocalBackend) -> None:
    settings = load_settings().model_copy(
        update={
            "federation": FederationSettings(
                item_type="Product", item_key="sku", item_key_scalar="String"
            )
        }
    )
    schema = build_schema(settings)
    sdl = (await schema.execute("{ _service { sdl } }")).data["_service"]["sdl"]  # type: ignore[index]
    assert 'type Product @key(fields: "sku")' in sdl
    assert "sku: String!" in sdl
    assert "item: Product!" in sdl
    assert "type Item " not in sdl
    assert 'url: "https://specs.apollo.dev/federation/v2.9"' in sdl
    body = await run(
        schema,
        settings,
        backend,
        '{ _entities(representations: [{__typename: "Product", sku: "item-0003"}]) {'
        " ... on Product { sku related(numResults: 2) { items { item { sku } } } } } }",
    )
    assert "errors" not in body, body
    assert len(body["data"]["_entities"][0]["related"]["items"]) == 2


async def test_unconfigured_fields_say_so(backend: LocalBackend) -> None:
    settings = load_settings().model_copy(update={"use_cases": {}, "filters": {}})
    body = await run(
        build_schema(settings), settings, backend, "{ popularItems { items { itemId } } }"
    )
    assert body["data"]["popularItems"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_CONFIGURED"
