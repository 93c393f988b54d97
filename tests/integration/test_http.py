"""GraphQL over HTTP: methods, media types, status codes, limits, secret, CORS, request ids.

Every refusal is JSON with a coded error; nothing internal reaches the client.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Subgraph, codes, start_subgraph

GRAPHQL_RESPONSE = "application/graphql-response+json"
SECRET = "s3cret-shared-with-the-gateway"
ORIGIN = "https://shop.example"


@pytest.fixture(scope="module")
def locked(logs: Path) -> Iterator[Subgraph]:
    """Production settings: secret required, no introspection, no GraphiQL, one CORS origin."""
    yield from start_subgraph(
        logs,
        "subgraph-locked",
        {
            "SUBGRAPH_BACKEND": "local",
            "SUBGRAPH_SERVER__SHARED_SECRET": SECRET,
            "SUBGRAPH_SERVER__INTROSPECTION": "false",
            "SUBGRAPH_SERVER__GRAPHIQL": "false",
            "SUBGRAPH_SERVER__CORS_ORIGINS": f'["{ORIGIN}"]',
        },
    )


def post(url: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/graphql", json=body, headers=headers, timeout=30)


def error_codes(response: httpx.Response) -> list[str]:
    return codes(response.json())


def test_get_serves_queries(local_subgraph: Subgraph) -> None:
    response = httpx.get(
        f"{local_subgraph.url}/graphql",
        params={
            "query": "query Q($n: Int) { popularItems(numResults: $n) { source } }",
            "variables": '{"n": 2}',
            "operationName": "Q",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json() == {"data": {"popularItems": {"source": "LOCAL"}}}


def test_get_refuses_mutations(local_subgraph: Subgraph) -> None:
    response = httpx.get(f"{local_subgraph.url}/graphql", params={"query": "mutation { x }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert error_codes(response) == ["METHOD_NOT_ALLOWED"]


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_refused(local_subgraph: Subgraph, method: str) -> None:
    response = httpx.request(method, f"{local_subgraph.url}/graphql", json={"query": "{ a }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert error_codes(response) == ["METHOD_NOT_ALLOWED"]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"query": "{ __typename }"}'),
        ("application/graphql", b"{ __typename }"),
        ("application/x-www-form-urlencoded", b"query=%7B__typename%7D"),
        ("application/json; charset=latin-1", b'{"query": "{ __typename }"}'),
    ],
)
def test_post_needs_json(local_subgraph: Subgraph, content_type: str, body: bytes) -> None:
    response = httpx.post(
        f"{local_subgraph.url}/graphql", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert error_codes(response) == ["UNSUPPORTED_MEDIA_TYPE"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'[{"query": "{ __typename }"}]',
        b'"query"',
        b'{"query": 7}',
        b'{"query": ""}',
        b"{}",
        b'{"query": "{ __typename }", "variables": [1]}',
        b'{"query": "{ __typename }", "operationName": 3}',
        b'{"query": "{ __typename }", "extensions": "x"}',
        b"\xff\xfe",
    ],
)
def test_malformed_requests_get_400(local_subgraph: Subgraph, body: bytes) -> None:
    response = httpx.post(
        f"{local_subgraph.url}/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_codes(response) == ["BAD_REQUEST"]


def test_status_follows_the_accepted_media_type(local_subgraph: Subgraph) -> None:
    invalid = {"query": "{ nope }"}
    legacy = post(local_subgraph.url, invalid, accept="application/json")
    assert legacy.status_code == 200
    assert error_codes(legacy) == ["GRAPHQL_VALIDATION_FAILED"]
    modern = post(local_subgraph.url, invalid, accept=f"{GRAPHQL_RESPONSE}, application/json;q=0.9")
    assert modern.status_code == 400
    assert modern.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "data" not in modern.json()
    assert error_codes(post(local_subgraph.url, {"query": "{"}, accept=GRAPHQL_RESPONSE)) == [
        "GRAPHQL_PARSE_FAILED"
    ]
    # Executed, even with a field error: 200 with data.
    ok = post(local_subgraph.url, {"query": "{ popularItems { source } }"}, accept=GRAPHQL_RESPONSE)
    assert ok.status_code == 200
    assert ok.json()["data"] == {"popularItems": {"source": "LOCAL"}}


def test_an_unacceptable_accept_header_gets_406(local_subgraph: Subgraph) -> None:
    response = post(local_subgraph.url, {"query": "{ __typename }"}, accept="image/png")
    assert response.status_code == 406
    assert error_codes(response) == ["NOT_ACCEPTABLE"]


def test_an_unknown_operation_name_is_a_request_error(local_subgraph: Subgraph) -> None:
    request = {"query": "query A { __typename }", "operationName": "B"}
    modern = post(local_subgraph.url, request, accept=GRAPHQL_RESPONSE)
    assert modern.status_code == 400
    assert error_codes(modern) == ["OPERATION_RESOLUTION_FAILURE"]
    # A well-formed GraphQL request: legacy JSON clients get 200 and the error.
    legacy = post(local_subgraph.url, request)
    assert legacy.status_code == 200
    assert error_codes(legacy) == ["OPERATION_RESOLUTION_FAILURE"]


def test_graphiql_is_served_to_browsers(local_subgraph: Subgraph) -> None:
    response = httpx.get(f"{local_subgraph.url}/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_operation_limits_have_their_own_codes(local_subgraph: Subgraph) -> None:
    nest = "items { item { related { %s } } }"
    deep = "{ popularItems { " + nest % nest % nest % "items { item { id } }" + " } }"
    assert error_codes(post(local_subgraph.url, {"query": deep})) == ["MAX_DEPTH_LIMIT"]
    aliases = "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"
    assert error_codes(post(local_subgraph.url, {"query": aliases})) == ["MAX_ALIASES_LIMIT"]
    tokens = "{ " + "__typename " * 2100 + "}"
    assert error_codes(post(local_subgraph.url, {"query": tokens})) == ["MAX_TOKENS_LIMIT"]
    # Depth counts through fragments.
    fragment = (
        "query { popularItems { ...P } } fragment P on Recommendations { "
        + nest % nest % nest % "items { item { id } }"
        + " }"
    )
    assert error_codes(post(local_subgraph.url, {"query": fragment})) == ["MAX_DEPTH_LIMIT"]
    # The standard introspection query is not held to the depth limit.
    from graphql import get_introspection_query

    full = post(local_subgraph.url, {"query": get_introspection_query(descriptions=True)})
    assert "errors" not in full.json()


def test_large_bodies_get_413(local_subgraph: Subgraph) -> None:
    big = {"query": "{ __typename }", "variables": {"pad": "x" * 1_200_000}}
    response = post(local_subgraph.url, big)
    assert response.status_code == 413
    assert error_codes(response) == ["PAYLOAD_TOO_LARGE"]
    # Without a Content-Length (chunked), the size is counted as the body arrives.
    chunked = httpx.post(
        f"{local_subgraph.url}/graphql",
        content=iter([b'{"query": "{ __typename }", "pad": "', b"x" * 1_200_000, b'"}']),
        headers={"content-type": "application/json"},
    )
    assert chunked.status_code == 413


def test_request_ids_are_propagated_or_made(local_subgraph: Subgraph) -> None:
    given = post(local_subgraph.url, {"query": "{ __typename }"}, **{"x-request-id": "gw-123.abc"})
    assert given.headers["x-request-id"] == "gw-123.abc"
    made = post(local_subgraph.url, {"query": "{ __typename }"})
    assert len(made.headers["x-request-id"]) == 32
    # An unsafe id (it would land in logs) is replaced.
    odd = post(local_subgraph.url, {"query": "{ __typename }"}, **{"x-request-id": "a b\tc"})
    assert odd.headers["x-request-id"] != "a b\tc"


def test_the_secret_is_required(locked: Subgraph) -> None:
    query = {"query": "{ popularItems { source } }"}
    missing = post(locked.url, query)
    assert missing.status_code == 401
    assert error_codes(missing) == ["UNAUTHENTICATED"]
    wrong = post(locked.url, query, **{"x-subgraph-secret": SECRET[:-1] + "X"})
    assert wrong.status_code == 401
    right = post(locked.url, query, **{"x-subgraph-secret": SECRET})
    assert right.json() == {"data": {"popularItems": {"source": "LOCAL"}}}
    # Health checks come from the platform, not the gateway.
    assert httpx.get(f"{locked.url}/healthz").status_code == 200


def test_introspection_and_graphiql_can_be_turned_off(locked: Subgraph) -> None:
    headers = {"x-subgraph-secret": SECRET}
    body = post(locked.url, {"query": "{ __schema { queryType { name } } }"}, **headers).json()
    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "introspection" in body["errors"][0]["message"].lower()
    # The gateway's own way of reading the schema still works.
    sdl = post(locked.url, {"query": "{ _service { sdl } }"}, **headers).json()
    assert "type Query" in sdl["data"]["_service"]["sdl"]
    page = httpx.get(f"{locked.url}/graphql", headers={"accept": "text/html", **headers})
    # Without GraphiQL there is nothing for a browser that accepts only HTML.
    assert page.status_code == 406
    assert error_codes(page) == ["NOT_ACCEPTABLE"]


def test_cors_allows_only_the_configured_origins(
    locked: Subgraph, local_subgraph: Subgraph
) -> None:
    def preflight(origin: str, url: str = locked.url) -> httpx.Response:
        return httpx.options(
            f"{url}/graphql",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )

    allowed = preflight(ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    refused = preflight("https://evil.example")
    assert "access-control-allow-origin" not in refused.headers
    # The default subgraph sends no CORS headers at all.
    assert "access-control-allow-origin" not in preflight(ORIGIN, local_subgraph.url).headers


def test_subscriptions_over_post_are_refused_as_graphql_errors(local_subgraph: Subgraph) -> None:
    request = {"query": "subscription { ticks }"}
    modern = post(local_subgraph.url, request, accept=GRAPHQL_RESPONSE)
    assert modern.status_code == 400
    assert error_codes(modern) == ["GRAPHQL_VALIDATION_FAILED"]
    assert post(local_subgraph.url, request).status_code == 200


def test_bad_representations_get_coded_errors_at_their_index(local_subgraph: Subgraph) -> None:
    query = """{ _entities(representations: [
        "x", {id: "1"}, {__typename: "User", id: "user-0001"}, {__typename: "Nope", id: "1"},
        {__typename: "User"}, {__typename: "User", id: {a: 1}}]) {
          ... on User { id recommendations(numResults: 1) { source } } } }"""
    response = post(local_subgraph.url, {"query": query}, accept=GRAPHQL_RESPONSE)
    # Executed: 200 and data, whatever the errors.
    assert response.status_code == 200
    body = response.json()
    entities = body["data"]["_entities"]
    assert entities[2] == {"id": "user-0001", "recommendations": {"source": "LOCAL"}}
    assert [e is None for e in entities] == [True, True, False, True, True, True]
    assert sorted(e["path"][1] for e in body["errors"]) == [0, 1, 3, 4, 5]
    assert set(error_codes(response)) == {"BAD_USER_INPUT"}
