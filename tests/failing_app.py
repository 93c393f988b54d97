"""An ASGI app whose start-up always fails: what a worker does with a broken backend."""

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "the backend cannot start"})
