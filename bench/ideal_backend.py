"""A stand-in Personalize Runtime that costs next to nothing: fixed answers, exact delay.

``python -m bench.ideal_backend --port P [--delay-ms 20]``

For `bench.stack_floor --backend ideal`: what the servers' latency would be if the
backend answered every call exactly `--delay-ms` after it arrived and took none of
this machine's CPU (the emulator computes each answer on the same cores, 40-50% of
a core under the home page's load). A raw asyncio protocol on uvloop: every
GetRecommendations call gets the same 25 items and every GetPersonalizedRanking call
the same 10, whatever it asked; an answer due is written from a timer at its arrival
plus the delay. It speaks the emulator's `/_emulator/health` and `/_emulator/stats`
(`{"total": calls}`), which the bench reads. Nothing here checks a request: it is a
measuring instrument, not an emulator.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import cast

import httptools
import orjson
import uvloop

_ITEMS = [{"itemId": f"item-{n:04d}", "score": round(1.0 / (n + 1), 6)} for n in range(1, 26)]


def _http(body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
    return head % (content_type, len(body)) + body


_ANSWERS = {
    b"/recommendations": _http(orjson.dumps({"itemList": _ITEMS, "recommendationId": "RID-i"})),
    b"/personalize-ranking": _http(
        orjson.dumps({"personalizedRanking": _ITEMS[:10], "recommendationId": "RID-r"})
    ),
}
_HEALTH = _http(b'{"status":"ok"}')
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


class _Calls:
    total = 0


class _Connection(asyncio.Protocol):
    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are asyncio.Transport in all but name (not subclasses).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url = url

    def on_message_complete(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        path = self._url.split(b"?", 1)[0]
        answer = _ANSWERS.get(path)
        if answer is not None:
            _Calls.total += 1
            loop = asyncio.get_running_loop()
            loop.call_at(loop.time() + self._delay_s, _write, transport, answer)
        elif path == b"/_emulator/health":
            transport.write(_HEALTH)
        elif path == b"/_emulator/stats":
            transport.write(_http(orjson.dumps({"total": _Calls.total})))
        else:
            transport.write(_NOT_FOUND)


def _write(transport: asyncio.Transport, answer: bytes) -> None:
    if not transport.is_closing():
        transport.write(answer)


async def _serve(host: str, port: int, delay_ms: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(delay_ms / 1000.0), host, port)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ideal_backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    uvloop.run(_serve(args.host, args.port, args.delay_ms))


if __name__ == "__main__":
    main()
