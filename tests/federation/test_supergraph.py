"""Through a real gateway: this subgraph composed with a catalog subgraph that owns users
and items, and frontend queries crossing both.

The same suite runs twice: with the catalog's item as `Item @key(fields: "id")` and as
`Product @key(fields: "sku")` with a `String!` key, the subgraph changed by configuration
only. `User.country` from the catalog reaches Personalize as context through @requires.
The catalog serves the engine's own items, so a Personalize filter on price agrees with
the prices the gateway shows.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.experiments import assign
from local_personalize.data import Dataset, generate_demo_dataset
from tests.conftest import Emulator
from tests.servers import REPO_ROOT, free_ports, python, running

NODE_READY = {"apollo-require-preflight": "true"}
READY_QUERY = "/graphql?query=%7B__typename%7D"


@dataclass(frozen=True)
class Naming:
    """How the catalog names the item entity."""

    type_name: str
    key: str
    scalar: str

    @property
    def query_field(self) -> str:
        return self.type_name[0].lower() + self.type_name[1:]


@dataclass
class Supergraph:
    """A gateway over the catalog and this subgraph, plus what is needed to observe them."""

    url: str
    naming: Naming
    compose_summary: dict[str, int]
    compose_output: str

    def query(self, query: str, plan: bool = False) -> dict[str, Any]:
        headers = {"x-query-plan": "1"} if plan else {}
        started = time.perf_counter()
        response = httpx.post(self.url, json={"query": query}, headers=headers, timeout=30.0)
        self.last_latency = time.perf_counter() - started
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def node(*args: str) -> list[str]:
    return ["node", *args]


@pytest.fixture(
    scope="module",
    params=[Naming("Item", "id", "ID"), Naming("Product", "sku", "String")],
    ids=["Item-id", "Product-sku"],
)
def supergraph(
    request: pytest.FixtureRequest, logs: Path, emulator: Emulator
) -> Iterator[Supergraph]:
    naming: Naming = request.param
    name = f"{naming.type_name}-{naming.key}"
    if not (REPO_ROOT / "node_modules" / "@apollo" / "gateway").is_dir():
        pytest.fail("node_modules is missing: run the tests with `make test` (it runs npm ci)")
    catalog_port, subgraph_port, gateway_port = free_ports(3)
    catalog_url = f"http://127.0.0.1:{catalog_port}/graphql"
    subgraph_url = f"http://127.0.0.1:{subgraph_port}/graphql"
    catalog_env = {
        "CATALOG_PORT": str(catalog_port),
        "CATALOG_ITEM_TYPE": naming.type_name,
        "CATALOG_ITEM_KEY": naming.key,
        "CATALOG_ITEM_KEY_TYPE": naming.scalar,
        # The interpreter running the tests: the catalog asks it for the engine's items.
        "CATALOG_PYTHON": sys.executable,
    }
    # The second variant also runs with the shared secret that production would set.
    secret = {"SUBGRAPH_SECRET": "a-secret-only-the-gateway-knows"} if naming.key == "sku" else {}
    subgraph_env = {
        **({"SUBGRAPH_SERVER__SHARED_SECRET": secret["SUBGRAPH_SECRET"]} if secret else {}),
        "SUBGRAPH_SERVER__PORT": str(subgraph_port),
        "SUBGRAPH_BACKEND": "personalize",
        "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": emulator.url,
        "SUBGRAPH_FEDERATION__ITEM_TYPE": naming.type_name,
        "SUBGRAPH_FEDERATION__ITEM_KEY": naming.key,
        "SUBGRAPH_FEDERATION__ITEM_KEY_SCALAR": naming.scalar,
        "SUBGRAPH_FEDERATION__USER_CONTEXT_FIELDS": json.dumps({"country": "COUNTRY"}),
        "LOG_LEVEL": "WARNING",
    }
    supergraph_file = logs / f"supergraph-{name}.graphql"
    with (
        running(
            node("federation/catalog.mjs"),
            f"http://127.0.0.1:{catalog_port}{READY_QUERY}",
            logs / f"catalog-{name}.log",
            env=catalog_env,
            headers=NODE_READY,
        ),
        running(
            python("server.py"),
            f"http://127.0.0.1:{subgraph_port}/healthz",
            logs / f"subgraph-{name}.log",
            env=subgraph_env,
        ),
    ):
        composed = subprocess.run(
            node(
                "federation/compose.mjs",
                "--strict-hints",
                "--out",
                str(supergraph_file),
                f"catalog={catalog_url}",
                f"recommendations={subgraph_url}",
            ),
            cwd=REPO_ROOT,
            env={**os.environ, **secret},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = composed.stdout + composed.stderr
        assert composed.returncode == 0, output
        summary = json.loads(composed.stdout.strip().splitlines()[-1])
        with running(
            node("federation/gateway.mjs", "--supergraph", str(supergraph_file)),
            f"http://127.0.0.1:{gateway_port}{READY_QUERY}",
            logs / f"gateway-{name}.log",
            env={"GATEWAY_PORT": str(gateway_port), **secret},
            headers=NODE_READY,
        ):
            if secret:
                # Direct calls that bypass the gateway are refused.
                direct = httpx.post(subgraph_url, json={"query": "{ __typename }"})
                assert direct.status_code == 401, direct.text
            yield Supergraph(f"http://127.0.0.1:{gateway_port}/graphql", naming, summary, output)


def fetches_to(body: dict[str, Any], service: str) -> list[dict[str, Any]]:
    return [f for f in body["extensions"]["queryPlanFetches"] if f["serviceName"] == service]


def test_composes_without_errors_or_hints(supergraph: Supergraph) -> None:
    assert supergraph.compose_summary == {"errors": 0, "hints": 0, "guildErrors": 0}, (
        supergraph.compose_output
    )


def test_user_recommendations_carry_catalog_fields(
    supergraph: Supergraph, fresh_emulator: Emulator
) -> None:
    body = supergraph.query(
        '{ user(id: "user-0001") { name recommendations(numResults: 5) {'
        " recommendationId items { itemId score item { title price } } } } }",
        plan=True,
    )
    assert "errors" not in body, body
    user = body["data"]["user"]
    assert user["name"]
    items = user["recommendations"]["items"]
    assert len(items) == 5
    for entry in items:
        assert entry["item"]["title"]
        assert entry["item"]["price"] > 0
    assert [f["serviceName"] for f in body["extensions"]["queryPlanFetches"]] == [
        "catalog",
        "recommendations",
        "catalog",
    ]
    print(f"\n[{supergraph.naming.type_name}] query plan:\n{body['extensions']['queryPlan']}")
    print(f"gateway round trip: {supergraph.last_latency * 1000:.1f} ms")
    assert fresh_emulator.calls() == 1


def test_item_related_through_the_gateway(supergraph: Supergraph) -> None:
    naming = supergraph.naming
    body = supergraph.query(
        f'{{ {naming.query_field}({naming.key}: "item-0042") {{ title related(numResults: 3) {{'
        f" items {{ item {{ {naming.key} title price }} }} }} }} }}"
    )
    assert "errors" not in body, body
    item = body["data"][naming.query_field]
    assert item["title"]
    related = item["related"]["items"]
    assert len(related) == 3
    assert all(r["item"]["title"] and r["item"][naming.key] != "item-0042" for r in related)


def test_twenty_users_are_one_entities_request_and_one_call_per_distinct_user(
    supergraph: Supergraph, fresh_emulator: Emulator
) -> None:
    # 20 ids, 16 distinct: the gateway sends one _entities request for all of them.
    ids = [f"user-{i:04d}" for i in range(200, 216)] + ["user-0200", "user-0201"] * 2
    id_list = ", ".join(f'"{i}"' for i in ids)
    body = supergraph.query(
        f"{{ users(ids: [{id_list}]) {{ id recommendations(numResults: 3) {{"
        " items { item { title } } } } }",
        plan=True,
    )
    assert "errors" not in body, body
    users = body["data"]["users"]
    assert len(users) == 20
    assert all(len(u["recommendations"]["items"]) == 3 for u in users)
    [fetch] = fetches_to(body, "recommendations")
    assert "_entities" in fetch["operation"]
    assert fresh_emulator.calls() == len(set(ids))
    print(f"20 users through the gateway: {supergraph.last_latency * 1000:.1f} ms")


def test_country_from_the_catalog_becomes_personalize_context(
    supergraph: Supergraph, fresh_emulator: Emulator
) -> None:
    body = supergraph.query(
        '{ user(id: "user-0003") { country recommendations(numResults: 2) { items { itemId } } } }'
    )
    assert "errors" not in body, body
    country = body["data"]["user"]["country"]
    assert country
    sent = fresh_emulator.requests()
    assert [r["body"].get("context") for r in sent] == [{"COUNTRY": country}]
    assert sent[0]["body"]["userId"] == "user-0003"


@pytest.fixture(scope="module")
def demo_items() -> Dataset:
    """The demo shop the emulator serves (seed 7), for the items' own columns."""
    return generate_demo_dataset(7)


def test_a_price_filter_and_the_catalog_agree_on_every_item(
    supergraph: Supergraph, demo_items: Dataset
) -> None:
    naming = supergraph.naming
    body = supergraph.query(
        # 27 of the demo's 2,000 items cost 10 or less.
        '{ user(id: "user-0001") { recommendations(numResults: 20,'
        " filter: { maxPrice: { maxPrice: 10 } }) { items { itemId"
        f" item {{ {naming.key} title category price }} }} }} }} }}"
    )
    assert "errors" not in body, body
    items = body["data"]["user"]["recommendations"]["items"]
    assert len(items) == 20
    table = demo_items.items
    for entry in items:
        shown, row = entry["item"], table.index[entry["itemId"]]
        assert shown[naming.key] == entry["itemId"]
        assert shown["price"] <= 10, entry
        assert shown["price"] == float(table.columns["PRICE"].strings[row])
        assert shown["title"] == table.columns["TITLE"].strings[row]
        assert shown["category"] == table.columns["CATEGORY"].strings[row]
    # Unfiltered, the same user is shown dearer items: the filter is what keeps them out.
    body = supergraph.query(
        '{ user(id: "user-0001") { recommendations(numResults: 20) { items { item { price } } } } }'
    )
    assert max(e["item"]["price"] for e in body["data"]["user"]["recommendations"]["items"]) > 10


def test_a_deduplicated_home_page_through_the_gateway(
    supergraph: Supergraph, fresh_emulator: Emulator
) -> None:
    body = supergraph.query(
        '{ user(id: "user-0004") { country recommendationPage(sections: ['
        "{useCase: RECOMMENDED_FOR_YOU, numResults: 6}, {useCase: USER_PERSONALIZATION,"
        " numResults: 6}, {useCase: BEST_SELLERS, numResults: 6}, {useCase: MOST_VIEWED,"
        " numResults: 6}]) { recommendationId source items { itemId item { title price } } } } }",
        plan=True,
    )
    assert "errors" not in body, body
    user = body["data"]["user"]
    page = user["recommendationPage"]
    assert [len(section["items"]) for section in page] == [6, 6, 6, 6]
    shown = [entry["itemId"] for section in page for entry in section["items"]]
    assert len(shown) == len(set(shown)), shown
    assert all(entry["item"]["title"] for section in page for entry in section["items"])
    assert len({section["recommendationId"] for section in page}) == 4
    assert {section["source"] for section in page} == {"PERSONALIZE"}
    assert [f["serviceName"] for f in body["extensions"]["queryPlanFetches"]] == [
        "catalog",
        "recommendations",
        "catalog",
    ]
    # One call per section, each with the user's country from the catalog (@requires).
    sent = fresh_emulator.requests()
    assert len(sent) == 4
    assert all(r["body"]["context"] == {"COUNTRY": user["country"]} for r in sent), sent


def test_a_scroll_through_the_gateway(supergraph: Supergraph, fresh_emulator: Emulator) -> None:
    """5 pages of 20 through the gateway: one call, the items of one call for 100, each
    completed by the catalog, the cursor bound to the context @requires brings."""
    shown: list[str] = []
    cursor = None
    pages = []
    for _ in range(5):
        after = f', after: "{cursor}"' if cursor else ""
        body = supergraph.query(
            f'{{ user(id: "user-0006") {{ recommendations(numResults: 20{after}) {{'
            " recommendationId items { itemId item { title } }"
            " pageInfo { endCursor hasNextPage } } } }"
        )
        assert "errors" not in body, body
        page = body["data"]["user"]["recommendations"]
        assert all(entry["item"]["title"] for entry in page["items"])
        shown += [entry["itemId"] for entry in page["items"]]
        pages.append(page)
        cursor = page["pageInfo"]["endCursor"]
    assert fresh_emulator.calls() == 1
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True] * 4 + [False]
    assert len({p["recommendationId"] for p in pages}) == 1
    body = supergraph.query(
        '{ user(id: "user-0006") { recommendations(numResults: 100) { items { itemId } } } }'
    )
    assert [e["itemId"] for e in body["data"]["user"]["recommendations"]["items"]] == shown
    sent = fresh_emulator.requests()
    assert [r["body"]["numResults"] for r in sent] == [100, 100]
    assert "COUNTRY" in sent[0]["body"]["context"]
    assert sent[0]["body"]["context"] == sent[1]["body"]["context"]


def test_a_product_page_through_the_gateway(supergraph: Supergraph) -> None:
    naming = supergraph.naming
    body = supergraph.query(
        f'{{ {naming.query_field}({naming.key}: "item-0042") {{ recommendationPage('
        'userId: "user-0005", sections: [{useCase: SIMILAR_ITEMS, numResults: 4},'
        " {useCase: CUSTOMERS_WHO_VIEWED, numResults: 4}, {useCase: BEST_SELLERS, numResults: 4}])"
        f" {{ items {{ item {{ {naming.key} title }} }} }} }} }}"
    )
    assert "errors" not in body, body
    page = body["data"][naming.query_field]["recommendationPage"]
    shown = [entry["item"][naming.key] for section in page for entry in section["items"]]
    assert len(shown) == 12
    assert len(set(shown)) == 12
    assert all(entry["item"]["title"] for section in page for entry in section["items"])


def test_a_cart_through_the_gateway(supergraph: Supergraph, fresh_emulator: Emulator) -> None:
    """A cart of three, one of which fails: the others' merge, re-ranked for the user and
    completed by the catalog, with the failed item's coded error passed on."""
    naming = supergraph.naming
    cart = ["item-0011", "item-0012", "item-0013"]
    fresh_emulator.faults(rules=[{"match": {"itemId": cart[1]}, "error": "InternalFailure"}])
    listed = ", ".join(f'"{i}"' for i in cart)
    body = supergraph.query(
        f'{{ cartRecommendations(itemIds: [{listed}], userId: "user-0007", numResults: 6)'
        f" {{ recommendationId source items {{ itemId item {{ {naming.key} title }} }} }} }}"
    )
    answer = body["data"]["cartRecommendations"]
    shown = [entry["itemId"] for entry in answer["items"]]
    assert len(shown) == 6
    assert len(set(shown)) == 6
    assert not set(shown) & set(cart)
    assert all(entry["item"]["title"] for entry in answer["items"])
    assert answer["recommendationId"]  # the re-ranking's
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE", error
    assert error["message"].startswith("itemIds[1] (item-0012): ")
    sent = fresh_emulator.requests()
    [ranking] = [r["body"] for r in sent if "inputList" in r["body"]]
    assert sorted(ranking["inputList"]) == sorted(shown)
    assert ranking["userId"] == "user-0007"


def test_an_experiment_through_the_gateway(
    supergraph: Supergraph, fresh_emulator: Emulator
) -> None:
    """The demo's HOME_HERO: each user gets their variant's use case (its ARN reaches
    Personalize), the catalog completes the items, the answer says which variant."""
    arns = {
        "control": "arn:aws:personalize:us-east-1:000000000000:recommender/recommended-for-you",
        "campaign": "arn:aws:personalize:us-east-1:000000000000:campaign/user-personalization",
    }
    seen = set()
    for n in range(1, 9):
        user = f"user-{n:04d}"
        variant = ["control", "campaign"][assign("HOME_HERO", "2026-12", user, [50, 50])]
        body = supergraph.query(
            f'{{ user(id: "{user}") {{ name recommendations(experiment: HOME_HERO,'
            " numResults: 3) { experiment { name variant } attributionSource"
            " items { itemId item { title } } } } }"
        )
        assert "errors" not in body, body
        answer = body["data"]["user"]["recommendations"]
        assert answer["experiment"] == {"name": "HOME_HERO", "variant": variant}
        assert answer["attributionSource"] == f"HOME_HERO:{variant}"
        assert all(entry["item"]["title"] for entry in answer["items"])
        sent = fresh_emulator.requests()
        body_sent = sent[-1]["body"]
        arn = body_sent.get("recommenderArn") or body_sent.get("campaignArn")
        assert arn == arns[variant]
        seen.add(variant)
    assert seen == {"control", "campaign"}
    refused = supergraph.query(
        '{ user(id: "user-0001") { recommendations(experiment: HOME_HERO,'
        " useCase: RECOMMENDED_FOR_YOU) { source } } }"
    )
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["BAD_USER_INPUT"]
