"""A small HTTP forward proxy on loopback, for tests of clients that honour HTTP(S)_PROXY.

It speaks what such clients send: `CONNECT host:port` (a tunnel, for https) and requests
in absolute form (`GET http://host:port/path HTTP/1.1`, for http), each forwarded on a
connection of its own. `GET /_proxy/stats` (origin form, asked of the proxy itself)
answers how many of each it has carried, so a test can tell whether traffic went
through it. Run it as `python -m tests.forward_proxy --port N`.
"""

import argparse
import asyncio
import json
from urllib.parse import urlsplit

STATS = {"connect": 0, "forwarded": 0}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _head(reader: asyncio.StreamReader) -> list[bytes]:
    lines = []
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        lines.append(line)
    return lines


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await _head(reader)
    if not head:
        writer.close()
        return
    method, target, version = head[0].decode("latin-1").split()
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        STATS["connect"] += 1
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        return
    if target.startswith("/"):
        body = json.dumps(STATS).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()
        return
    url = urlsplit(target)
    upstream_reader, upstream_writer = await asyncio.open_connection(url.hostname, url.port or 80)
    STATS["forwarded"] += 1
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    headers = [line for line in head[1:] if not line.lower().startswith(b"proxy-")]
    upstream_writer.write(f"{method} {path} {version}\r\n".encode() + b"".join(headers) + b"\r\n")
    await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


async def _serve(port: int) -> None:
    server = await asyncio.start_server(_handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.forward_proxy")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(_serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
