"""A bare home-page server: HTTP in, the home page's 4 Personalize calls, orjson out.

``python -m bench.bare_home --port P --emulator URL [--burn-ms 0.4]``

The floor of latency and CPU on this stack, for `make bench` and `bench.stack_floor`
to run beside the subgraph: a raw ASGI app on uvicorn (uvloop and httptools, as the
subgraph runs). For each home query it reads the user and the ids to rank from the
variables, makes the home page's 4 calls concurrently with the parameters the
subgraph sends (through `backends.http1`, the subgraph's own client; unsigned: the
emulator checks signatures only when asked), reads the answers with orjson and builds
the answer as `make bench`'s orjson floor does. No GraphQL, validation, cache or
metrics. `--burn-ms` spins that much CPU per query, half before the calls and half
after the answers.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from typing import Any

import orjson

from backends.http1 import ConnectionFailed, Pool
from bench.workloads import HOME, Carousel

# The ARNs of config/demo.toml the home page's four carousels use.
_ARN = "arn:aws:personalize:us-east-1:000000000000:"
_FOR_YOU = _ARN + "recommender/recommended-for-you"
_PICKS = _ARN + "campaign/user-personalization"
_EXCLUDE_PURCHASED = _ARN + "filter/exclude-purchased"
_RANKING = _ARN + "campaign/personalized-ranking"
_JSON = [(b"content-type", b"application/json")]


def home_calls(variables: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(path, parameters) of the four calls the subgraph makes for one home page."""
    user = variables["representations"][0]["id"]
    return [
        ("/recommendations", {"recommenderArn": _FOR_YOU, "userId": user, "numResults": 25}),
        ("/recommendations", {"campaignArn": _PICKS, "userId": user, "numResults": 25}),
        (
            "/recommendations",
            {
                "recommenderArn": _FOR_YOU,
                "userId": user,
                "numResults": 25,
                "filterArn": _EXCLUDE_PURCHASED,
            },
        ),
        (
            "/personalize-ranking",
            {"campaignArn": _RANKING, "userId": user, "inputList": variables["candidates"]},
        ),
    ]


def _burn(seconds: float) -> None:
    """Spin this thread for `seconds` of its own CPU time."""
    until = time.thread_time() + seconds
    while time.thread_time() < until:
        pass


class BareHome:
    """The raw ASGI app of `serve`: home pages with nothing but HTTP, calls and orjson."""

    def __init__(self, emulator: str, burn_ms: float) -> None:
        self._emulator = emulator
        self._half_burn = burn_ms / 2000
        self._headers = {
            "Host": emulator.split("://", 1)[1],
            "Content-Type": "application/json",
        }
        self._pool: Pool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            status, body = await self._answer(scope, receive)
            await send({"type": "http.response.start", "status": status, "headers": _JSON})
            await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._pool = Pool(self._emulator, max_idle=64, connect_timeout=5, read_timeout=10)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._pool is not None:
                    await self._pool.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _answer(self, scope: dict[str, Any], receive: Any) -> tuple[int, bytes]:
        if scope["path"] == "/healthz":
            return 200, b'{"status":"ok"}'
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        try:
            variables = orjson.loads(b"".join(chunks)).get("variables")
        except (orjson.JSONDecodeError, AttributeError):
            return 400, b'{"errors":[{"message":"not a JSON object"}]}'
        if not variables:  # the load generator's `{ __typename }` before a cell
            return 200, b'{"data":{"__typename":"Query"}}'
        _burn(self._half_burn)
        try:
            raw = await asyncio.gather(*(self._call(p, q) for p, q in home_calls(variables)))
        except (ConnectionFailed, TimeoutError, ValueError) as exc:
            return 502, orjson.dumps({"errors": [{"message": str(exc)}]})
        answer = orjson.dumps(HOME.build(raw))
        _burn(self._half_burn)
        return 200, answer

    async def _call(self, path: str, params: dict[str, Any]) -> Carousel:
        assert self._pool is not None
        response = await self._pool.post(path, self._headers, orjson.dumps(params))
        if response.status != 200:
            raise ValueError(f"{path}: HTTP {response.status}: {response.body[:200]!r}")
        answer = orjson.loads(response.body)
        # GetRecommendations answers an itemList, GetPersonalizedRanking a personalizedRanking.
        listed = answer.get("itemList", answer.get("personalizedRanking", ()))
        items = [(i["itemId"], i.get("score")) for i in listed]
        return answer.get("recommendationId"), items


def main(argv: Sequence[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.bare_home")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--burn-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    app = BareHome(args.emulator, args.burn_ms)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
