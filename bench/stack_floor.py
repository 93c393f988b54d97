"""The home page's latency floor on this stack: a bare server next to the subgraph.

``python -m bench.stack_floor [--seconds 15] [--concurrency 1,8] [--burn-ms 0.4] [--workers 1,2]``
(repo root, about 2 minutes)

This asks how much of the home page's p99 over the backend delay any Python server on
this machine and stack spends before doing GraphQL at all (`make bench` used to hold
it to 5 ms, which not even the bare server met here; it now checks the service
against the bare server, within 3 ms of its p99 and 3x its CPU per query). Against one
emulator (`--delay-ms`, 20 ms as in `make bench`) it starts, as real processes on
loopback:

- **bare**: `python -m bench.bare_home`, a raw ASGI app on uvicorn that makes the
  home page's 4 Personalize calls and builds the answer with orjson: no GraphQL, no
  validation, no cache, no metrics; what is left is HTTP in, 4 calls, JSON;
- **bare + N ms**: the same app spinning `--burn-ms` of CPU per query (half before the
  calls, half after the answers): how the latency moves with a page's CPU alone;
- **service**: the subgraph as `make bench` starts it; with `--workers 1,2`, one
  service per count (`WORKERS`), side by side.

It checks that bare and service answer the same data, then drives the home workload
at each concurrency against each server in turn (same query stream, 1 s unmeasured
first), and prints per cell the latency over the delay, the server's CPU per query
and the emulator's share of a core, then the service's numbers against the bare
one's at each concurrency. The cells are those of `make bench` (`bench.measurement.run_cell`).
"""

from __future__ import annotations

import argparse
import tempfile
import zlib
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import uvloop

from bench.answers import same_data
from bench.checks import HOME_CPU_OVER_BARE_MAX, HOME_P99_OVER_BARE_MAX_MS
from bench.measurement import Cell, run_cell
from bench.processes import (
    Target,
    running,
    start_bare,
    start_emulator,
    start_ideal_backend,
    start_service,
)
from bench.provenance import where
from bench.workloads import HOME


def _row(cell: Cell) -> str:
    share = cell.emulator_cpu_s / cell.seconds if cell.seconds else 0.0
    errors = f" ({sum(cell.errors.values())} errors)" if cell.errors else ""
    return (
        f"| {cell.target} | {cell.concurrency} | {cell.queries:,}{errors} | {cell.qps:,.1f} | "
        f"{cell.overhead_ms(0.5):.1f} | {cell.overhead_ms(0.9):.1f} | "
        f"{cell.overhead_ms(0.99):.1f} | {cell.calls_per_query:.2f} | "
        f"{cell.cpu_ms_per_query:.2f} | {share:.0%} |"
    )


async def _measure(
    targets: Sequence[Target], args: argparse.Namespace, emulator: str, emulator_pid: int
) -> list[Cell]:
    cells = []
    for c in args.concurrency:
        seed = zlib.crc32(f"stack-floor/{c}".encode())
        for target in targets:
            common = {
                "delay_ms": args.delay_ms,
                "emulator": emulator,
                "emulator_pid": emulator_pid,
            }
            await run_cell(target, HOME, c, seconds=1.0, max_queries=10**6, seed=seed, **common)
            cell = await run_cell(
                target,
                HOME,
                c,
                seconds=args.seconds,
                max_queries=args.max_queries,
                seed=seed,
                **common,
            )
            print(f"  {_row(cell)}", flush=True)
            cells.append(cell)
    return cells


def _reading(cells: Sequence[Cell], names: Sequence[str], services: Sequence[str]) -> list[str]:
    """Per concurrency: every other server against the bare one (`names[0]`)."""
    lines = []
    by = {(c.target, c.concurrency): c for c in cells}
    for c in sorted({cell.concurrency for cell in cells}):
        bare = by.get((names[0], c))
        if bare is None:
            continue
        lines.append(
            f"c={c}: bare: p99 {bare.overhead_ms(0.99):.1f} ms, p50 {bare.overhead_ms(0.5):.1f}"
            f" ms over the delay (make bench's check: the service's p99 at most "
            f"{HOME_P99_OVER_BARE_MAX_MS:g} ms above, its CPU at most "
            f"{HOME_CPU_OVER_BARE_MAX:g}x)"
        )
        for name in names[1:]:
            cell = by.get((name, c))
            if cell is None:
                continue
            if name in services:
                cpu = f"CPU {cell.cpu_ms_per_query / bare.cpu_ms_per_query:.1f}x the bare server's"
            else:
                cpu = f"{cell.cpu_ms_per_query - bare.cpu_ms_per_query:+.2f} CPU ms per query"
            lines.append(
                f"      {name}: p99 {cell.overhead_ms(0.99) - bare.overhead_ms(0.99):+.1f} ms"
                f" and p50 {cell.overhead_ms(0.5) - bare.overhead_ms(0.5):+.1f} ms against"
                f" bare; {cpu}"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stack_floor")
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-queries", type=int, default=5_000)
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8]
    )
    parser.add_argument("--burn-ms", type=float, default=0.4, help="0: no burning row")
    parser.add_argument(
        "--backend",
        choices=("emulator", "ideal"),
        default="emulator",
        help="ideal: bench.ideal_backend, fixed answers after exactly the delay",
    )
    parser.add_argument(
        "--workers",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1],
        help="a service for each count (WORKERS), side by side",
    )
    args = parser.parse_args(argv)

    logs = Path(tempfile.mkdtemp(prefix="bench-floor-logs-"))
    print(
        f"stack floor: home workload, {args.backend} backend, delay {args.delay_ms:g} ms, "
        f"{args.seconds:g} s or "
        f"{args.max_queries:,} queries per cell, {where(logs)}",
        flush=True,
    )
    with ExitStack() as stack:
        if args.backend == "ideal":
            emulator, emulator_url = start_ideal_backend(logs, args.delay_ms)
        else:
            emulator, emulator_url = start_emulator(logs, args.delay_ms)
        bare, bare_url = start_bare("bare", logs, emulator_url, 0.0)
        procs = [emulator, bare]
        urls = [("bare", bare, bare_url)]
        if args.burn_ms > 0:
            burnt_name = f"bare + {args.burn_ms:g} ms"
            burnt, burnt_url = start_bare(burnt_name, logs, emulator_url, args.burn_ms)
            procs.append(burnt)
            urls.append((burnt_name, burnt, burnt_url))
        services = []
        for n in args.workers:
            name = "service" if n == 1 else f"service, {n} workers"
            service, service_url = start_service(name, logs, emulator_url, {"WORKERS": str(n)})
            procs.append(service)
            urls.append((name, service, service_url))
            services.append(name)
        stack.enter_context(running(procs))
        targets = [Target(name, f"{url}/graphql", p.proc.pid) for name, p, url in urls]
        difference = same_data(HOME, targets[-1], targets[0])
        print(
            "  same data from bare and service"
            if difference is None
            else f"  !!! MISMATCH bare vs service: {difference}",
            flush=True,
        )
        print(
            "| server | conc | queries | q/s | p50-d ms | p90-d ms | p99-d ms | calls/q | "
            "CPU ms/q | emulator |\n|---|---|---|---|---|---|---|---|---|---|",
            flush=True,
        )
        cells = uvloop.run(_measure(targets, args, emulator_url, emulator.proc.pid))
    print("\n".join(_reading(cells, [t.name for t in targets], services)))
    if difference is not None:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
