"""One id per request, taken from the caller (the gateway) or made here, echoed back.

The id is kept in a context variable so every log line of the request can carry it.
"""

import contextvars
import logging
import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# Anything else from outside is replaced: ids end up in logs and response headers.
_SAFE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


class RequestIdMiddleware:
    """Pure ASGI middleware: sets REQUEST_ID and the response header."""

    def __init__(self, app: ASGIApp, header: str) -> None:
        self._app = app
        self._header = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == self._header), b"")
        text = given.decode("latin-1")
        request_id = text if _SAFE.fullmatch(text) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[self._header.decode()] = request_id
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record, for formats and JSON logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True
