"""Measuring a server under load: one cell is a workload at a concurrency against one target.

The load generator is the subgraph's own Personalize client (`backends.http1`) on
uvloop: one keep-alive connection per concurrent client, prebuilt requests, answers
parsed by httptools. Each cell is bounded by time and by count, and records every
query's latency, the server's and the emulator's CPU (from /proc) and the emulator's
call counter, all read after one unmeasured `{ __typename }` per connection. `pool`
makes one cell of a target's cells run at different times.
"""

import asyncio
import gc
import math
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from backends.http1 import ConnectionFailed, Pool
from bench.answers import HEADERS, clean, problems
from bench.processes import Proc, Target, check_alive, cpu_seconds
from bench.workloads import Workload

# Opens a client's connection before a cell without asking Personalize anything.
_WARMUP = orjson.dumps({"query": "{ __typename }"})


@dataclass
class Cell:
    """What one workload at one concurrency did to one target."""

    target: str
    workload: str
    concurrency: int
    delay_ms: float
    queries: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    requests: int = 0  # fields that asked Personalize
    server_cpu_s: float = 0.0
    emulator_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def qps(self) -> float:
        return self.queries / self.seconds if self.seconds else 0.0

    def overhead_ms(self, q: float) -> float:
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        index = max(0, math.ceil(q * len(ordered)) - 1)
        return ordered[index] - self.delay_ms

    @property
    def calls_per_query(self) -> float:
        return self.calls / self.queries if self.queries else math.nan

    @property
    def cpu_ms_per_query(self) -> float:
        return self.server_cpu_s * 1000 / self.queries if self.queries else math.nan

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "workload": self.workload,
            "concurrency": self.concurrency,
            "queries": self.queries,
            "seconds": round(self.seconds, 3),
            "qps": round(self.qps, 2),
            "p50_minus_delay_ms": round(self.overhead_ms(0.5), 3),
            "p90_minus_delay_ms": round(self.overhead_ms(0.9), 3),
            "p99_minus_delay_ms": round(self.overhead_ms(0.99), 3),
            "requests": self.requests,
            "calls": self.calls,
            "calls_per_query": round(self.calls_per_query, 3),
            "server_cpu_ms_per_query": round(self.cpu_ms_per_query, 3),
            "emulator_cpu_s": round(self.emulator_cpu_s, 3),
            "client_cpu_s": round(self.client_cpu_s, 3),
            "errors": dict(self.errors),
        }


def pool(cells: Sequence[Cell]) -> Cell:
    """One cell of several of the same target, workload and concurrency, run at other times.

    Latencies are pooled (its percentiles are over all of them, not an average of the
    cells' percentiles), and queries, time, calls, CPU and errors summed, so CPU per
    query is all the CPU over all the queries.
    """
    first = cells[0]
    pooled = Cell(first.target, first.workload, first.concurrency, first.delay_ms)
    for cell in cells:
        if (cell.target, cell.workload, cell.concurrency) != (
            first.target,
            first.workload,
            first.concurrency,
        ):
            raise ValueError(f"pooling {cell.target}/{cell.workload} with {first.target}")
        pooled.queries += cell.queries
        pooled.seconds += cell.seconds
        pooled.latencies_ms.extend(cell.latencies_ms)
        pooled.errors.update(cell.errors)
        pooled.calls += cell.calls
        pooled.requests += cell.requests
        pooled.server_cpu_s += cell.server_cpu_s
        pooled.emulator_cpu_s += cell.emulator_cpu_s
        pooled.client_cpu_s += cell.client_cpu_s
    return pooled


async def _emulator_calls(client: httpx.AsyncClient, emulator: str) -> int:
    response = await client.get(f"{emulator}/_emulator/stats")
    response.raise_for_status()
    total: int = response.json()["total"]
    return total


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The load generator's cyclic collector off while it times queries.

    This process holds 70,000 to 96,000 tracked objects, most of them built by its
    imports (aioboto3 for the client it measures, httpx). In one home-only run its
    collector paused it twice for full collections (the longest 65 ms) and 3 times over
    2 ms for young ones; every query in flight during a pause is timed that much slower,
    as if the target had been. Rare enough not to move the p99 check (three paired runs:
    9.7-10.6 ms with pauses allowed, 9.1-11.0 ms without), but they are not the target's.
    A cell makes no reference cycles of note, so the collector runs before and after it.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


@dataclass
class _Counters:
    """What a cell reads before its first measured query, to subtract at the end."""

    calls: int
    server_cpu_s: float
    emulator_cpu_s: float
    client_cpu_s: float
    started: float


async def _read_counters(
    control: httpx.AsyncClient, emulator: str, target_pid: int, emulator_pid: int
) -> _Counters:
    calls = await _emulator_calls(control, emulator)
    return _Counters(
        calls,
        cpu_seconds(target_pid),
        cpu_seconds(emulator_pid),
        time.process_time(),
        time.perf_counter(),
    )


async def run_cell(
    target: Target,
    workload: Workload,
    concurrency: int,
    *,
    seconds: float,
    max_queries: int,
    delay_ms: float,
    emulator: str,
    emulator_pid: int,
    seed: int,
    lead_in: int = 0,
) -> Cell:
    """Drive `workload` at `concurrency` for `seconds` or `max_queries`, whichever ends first.

    Each client first sends one unmeasured `{ __typename }` so that its connection is
    open; counters are read after that. The query stream depends only on `seed`.

    `lead_in` queries of the workload (another stream, also from `seed`) go first on the
    same connections, unmeasured, and the clients go on into the measured queries with
    no more than a pause for the counters: the cell then starts in the steady state of
    the load rather than from 8 clients sending at once onto a server that was resting.
    """
    cell = Cell(target.name, workload.name, concurrency, delay_ms)
    # The subgraph's own Personalize client, as load generator: keep-alive connections
    # (one per concurrent client), prebuilt requests, answers parsed by httptools.
    parts = urlsplit(target.url)
    headers = {"Host": parts.netloc, **HEADERS}
    http = Pool(target.url, max_idle=concurrency, connect_timeout=10.0, read_timeout=60.0)
    try:
        async with httpx.AsyncClient(timeout=10.0) as control:
            await asyncio.gather(
                *(http.post(parts.path, headers, _WARMUP) for _ in range(concurrency))
            )
            # No collections of ours while queries are timed (see _collector_paused).
            with _collector_paused():
                lead_in_left = lead_in
                measuring = asyncio.Event()
                opening: asyncio.Future[None] | None = None
                before: _Counters | None = None
                stop_at = math.inf

                async def start_measuring() -> None:
                    nonlocal before, stop_at
                    before = await _read_counters(control, emulator, target.pid, emulator_pid)
                    stop_at = before.started + seconds
                    measuring.set()

                if not lead_in:
                    await start_measuring()

                async def worker(rng: random.Random, lead_rng: random.Random) -> None:
                    nonlocal lead_in_left, opening
                    while lead_in_left > 0:
                        lead_in_left -= 1
                        # Unmeasured: a server gone shows in the measured queries.
                        with suppress(ConnectionFailed, TimeoutError):
                            await http.post(parts.path, headers, workload.payload(lead_rng))
                    if not measuring.is_set():
                        # The first client through reads the counters; the others wait
                        # for it as their lead-in answers come (a few milliseconds).
                        if opening is None:
                            opening = asyncio.ensure_future(start_measuring())
                        await measuring.wait()
                    while time.perf_counter() < stop_at and cell.queries < max_queries:
                        cell.queries += 1
                        body = workload.payload(rng)
                        sent = time.perf_counter()
                        try:
                            response = await http.post(parts.path, headers, body)
                        except (ConnectionFailed, TimeoutError) as exc:
                            cell.errors[f"{type(exc).__name__}: {exc}"] += 1
                            cell.latencies_ms.append((time.perf_counter() - sent) * 1000)
                            continue
                        cell.latencies_ms.append((time.perf_counter() - sent) * 1000)
                        if response.status != 200 or not clean(response.body):
                            for problem in problems(response.status, response.body):
                                cell.errors[problem] += 1
                        if workload.on_answer is not None:
                            workload.on_answer(rng, response.body)

                rngs = [random.Random(seed * 1000 + n) for n in range(concurrency)]
                lead_rngs = [random.Random(seed * 1000 + 500 + n) for n in range(concurrency)]
                await asyncio.gather(
                    *(worker(r, lead) for r, lead in zip(rngs, lead_rngs, strict=True))
                )
                if opening is not None:
                    await opening
                assert before is not None
                cell.seconds = time.perf_counter() - before.started
                cell.client_cpu_s = time.process_time() - before.client_cpu_s
            cell.server_cpu_s = cpu_seconds(target.pid) - before.server_cpu_s
            cell.emulator_cpu_s = cpu_seconds(emulator_pid) - before.emulator_cpu_s
            cell.calls = await _emulator_calls(control, emulator) - before.calls
    finally:
        await http.aclose()
    cell.requests = cell.queries * workload.personalize_fields
    return cell


async def drive(
    workloads: Sequence[Workload],
    concurrency: Sequence[int],
    targets: Sequence[Target],
    procs: Sequence[Proc],
    record: Callable[[Cell], None],
    *,
    seconds: float,
    max_queries: int,
    delay_ms: float,
    emulator: str,
    emulator_pid: int,
) -> None:
    """Run, and `record`, a cell per workload, concurrency and target, printing each one.

    `delay_ms` is what an ideal query waits (one emulator delay, or 0 when answers are
    cached); `procs` are checked alive around every cell, so that a server that died
    is named rather than read as a slow one.
    """
    for workload in workloads:
        for c in concurrency:
            for target in targets:
                check_alive(procs)
                try:
                    cell = await run_cell(
                        target,
                        workload,
                        c,
                        seconds=seconds,
                        max_queries=max_queries,
                        delay_ms=delay_ms,
                        emulator=emulator,
                        emulator_pid=emulator_pid,
                        # The same query stream for every target.
                        seed=zlib.crc32(f"{workload.name}/{c}".encode()),
                    )
                except (httpx.HTTPError, ConnectionFailed, TimeoutError):
                    check_alive(procs)  # names the process that went away, if one did
                    raise
                check_alive(procs)
                record(cell)
                print(
                    f"  {workload.name:8} c={c:<3} {target.name:8} {cell.queries:6,} queries "
                    f"{cell.qps:8,.1f} q/s  p50-d {cell.overhead_ms(0.5):7.1f} ms  "
                    f"p99-d {cell.overhead_ms(0.99):7.1f} ms  calls/q {cell.calls_per_query:5.2f}"
                    f"  CPU {cell.cpu_ms_per_query:6.2f} ms/q  (server "
                    f"{cell.server_cpu_s / cell.seconds:4.0%}, emulator "
                    f"{cell.emulator_cpu_s / cell.seconds:4.0%}, load generator "
                    f"{cell.client_cpu_s / cell.seconds:4.0%} of a core)"
                    + (f"  errors {sum(cell.errors.values())}" if cell.errors else ""),
                    flush=True,
                )


async def warm_up(target: Target, workload: Workload, emulator: str) -> int:
    """Ask each of the workload's repeating batches once; returns the Personalize calls made."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
        before = await _emulator_calls(client, emulator)
        for variables in workload.repeating:
            body = orjson.dumps({"query": workload.query, "variables": variables})
            response = await client.post(target.url, content=body, headers=HEADERS)
            found = problems(response.status_code, response.content)
            if found:
                raise RuntimeError(f"warming {workload.name} at {target.url}: {found}")
        return await _emulator_calls(client, emulator) - before
