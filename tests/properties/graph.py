"""What the served graph offers, read from the running subgraph and its configuration file.

The property tests take field arguments, use-case enums and filter inputs from the live
schema (introspection) and, from the TOML file, only what the schema does not show:
which inputs each use case needs, which one is the default and which return metadata.
Nothing here imports the subgraph's internals, so the tests follow the product's wiring.
"""

import tomllib
from dataclasses import dataclass
from pathlib import Path

import graphql
import httpx

from backends.local import local_resources
from resolvers.naming import enum_member
from settings import LocalSettings, relative_to

# The fields that call Personalize, by owner: "user" / "item" entities, or the Query root.
FIELDS: dict[str, str | None] = {
    "recommendations": "user",
    "rankedItems": "user",
    "related": "item",
    "popularItems": None,
}


@dataclass(frozen=True)
class UseCase:
    """One configured use case as a client picks it (enum value) and what it needs."""

    enum_value: str
    input: str  # user | item | user_and_item | none
    metadata: bool  # returns item metadata: numResults <= 50
    default: bool


@dataclass(frozen=True)
class FieldSpec:
    """A field that calls Personalize: its arguments (GraphQL types) and use cases."""

    name: str
    owner: str | None
    arg_types: dict[str, str]
    use_cases: tuple[UseCase, ...]

    def use_case(self, chosen: str | None) -> UseCase:
        """The use case a request runs: the chosen one, else the default, else the first."""
        if chosen is not None:
            return next(c for c in self.use_cases if c.enum_value == chosen)
        return next((c for c in self.use_cases if c.default), self.use_cases[0])


@dataclass(frozen=True)
class FilterParam:
    """One placeholder of a filter: its GraphQL field and kind (strings, string, number)."""

    field: str
    kind: str


@dataclass(frozen=True)
class FilterSpec:
    """One `RecommendationFilter` field; no params means a Boolean switch."""

    name: str
    params: tuple[FilterParam, ...]


@dataclass(frozen=True)
class Graph:
    """Everything the strategies and the query builder need to know about the subgraph."""

    user_type: str
    user_key: str
    item_type: str
    item_key: str
    fields: dict[str, FieldSpec]
    filters: tuple[FilterSpec, ...]


def _param_kind(type_: graphql.GraphQLInputType) -> str:
    printed = str(type_)
    kinds = {"[String!]!": "strings", "String!": "string", "Float!": "number"}
    if printed not in kinds:
        raise AssertionError(f"a filter parameter of unexpected type {printed}")
    return kinds[printed]


def _filters(schema: graphql.GraphQLSchema) -> tuple[FilterSpec, ...]:
    named = schema.get_type("RecommendationFilter")
    if not isinstance(named, graphql.GraphQLInputObjectType):
        return ()
    specs = []
    for name, field in named.fields.items():
        inner = graphql.get_nullable_type(field.type)
        if isinstance(inner, graphql.GraphQLInputObjectType):
            params = tuple(FilterParam(p, _param_kind(f.type)) for p, f in inner.fields.items())
        else:
            params = ()
        specs.append(FilterSpec(name, params))
    return tuple(specs)


def live_schema(client: httpx.Client, url: str) -> graphql.GraphQLSchema:
    """The served schema: by introspection, else from `_service { sdl }` (federation)."""
    body = client.post(url, json={"query": graphql.get_introspection_query()}).json()
    if body.get("data"):
        return graphql.build_client_schema(body["data"])
    sdl = client.post(url, json={"query": "{ _service { sdl } }"}).json()["data"]["_service"]
    return graphql.build_schema(sdl["sdl"], assume_valid_sdl=True)


def load_graph(schema: graphql.GraphQLSchema, config: Path) -> Graph:
    """Combine the live schema with the configuration file the subgraph was started with."""
    doc = tomllib.loads(config.read_text(encoding="utf-8"))
    federation = doc.get("federation", {})
    user_type = federation.get("user_type", "User")
    item_type = federation.get("item_type", "Item")
    owners = {"user": user_type, "item": item_type, None: "Query"}
    # A use case whose ARN the engine does not serve answers from its fallback chain by
    # design (the demo's newArrivals); the properties are about the calls it does serve.
    local = relative_to(LocalSettings.model_validate(doc.get("local", {})), config)
    served = {d.arn for d in local_resources(local).deployments}
    configured = {
        name: case for name, case in doc.get("use_cases", {}).items() if case["arn"] in served
    }
    fields: dict[str, FieldSpec] = {}
    for name, owner in FIELDS.items():
        parent = schema.get_type(owners[owner])
        assert isinstance(parent, graphql.GraphQLObjectType), owners[owner]
        field = parent.fields.get(name)
        if field is None:
            continue
        cases = tuple(
            UseCase(
                enum_value=enum_member(case_name),
                input=case["input"],
                metadata=bool(case.get("metadata_columns")),
                default=bool(case.get("default", False)),
            )
            for case_name, case in configured.items()
            if case["field"] == name
        )
        if cases:
            arg_types = {arg: str(a.type) for arg, a in field.args.items()}
            fields[name] = FieldSpec(name, owner, arg_types, cases)
    return Graph(
        user_type=user_type,
        user_key=federation.get("user_key", "id"),
        item_type=item_type,
        item_key=federation.get("item_key", "id"),
        fields=fields,
        filters=_filters(schema),
    )
