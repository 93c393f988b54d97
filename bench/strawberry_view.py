"""Strawberry's ASGI view (`strawberry.asgi.GraphQL`) where the app mounts its /graphql endpoint.

`mount_strawberry` replaces the endpoint of the app's /graphql route by Strawberry's
view over the same schema, with what the endpoint had: its per-request context (the
same loaders over the same backend) and its `OperationObserver` (counted and timed
like the endpoint's requests), so that only the view differs. Strawberry's documented
hooks only: `get_context`, and, with `fast_json`, `encode_json` writing with orjson as
the endpoint does (stock, it uses `json.dumps`).
"""

from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from observability.operations import OperationObserver
from resolvers.context import Context
from web.graphql_http import ContextFactory, GraphQLEndpoint
from web.request_id import REQUEST_ID


def _unheard(name: str | None, kind: str | None) -> None:
    return None


class StrawberryView(GraphQL[Context, None]):
    """Strawberry's view, giving resolvers the subgraph's context."""

    def __init__(
        self,
        schema: Any,
        context: ContextFactory,
        *,
        graphiql: bool,
        fast_json: bool,
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None)
        self._context = context
        self._fast_json = fast_json

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        if not isinstance(request, Request):
            raise TypeError("the subgraph serves no websockets")
        # Strawberry's view has no hook that reports the operation's name: nobody hears it.
        return self._context(request, _unheard)

    def encode_json(self, data: object) -> str | bytes:
        if self._fast_json:
            return orjson.dumps(data)
        return super().encode_json(data)


class Observed:
    """An ASGI app observed as the endpoint observes its requests (count, latency, status)."""

    def __init__(self, app: StrawberryView, observer: OperationObserver | None) -> None:
        self._app = app
        self._observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._observer is None:
            await self._app(scope, receive, send)
            return
        with self._observer.observe(Headers(scope=scope), REQUEST_ID.get()) as record:

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    record.status = message["status"]
                await send(message)

            await self._app(scope, receive, sending)
            record.outcome = "ok" if record.status == 200 else "request_error"


def mount_strawberry(app: Starlette, *, fast_json: bool) -> None:
    """Serve the app's /graphql with Strawberry's view instead of `GraphQLEndpoint`."""
    routes = [r for r in app.router.routes if isinstance(r, Route) and r.path == "/graphql"]
    if len(routes) != 1 or not isinstance(routes[0].endpoint, GraphQLEndpoint):
        raise RuntimeError("the app has no single /graphql route served by GraphQLEndpoint")
    route, endpoint = routes[0], routes[0].endpoint
    # The endpoint's own schema, context and observer.
    view = StrawberryView(
        endpoint.schema,
        endpoint.context_factory,
        graphiql=endpoint.serves_ide,
        fast_json=fast_json,
    )
    observed = Observed(view, endpoint.observer)
    route.endpoint = route.app = observed
