"""What idling between queries costs this machine: the same home pages, CPU per query.

``python -m bench.idle_cost`` (repo root, about 30 s) runs the subgraph's app in this
process against the emulator (no injected delay) and sends the bench's home page one
query at a time, resting 0, 2 or 20 ms between queries. The work per query is
identical; only the idle time around it differs, so the CPU each query costs shows what
the machine charges for waking up (caches and branch predictors refilled after another
process or the hypervisor ran, deeper idle states). The three rests take turns in
several rounds, and the ratios are against the 0 ms rest of the same run.

`make bench` measures the service with a 20 ms delay per call, so at concurrency 1 the
process rests about 20 ms between queries, and at concurrency 8 it is idle between
bursts about half the time: this is how much of its CPU per query that costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.processes import running, start_emulator
from bench.workloads import WORKLOADS
from tests.servers import AWS_TEST_ENV

RESTS_MS = (0.0, 2.0, 20.0)
HEADERS = [(b"host", b"bench"), (b"content-type", b"application/json")]


async def asgi_query(app: Any, body: bytes) -> None:
    """One POST /graphql through the ASGI app; the answer must be a 200."""
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [*HEADERS, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }
    await app(scope, receive, send)
    if sent[0]["status"] != 200 or b'"errors"' in sent[1]["body"]:
        raise RuntimeError(f"the home page failed: {sent[1]['body'][:300]!r}")


async def measure(queries: int, rounds: int) -> dict[float, float]:
    """CPU ms per query for each rest, summed over the rounds."""
    import server  # after the environment names the emulator

    app = server.create_app()
    rng = random.Random(7)
    home = WORKLOADS["home"]
    spent = dict.fromkeys(RESTS_MS, 0.0)
    async with app.router.lifespan_context(app):
        for _ in range(50):  # connections, caches and plans warm before measuring
            await asgi_query(app, home.payload(rng))
        for round_ in range(rounds):
            # Each round starts with a different rest, so drift over the run cancels out.
            order = RESTS_MS[round_ % len(RESTS_MS) :] + RESTS_MS[: round_ % len(RESTS_MS)]
            for rest in order:
                bodies = [home.payload(rng) for _ in range(queries)]
                for body in bodies:
                    await asyncio.sleep(rest / 1000)
                    started = time.process_time()
                    await asgi_query(app, body)
                    spent[rest] += time.process_time() - started
    return {rest: total * 1000 / (queries * rounds) for rest, total in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_cost", description=__doc__)
    parser.add_argument("--queries", type=int, default=150, help="per rest and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    emulator, url = start_emulator(logs, 0.0)
    with running([emulator]):
        os.environ.update(AWS_TEST_ENV)
        os.environ["SUBGRAPH_BACKEND"] = "personalize"
        os.environ["SUBGRAPH_PERSONALIZE__ENDPOINT_URL"] = url
        os.environ["LOG_LEVEL"] = "WARNING"
        cost = uvloop.run(measure(args.queries, args.rounds))
    print(
        f"home page, one query at a time, {args.queries * args.rounds} queries per rest, "
        f"{os.cpu_count()} CPUs; CPU of this process (the subgraph) per query:"
    )
    base = cost[RESTS_MS[0]]
    for rest, ms in cost.items():
        print(f"  rest {rest:4g} ms between queries: {ms:.3f} ms  ({ms / base:.2f}x the 0 ms rest)")


if __name__ == "__main__":
    main()
