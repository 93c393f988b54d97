"""Schemathesis' GraphQL fuzzing of the live /graphql endpoint (demo config, local engine).

The schema is loaded from the running subgraph by introspection. Schemathesis generates
queries for `popularItems`, `recommendationPage`, `cartRecommendations` and `_entities`
(with inline fragments reaching `User.recommendations`, `User.rankedItems`,
`Item.related` and both entities' `recommendationPage`), in positive mode (valid
documents) and negative mode (one schema violation each). hypothesis-graphql does not
know `@oneOf`, so positive documents are repaired here (one field kept per `@oneOf`
object) before they are sent.

Schemathesis' own `not_a_server_error` check also fails on any GraphQL error, including a
correct BAD_USER_INPUT for numResults: 1000, so the checks here are ours: no 5xx, no
leak, every error coded, never INTERNAL_SERVER_ERROR, no upstream rejection, and a
negative case is always refused.
"""

import time
from collections.abc import Iterator
from typing import Any

import graphql
import httpx
import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.graphql import nodes

from tests.conftest import Subgraph
from tests.fuzz.conftest import TALLY, assert_safe, fuzz_settings

# Per mode, over both operations: 2 x 100 = 200 cases.
EXAMPLES = 100
UPSTREAM_REJECTED = "Personalize rejected the request"


def _field(name: str, value: graphql.ValueNode) -> graphql.ObjectFieldNode:
    return graphql.ObjectFieldNode(name=graphql.NameNode(value=name), value=value)


def _representation(pair: tuple[str, str]) -> graphql.ValueNode:
    typename, key = pair
    return nodes.Object(
        [_field("__typename", nodes.String(typename)), _field("id", nodes.String(key))]
    )


# `_Any` is federation's representation scalar: a gateway sends `{__typename, id}`.
schemathesis.graphql.scalar(
    "_Any",
    st.tuples(
        st.sampled_from(["User", "Item"]),
        st.one_of(
            st.integers(1, 2000).map(lambda i: f"user-{i:04d}"),
            st.integers(1, 2000).map(lambda i: f"item-{i:04d}"),
            st.text(max_size=6),
            st.text(min_size=250, max_size=260),
        ),
    ).map(_representation),
)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def live_graphql_schema(local_subgraph: Subgraph) -> Any:
    loaded = schemathesis.graphql.from_url(f"{local_subgraph.url}/graphql")
    # `_entities` is hidden by default; it is how a gateway reaches the entity fields.
    return loaded.include(
        name=[
            "Query.popularItems",
            "Query.recommendationPage",
            "Query.cartRecommendations",
            "Query._entities",
        ]
    )


class _OneOfRepair(graphql.Visitor):
    """Keeps one non-null field of every `@oneOf` object literal."""

    def __init__(self, type_info: graphql.TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info

    def leave_object_value(self, node: graphql.ObjectValueNode, *_: Any) -> Any:
        input_type = graphql.get_named_type(self.type_info.get_input_type())
        if not isinstance(input_type, graphql.GraphQLInputObjectType) or not input_type.is_one_of:
            return None
        fields = [f for f in node.fields if not isinstance(f.value, graphql.NullValueNode)]
        if not fields:
            # Every field was null: switch on a Boolean member if there is one.
            switches = [
                name
                for name, member in input_type.fields.items()
                if graphql.get_named_type(member.type) is graphql.GraphQLBoolean
            ]
            fields = [_field(name, nodes.Boolean(True)) for name in switches]
        return graphql.ObjectValueNode(fields=tuple(fields[:1]))


def repair_one_of(query: str, client_schema: graphql.GraphQLSchema) -> str:
    document = graphql.parse(query)
    type_info = graphql.TypeInfo(client_schema)
    visitor = graphql.TypeInfoVisitor(type_info, _OneOfRepair(type_info))
    return graphql.print_ast(graphql.visit(document, visitor))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_cases(
    mode: GenerationMode, live_graphql_schema: Any, local_subgraph: Subgraph, http: httpx.Client
) -> None:
    # Schemathesis' strategies driven by plain Hypothesis: its pytest plugin's lazy
    # fixture loading (`schemathesis.pytest.from_fixture`) fails on pytest 9
    # (AttributeError: 'Function' object has no attribute '_nodeid').
    url = f"{local_subgraph.url}/graphql"
    # Schemathesis' introspection does not ask for `isOneOf`; this one does.
    introspection = http.post(url, json={"query": graphql.get_introspection_query(one_of=True)})
    client_schema = graphql.build_client_schema(introspection.json()["data"])
    suite = f"schemathesis {mode.value}"

    @fuzz_settings(EXAMPLES)
    @given(case=live_graphql_schema.as_strategy(mode))
    def run(case: Any) -> None:
        query = case.body
        assert isinstance(query, str), query
        if mode is GenerationMode.POSITIVE:
            query = repair_one_of(query, client_schema)
        started = time.perf_counter()
        response = http.post(url, json={"query": query})
        TALLY.record(suite, response, time.perf_counter() - started)
        body = assert_safe(response, query)
        assert isinstance(body, dict), (query, response.text[:500])
        errors = body.get("errors") or []
        for error in errors:
            assert not error["message"].startswith(UPSTREAM_REJECTED), (query, error)
        if mode is GenerationMode.NEGATIVE:
            assert errors, (query, body)

    run()
