"""The /graphql endpoint, speaking the GraphQL-over-HTTP specification.

- POST with `application/json` (anything else: 415); GET for queries only (a mutation
  over GET: 405); bodies over the configured size: 413, read to their end first within
  the drain bounds below, so that a client sending the body whole receives it. A GET's
  query string over its own limit: 414 (web/uvicorn_internals.py answers the same for a
  URL too long for uvicorn's parser, which the app never sees).
- The response is `application/graphql-response+json` when the client accepts it: then a
  request that fails before execution (parse, validation, limits) gets 400. Otherwise it
  is `application/json` and any well-formed GraphQL request gets 200.
- Every error, HTTP-level ones included, is a JSON `{"errors": [...]}` whose entries carry
  `extensions.code`; nothing internal (traceback, path, exception text) is ever sent.
- With a shared secret configured, requests without it get 401 before anything is read.

It replaces Strawberry's ASGI view, whose HTTP errors are plain text and whose status
codes do not follow the media type; execution is Strawberry's `schema.execute`, or the
compiled path (`schema.compiled`) for the operations a gateway sends.
"""

import asyncio
import hmac
import logging
from collections.abc import Callable
from typing import Any

import orjson
from graphql import ExecutionResult
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from domain.errors import ErrorCode
from observability.operations import OperationObserver, OperationRecord
from resolvers.context import Context
from schema.compiled import CompiledPath
from settings import ServerSettings
from web.graphiql import GraphiQL
from web.request_id import REQUEST_ID

log = logging.getLogger(__name__)

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
_ALLOWED = "GET, POST"

# After deciding 413, the rest of the body is read and dropped, up to these bounds, before
# answering. A client that sends the body whole (no `Expect: 100-continue`: Python's
# urllib, httpx, Node's fetch) reads the answer only once it has written the body; if the
# connection is closed with bytes of it unread (the client asked for `Connection: close`,
# as urllib does), the kernel resets it and the client sees ECONNRESET instead of the 413.
# Beyond the bounds (at once for a declared Content-Length past them) the answer goes out
# without waiting and uvicorn keeps reading and dropping the rest, so a keep-alive client
# still receives it; one that asked to close may see the reset. Saying `Connection: close`
# there instead would hand that reset to keep-alive clients too.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 5.0


class RequestError(Exception):
    """A request that cannot be executed; answered with `status` and one coded error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        graphql: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        # A well-formed GraphQL request that cannot run: legacy JSON clients get 200.
        self.graphql = graphql


def _media_types(accept: str) -> list[tuple[str, float]]:
    """(type, q) pairs of an Accept header; malformed parts are skipped."""
    found = []
    for part in accept.split(","):
        kind, *params = (p.strip() for p in part.split(";"))
        if not kind:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found.append((kind.lower(), q))
    return found


def response_media_type(accept: str | None) -> str | None:
    """The media type to answer with, or None when the client accepts neither of ours."""
    if not accept or not accept.strip():
        # Clients from before the spec: JSON.
        return JSON
    best: tuple[float, int, str] | None = None
    for kind, q in _media_types(accept):
        if q <= 0:
            continue
        if kind == GRAPHQL_RESPONSE:
            choice = (q, 1, GRAPHQL_RESPONSE)
        elif kind in (JSON, "application/*", "*/*"):
            choice = (q, 0, JSON)
        else:
            continue
        if best is None or choice > best:
            best = choice
    return best[2] if best else None


def _wants_ide(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return request.method == "GET" and "query" not in request.query_params and "text/html" in accept


# Builds a request's context; the callback hears the parsed operation's name and type.
ContextFactory = Callable[[Request, Callable[[str | None, str | None], None]], Context]


class GraphQLEndpoint:
    """An ASGI app for /graphql: parse the HTTP request, execute, encode the answer."""

    def __init__(
        self,
        schema: Any,
        context: ContextFactory,
        *,
        server: ServerSettings,
        max_body_bytes: int,
        max_query_bytes: int,
        compiled: CompiledPath | None = None,
        observer: OperationObserver | None = None,
    ) -> None:
        self._schema = schema
        # The compiled path for gateway operations; None: graphql-core answers all.
        self._compiled = compiled
        # Counts, times and traces each request; None in tests of the endpoint alone.
        self._observer = observer
        self._context = context
        self._max_body = max_body_bytes
        self._max_query = max_query_bytes
        self._ide = GraphiQL() if server.graphiql else None
        self._secret_header = server.shared_secret_header
        self._secret = (
            server.shared_secret.get_secret_value().encode() if server.shared_secret else None
        )

    @property
    def schema(self) -> Any:
        """The schema it executes."""
        return self._schema

    @property
    def context_factory(self) -> ContextFactory:
        """How it builds each request's context."""
        return self._context

    @property
    def observer(self) -> OperationObserver | None:
        """What counts, times and traces its requests."""
        return self._observer

    @property
    def serves_ide(self) -> bool:
        """Whether a browser's GET shows GraphiQL."""
        return self._ide is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if self._observer is None:
            response = await self.respond(request, OperationRecord())
        else:
            with self._observer.observe(request.headers, REQUEST_ID.get()) as record:
                response = await self.respond(request, record)
                record.status = response.status_code
        await response(scope, receive, send)

    async def respond(self, request: Request, record: OperationRecord) -> Response:
        """The response to `request`; what happened is written into `record`."""
        negotiated = response_media_type(request.headers.get("accept"))
        media = negotiated or JSON
        try:
            if request.method not in ("GET", "POST"):
                raise RequestError(
                    405,
                    ErrorCode.METHOD_NOT_ALLOWED,
                    "GraphQL is served over GET and POST",
                    {"Allow": _ALLOWED},
                )
            self._check_secret(request)
            if self._ide is not None and _wants_ide(request):
                record.skip = True
                return self._ide.page()
            if negotiated is None:
                raise RequestError(
                    406,
                    ErrorCode.NOT_ACCEPTABLE,
                    f"responses are {GRAPHQL_RESPONSE} or {JSON}; the Accept header allows neither",
                )
            params = await self._params(request)
            result = await self._execute(request, params, record)
        except RequestError as exc:
            record.outcome, record.codes = "request_error", (exc.code,)
            body = {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}
            status = 200 if exc.graphql and media == JSON else exc.status
            return self._response(body, status, media, exc.headers)
        # Field errors have a path; errors before execution (parse, validation, limits,
        # variable values) do not. An executed operation keeps `data`, even null.
        executed = result.data is not None or any(e.path for e in result.errors or ())
        payload: dict[str, Any] = {}
        if executed:
            payload["data"] = result.data
        if result.errors:
            payload["errors"] = errors = [error.formatted for error in result.errors]
            record.codes = tuple(
                dict.fromkeys(str((e.get("extensions") or {}).get("code")) for e in errors)
            )
        record.outcome = ("errors" if result.errors else "ok") if executed else "request_error"
        if result.extensions:
            payload["extensions"] = result.extensions
        # A request error is 400 under the newer media type; legacy JSON clients get 200
        # for any well-formed request.
        status = 400 if media == GRAPHQL_RESPONSE and not executed else 200
        return self._response(payload, status, media)

    def _check_secret(self, request: Request) -> None:
        if self._secret is None:
            return
        given = request.headers.get(self._secret_header, "").encode()
        if not hmac.compare_digest(given, self._secret):
            raise RequestError(
                401, ErrorCode.UNAUTHENTICATED, "this subgraph answers only its gateway"
            )

    async def _params(self, request: Request) -> dict[str, Any]:
        if request.method == "GET":
            if len(request.scope.get("query_string", b"")) > self._max_query:
                raise RequestError(
                    414,
                    ErrorCode.URI_TOO_LONG,
                    f"the query string is longer than {self._max_query} bytes; use POST",
                )
            return _from_query_string(request.query_params)
        content_type = request.headers.get("content-type", "")
        kind, *options = (p.strip().lower() for p in content_type.split(";"))
        charset = next((o.partition("=")[2] for o in options if o.startswith("charset=")), "utf-8")
        if kind != JSON or charset.strip('"') not in ("utf-8", "utf8"):
            raise RequestError(
                415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"POST bodies must be {JSON} (UTF-8)"
            )
        body = await self._body(request)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise RequestError(400, ErrorCode.BAD_REQUEST, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise RequestError(
                400,
                ErrorCode.BAD_REQUEST,
                "the body must be one JSON object (batching is not supported)",
            )
        return data

    def _too_large(self, *, close: bool = False) -> RequestError:
        return RequestError(
            413,
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"the body is larger than {self._max_body} bytes",
            {"Connection": "close"} if close else None,
        )

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        length = None
        if declared is not None:
            if not (declared.isascii() and declared.isdigit()):
                raise RequestError(400, ErrorCode.BAD_REQUEST, "Content-Length is not a number")
            length = int(declared)
            # A client waiting for `100 Continue` has not sent the body: refuse it unsent,
            # and close, or the connection stays mid-request for a body that never comes.
            waiting = request.headers.get("expect", "").lower() == "100-continue"
            if length > self._max_body and waiting:
                raise self._too_large(close=True)
            if length > self._max_body + DRAIN_BYTES:
                raise self._too_large()
        stream = request.stream()
        chunks: list[bytes] = []
        size = 0
        try:
            if length is None or length <= self._max_body:
                async for chunk in stream:
                    size += len(chunk)
                    if size > self._max_body:
                        break
                    chunks.append(chunk)
                else:
                    return b"".join(chunks)
            # 413 is decided (at once for a declared length over the limit, else when the
            # bytes received passed it): the rest is only drained, within the bounds.
            if size <= self._max_body + DRAIN_BYTES:
                async with asyncio.timeout(DRAIN_SECONDS):
                    async for chunk in stream:
                        size += len(chunk)
                        if size > self._max_body + DRAIN_BYTES:
                            break
        except TimeoutError:
            pass
        except ClientDisconnect:
            # Nobody is left to read the answer; this one is for the access log.
            raise RequestError(
                400, ErrorCode.BAD_REQUEST, "the client went away mid-body"
            ) from None
        raise self._too_large()

    async def _execute(
        self, request: Request, params: dict[str, Any], record: OperationRecord
    ) -> ExecutionResult:
        query = params.get("query")
        if not isinstance(query, str) or not query.strip():
            raise RequestError(400, ErrorCode.BAD_REQUEST, "`query` must be a non-empty string")
        variables = params.get("variables")
        if variables is not None and not isinstance(variables, dict):
            raise RequestError(400, ErrorCode.BAD_REQUEST, "`variables` must be an object")
        operation_name = params.get("operationName")
        if operation_name is not None and not isinstance(operation_name, str):
            raise RequestError(400, ErrorCode.BAD_REQUEST, "`operationName` must be a string")
        extensions = params.get("extensions")
        if extensions is not None and not isinstance(extensions, dict):
            raise RequestError(400, ErrorCode.BAD_REQUEST, "`extensions` must be an object")
        context = self._context(request, record.operation)
        if self._compiled is not None:
            compiled = await self._compiled.execute(query, variables, operation_name, context)
            if compiled is not None:
                return compiled
        allowed = (
            {OperationType.QUERY}
            if request.method == "GET"
            else {OperationType.QUERY, OperationType.MUTATION}
        )
        try:
            result: ExecutionResult = await self._schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
                allowed_operation_types=allowed,
                operation_extensions=extensions,
            )
        except InvalidOperationTypeError:
            if request.method == "GET":
                raise RequestError(
                    405,
                    ErrorCode.METHOD_NOT_ALLOWED,
                    "only queries may be sent with GET; use POST",
                    {"Allow": "POST"},
                ) from None
            raise RequestError(
                400,
                ErrorCode.GRAPHQL_VALIDATION_FAILED,
                "this endpoint serves queries and mutations, not subscriptions",
                graphql=True,
            ) from None
        except CannotGetOperationTypeError:
            name = f" named {operation_name!r}" if operation_name else ""
            raise RequestError(
                400,
                ErrorCode.OPERATION_RESOLUTION_FAILURE,
                f"the document has no single operation{name} to run",
                graphql=True,
            ) from None
        return result

    def _response(
        self,
        payload: dict[str, Any],
        status: int,
        media: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return Response(
            orjson.dumps(payload),
            status_code=status,
            media_type=f"{media}; charset=utf-8",
            headers=headers,
        )


def _from_query_string(query: QueryParams) -> dict[str, Any]:
    params: dict[str, Any] = {
        "query": query.get("query"),
        "operationName": query.get("operationName"),
    }
    for name in ("variables", "extensions"):
        raw = query.get(name)
        if raw:
            try:
                params[name] = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise RequestError(
                    400, ErrorCode.BAD_REQUEST, f"`{name}` is not valid JSON"
                ) from None
    return params
