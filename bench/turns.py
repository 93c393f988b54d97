"""Event-loop turns per query: graphql-core's path against the compiled one, side by side.

``python -m bench.turns`` (repo root, under a minute) runs the subgraph's app in this
process twice, with `server.compiled_path` on and off, against the emulator on loopback
(5 ms per call), and sends each page-shaped workload of `make bench` one query at a
time. It prints the loop turns each query took from arrival to answer, and the CPU.

Why turns: under load, each turn of the service's event loop waits for every other
operation's ready work. A home page with 10 more turns and the same CPU had a p50 4 to
9 ms higher at concurrency 8 (bench/README.md). The count depends on the machine far
less than time does: it is what the code asks of the loop, plus a turn or two for each
answer that arrives on its own (the emulator answers a page's calls one after another).
Turns are counted on asyncio's own loop (uvloop has no hook for it); the app otherwise
runs as `make bench` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.idle_cost import asgi_query
from bench.processes import running, start_emulator
from bench.workloads import WORKLOADS
from tests.servers import AWS_TEST_ENV

SHOWN = ("home", "product", "batch", "zipf")
DELAY_MS = 5.0


class TurnCounter:
    """Counts the iterations of the running asyncio loop."""

    def __init__(self) -> None:
        self.turns = 0

    def install(self) -> Callable[[], None]:
        """Count from now on; returns what puts the loop back as it was."""
        loop = asyncio.get_running_loop()
        original = loop._run_once  # type: ignore[attr-defined]

        def counted() -> None:
            self.turns += 1
            original()

        loop._run_once = counted  # type: ignore[attr-defined]
        return lambda: setattr(loop, "_run_once", original)


async def measure(compiled: bool, queries: int) -> dict[str, tuple[float, float]]:
    """Per workload: median turns per query and CPU ms per query."""
    os.environ["SUBGRAPH_SERVER__COMPILED_PATH"] = "true" if compiled else "false"
    import server  # after the environment names the emulator

    app = server.create_app()
    counter = TurnCounter()
    restore = counter.install()
    found: dict[str, tuple[float, float]] = {}
    try:
        async with app.router.lifespan_context(app):
            for name in SHOWN:
                workload = WORKLOADS[name]
                rng = random.Random(11)
                for _ in range(10):  # connections, caches and plans in place first
                    await asgi_query(app, workload.payload(rng))
                turns: list[int] = []
                cpu = 0.0
                for _ in range(queries):
                    body = workload.payload(rng)
                    before, started = counter.turns, time.process_time()
                    await asgi_query(app, body)
                    cpu += time.process_time() - started
                    turns.append(counter.turns - before)
                found[name] = (statistics.median(turns), cpu * 1000 / queries)
    finally:
        restore()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.turns", description=__doc__)
    parser.add_argument("--queries", type=int, default=100, help="per workload and path")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-turns-"))
    emulator, url = start_emulator(logs, DELAY_MS)
    with running([emulator]):
        os.environ.update(AWS_TEST_ENV)
        os.environ["SUBGRAPH_BACKEND"] = "personalize"
        os.environ["SUBGRAPH_PERSONALIZE__ENDPOINT_URL"] = url
        os.environ["LOG_LEVEL"] = "WARNING"
        general = asyncio.run(measure(False, args.queries))
        compiled = asyncio.run(measure(True, args.queries))
    print(
        f"one query at a time, {args.queries} per workload and path, emulator delay "
        f"{DELAY_MS:g} ms; median loop turns per query, and CPU ms per query (this process)"
    )
    print(f"  {'workload':10} {'graphql-core':>14} {'compiled':>10} {'ratio':>7}   CPU ms/q")
    for name in SHOWN:
        (g_turns, g_cpu), (c_turns, c_cpu) = general[name], compiled[name]
        print(
            f"  {name:10} {g_turns:14g} {c_turns:10g} {g_turns / c_turns:6.1f}x"
            f"   {g_cpu:.2f} vs {c_cpu:.2f} ({g_cpu / c_cpu:.1f}x)"
        )


if __name__ == "__main__":
    main()
