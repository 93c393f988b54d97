"""The shipped app with graphql-core answering every field: the equivalence test's reference.

`server.create_app` builds its schema with `schema.build.build_schema(settings)`, whose
`fast_lists=False` leaves every field to graphql-core and Strawberry (no compiled path,
no list plans, no direct resolvers). No setting selects that schema, so this factory
hands `create_app` the reference build and keeps everything else as shipped: endpoint,
backend, cache, limits and error coding. It refuses to start if `create_app` no longer
builds its schema through `server.build_schema`, rather than quietly serve the fast one.

Run it as `python -m uvicorn tests.properties.reference_app:create_app --factory`.
"""

from starlette.applications import Starlette

import server
from schema.build import SubgraphSchema, build_schema
from settings import Settings


def create_app() -> Starlette:
    """`server.create_app()` (settings from the environment) over the reference schema."""
    built: list[SubgraphSchema] = []

    def reference(settings: Settings, *, fast_lists: bool = True) -> SubgraphSchema:
        schema = build_schema(settings, fast_lists=False)
        built.append(schema)
        return schema

    # The name `create_app` looks up when it builds the schema (imported there, not
    # re-exported, hence the ignore).
    server.build_schema = reference  # type: ignore[attr-defined]
    app = server.create_app()
    if len(built) != 1 or built[0].operation_plans is not None:
        raise RuntimeError("server.create_app did not build the reference schema")
    return app
