"""The /graphql view: the app's `GraphQLEndpoint` against Strawberry's ASGI view, on uvicorn.

Three servers (`python -m bench.view_server`), each the same app with the same settings
(every use case cached, the compiled path off) on uvicorn on loopback, /graphql served
by ours, by Strawberry's stock view, or by Strawberry's view writing JSON with orjson.
The bench sends each the same request over keep-alive connections
(`backends.http1.Pool`, a few at a time) and reads the server's CPU from /proc
(`bench.processes.cpu_seconds`): the request's whole way through uvicorn, the app's
middleware, the view and the execution, which only the view tells apart. Two requests:
the home query (the brief's, about 2 ms of graphql-core execution with the compiled path
off), and `{ __typename }`, which leaves little but the view, uvicorn and the app's
middleware. The rounds take turns over the three servers; every answer must be a 200
without errors, the three must answer the same data, and the emulator's counter says
whether any call was made.
"""

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from backends.http1 import Pool
from bench.processes import Proc, cpu_seconds, start_process
from bench.side_by_side import Comparison, Side, measure
from bench.view_server import VIEWS
from tests.servers import free_port

HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# The least a request can ask: what is left is the view's own cost, uvicorn's and the app's.
TYPENAME_BODY = b'{"query": "{ __typename }"}'


@dataclass(frozen=True)
class Server:
    """A view server under test: its process and its base URL."""

    view: str
    proc: Proc
    url: str


@dataclass(frozen=True)
class ViewCosts:
    """Ours against each of Strawberry's views, from the same rounds."""

    against: dict[str, Comparison]
    # Personalize calls the servers made while measured (0: every answer was cached).
    calls: int


def start_view_servers(logs: Path, emulator: str) -> list[Server]:
    """One server per view, started (not yet ready: `bench.processes.running` waits)."""
    servers = []
    for view in VIEWS:
        url = f"http://127.0.0.1:{free_port()}"
        env = {
            "SUBGRAPH_BACKEND": "personalize",
            "SUBGRAPH_PERSONALIZE__ENDPOINT_URL": emulator,
            "LOG_LEVEL": "WARNING",
        }
        args = ["-m", "bench.view_server", "--view", view, "--port", url.rsplit(":", 1)[1]]
        servers.append(
            Server(view, start_process(f"view-{view}", args, f"{url}/healthz", logs, env), url)
        )
    return servers


async def _emulator_calls(emulator: str) -> int:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{emulator}/_emulator/stats")
        response.raise_for_status()
        total: int = response.json()["total"]
        return total


def _sender(
    pool: Pool, host: str, body: bytes, concurrency: int
) -> Callable[[int], Awaitable[None]]:
    headers = {"Host": host, **HEADERS}

    async def one() -> None:
        response = await pool.post("/graphql", headers, body)
        if response.status != 200 or b'"errors"' in response.body:
            raise RuntimeError(f"status {response.status}: {response.body[:300]!r}")

    async def run(n: int) -> None:
        remaining = iter(range(n))

        async def worker() -> None:
            for _ in remaining:
                await one()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    return run


async def view_costs(
    servers: Mapping[str, Server],
    emulator: str,
    body: bytes,
    *,
    requests: int,
    rounds: int,
    concurrency: int,
) -> ViewCosts:
    """CPU µs per request (`body`) of each server; ours against each of the others."""
    pools = {
        view: Pool(s.url, max_idle=concurrency, connect_timeout=5.0, read_timeout=30.0)
        for view, s in servers.items()
    }
    try:
        datas = []
        for view, pool in pools.items():
            host = servers[view].url.split("//", 1)[1]
            response = await pool.post("/graphql", {"Host": host, **HEADERS}, body)
            datas.append(orjson.loads(response.body).get("data"))
        if any(data != datas[0] or data is None for data in datas):
            raise RuntimeError(f"the view servers answer {body[:60]!r} with different data")
        sides = {
            view: Side(
                _sender(pool, servers[view].url.split("//", 1)[1], body, concurrency),
                functools.partial(cpu_seconds, servers[view].proc.proc.pid),
            )
            for view, pool in pools.items()
        }
        # Warmed once more here, so that the counter below sees the measured rounds only.
        for side in sides.values():
            await side.run(concurrency * 4)
        before = await _emulator_calls(emulator)
        found = await measure(sides, ops=requests, rounds=rounds)
        calls = await _emulator_calls(emulator) - before
    finally:
        for pool in pools.values():
            await pool.aclose()
    ours = found["ours"]
    return ViewCosts({v: Comparison(ours, found[v]) for v in found if v != "ours"}, calls)


# (what, method, extra headers, body): requests a client may get wrong, or a gateway may
# send with the newer media type, and what each view answers to them.
ODD_REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    (
        "validation error, Accept graphql-response+json",
        "POST",
        {"Accept": "application/graphql-response+json"},
        b'{"query": "{ unknownField }"}',
    ),
    ("body not JSON", "POST", {}, b"{not json"),
    (
        "Content-Type text/plain",
        "POST",
        {"Content-Type": "text/plain"},
        b'{"query": "{ __typename }"}',
    ),
    ("PUT", "PUT", {}, b'{"query": "{ __typename }"}'),
    (
        "body over max_body_bytes",
        "POST",
        {},
        b'{"query": "{ __typename }", "x": "' + b"a" * 1_100_000 + b'"}',
    ),
    ("no query", "POST", {}, b"{}"),
]


def _answer(response: httpx.Response) -> str:
    kind = response.headers.get("content-type", "").split(";")[0]
    try:
        errors = response.json().get("errors") or []
        codes = ",".join(str((e.get("extensions") or {}).get("code")) for e in errors)
        detail = f"errors {codes or 'none'}"
    except ValueError:
        detail = f"text {response.text[:40]!r}"
    return f"{response.status_code} {kind} {detail}"


async def behaviour_differences(servers: Mapping[str, Server], library: str) -> list[str]:
    """One line per odd request that `library`'s server answers differently from ours."""
    found = []
    async with httpx.AsyncClient(timeout=30.0) as client:
        for what, method, extra, body in ODD_REQUESTS:
            answers = {}
            for view in ("ours", library):
                response = await client.request(
                    method,
                    f"{servers[view].url}/graphql",
                    content=body,
                    headers={**HEADERS, **extra},
                )
                answers[view] = _answer(response)
            if answers["ours"] != answers[library]:
                found.append(f"{what}: ours {answers['ours']}; library {answers[library]}")
    return found
