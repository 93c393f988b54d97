"""Wiring only: settings -> backend -> Starlette app (lifespan, routes, per-request context).

Run with `python server.py` (host and port from settings) or
`uvicorn --factory server:create_app`. Nothing happens at import time.
"""

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from backends.base import RecommendationBackend
from errors import ConfigurationError
from loaders.recommendations import Loaders, RecommendationLoader
from resolvers.context import Context
from schema.build import build_schema
from settings import Settings, load_settings

log = logging.getLogger("server")


class GraphQLView(GraphQL[Context, None]):
    """Strawberry's ASGI view with a fresh context per request and orjson responses."""

    def __init__(self, app: Starlette, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._app = app
        self._settings = settings

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        state = self._app.state
        return Context(
            loaders=Loaders(recommendations=RecommendationLoader(state.backend, state.limit)),
            settings=self._settings,
        )

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


@asynccontextmanager
async def _open_backend(settings: Settings) -> AsyncIterator[RecommendationBackend]:
    # Imported here so that a deployment on AWS never builds the demo engine and a
    # local run never creates a boto session.
    if settings.backend == "personalize":
        from backends.personalize import PersonalizeBackend

        async with PersonalizeBackend.open(settings.personalize) as personalize:
            yield personalize
    else:
        from backends.local import LocalBackend

        async with LocalBackend.open(settings.local) as local:
            yield local


def _checked_settings(settings: Settings | None) -> Settings:
    """Load and check the configuration; any problem exits with one line on stderr."""
    try:
        if settings is None:
            settings = load_settings()
        if settings.backend == "local":
            from backends.local import with_local_filters

            settings = with_local_filters(settings)
    except ConfigurationError as exc:
        print(f"personalize-subgraph: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return settings


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the app; a bad configuration exits with one line on stderr."""
    settings = _checked_settings(settings)
    schema = build_schema(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.backend = await stack.enter_async_context(_open_backend(settings))
            app.state.limit = asyncio.Semaphore(settings.personalize.max_concurrency)
            log.info("backend %s ready", app.state.backend.source)
            yield

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(lifespan=lifespan)
    view = GraphQLView(
        app,
        settings,
        schema=schema,
        graphql_ide="graphiql" if settings.server.graphiql else None,
    )
    app.router.routes.extend(
        [
            Route("/graphql", view, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    return app


def main() -> None:
    """`python server.py`: serve on the configured host and port."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    settings = _checked_settings(None)
    uvicorn.run(
        "server:create_app",
        factory=True,
        host=settings.server.host,
        port=settings.server.port,
        workers=int(os.environ.get("WORKERS", "1")),
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
    )


if __name__ == "__main__":
    main()
