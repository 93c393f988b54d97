"""`make bench`: speed and cost of the subgraph, side by side with a naive one and the floor.

``python -m bench.service [--delay-ms 20] [--seconds 3] [--concurrency 1,8,32] [--quick]``

Starts, as real processes on free loopback ports: the Personalize Runtime emulator
(a fixed `--delay-ms` per call), our subgraph (`python server.py` with the personalize
backend and its default `personalize.client`, pointed at the emulator) and the naive
Strawberry subgraph (`bench.naive_subgraph`). Then it drives each workload of
`bench.workloads` at each concurrency, one keep-alive connection per concurrent client
(`backends.http1`, the subgraph's own Personalize client) on uvloop, every cell bounded
by time (`--seconds`) and by count (`--max-queries`), and measures per cell:

- queries/s: completed queries over the cell's wall time;
- p50/p99 latency minus the injected delay (each workload's calls run concurrently, so
  an ideal query takes one delay; the rest is overhead: client, server, emulator);
- Personalize calls per query: the emulator's call counter delta over queries;
- CPU ms per query: utime + stime of the server process and its children, if any
  (`WORKERS`, default 1; from /proc/<pid>/stat, the emulator excluded) over queries.

The floor is measured in this process: for each workload, the same response JSON is
built as plain dicts from the raw (itemId, score) lists of one real answer and
serialised with orjson; its CPU time per query (time.process_time, the least of three
rounds of many repetitions; every floor one after the other, before the load) is
compared with the server's CPU per query (ratio service/floor).

The batch-warm workload is batch's query over a fixed, repeating set of 20 batches of
50 users, against a second instance of the subgraph whose default `recommendations`
use case keeps answers for 300 s (`cache_ttl = 300.0` added to a copy of
config/demo.toml, named by SUBGRAPH_CONFIG). Each batch is sent once before measuring,
so the measured queries make no Personalize calls: the server's CPU per query is then
HTTP + GraphQL + JSON from answers at hand, which is what the floor measures. The naive
subgraph has no cache; its columns are n/a there.

The zipf workload (product pages + best sellers, Zipf-distributed items and users)
runs against a fresh subgraph with the popular/related cache on
(`SUBGRAPH_CACHE__BACKEND=memory`, per-use-case defaults), from a cold cache, and
reports the fields that asked Personalize against the calls that reached it.

Everything runs in one go so that the noise of a shared machine hits all columns alike.
This module is the command line and the order of the run; the parts live in
`bench.processes` (starting and stopping the processes, their CPU), `bench.measurement`
(a cell of load), `bench.answers` (clean answers, same data), `bench.yardsticks` (the
orjson floor, a stock client's CPU per call), `bench.report` (table, CPU split, JSON)
and `bench.checks` (the issue's checks).
"""

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import orjson
import uvloop

from bench.answers import same_data, sample
from bench.cart_workload import CART, CART_FIELDS
from bench.cart_workload import round_line as cart_round_line
from bench.checks import evaluate
from bench.interleaved import ROUNDS, Round, interleaved_home
from bench.measurement import drive, warm_up
from bench.page_workload import PAGE, PageComparison, PageRound, compare_page, repeats, round_line
from bench.page_workload import ROUNDS as PAGE_ROUNDS
from bench.processes import (
    Proc,
    Target,
    running,
    start_bare,
    start_emulator,
    start_naive,
    start_service,
)
from bench.provenance import where
from bench.report import Report
from bench.scroll_workload import GROWING, SCROLL
from bench.scroll_workload import round_line as scroll_round_line
from bench.warm_config import WARM_CACHE_TTL, warm_config
from bench.workloads import BATCH_WARM, HOME, WORKLOADS, Workload
from bench.yardsticks import client_cpu_per_call, floor_ms


@dataclass
class Options:
    """The command line, resolved."""

    delay_ms: float
    seconds: float
    concurrency: list[int]
    max_queries: int
    workloads: list[str]
    floor_cpu_s: float
    client_calls: int
    json_out: Path | None


@dataclass
class _Backend:
    """The emulator every server of the run calls: its process and base URL."""

    proc: Proc
    url: str

    @property
    def pid(self) -> int:
        return self.proc.proc.pid


def _service_client() -> str:
    """The Personalize client the service uses by default (aioboto3 before the setting)."""
    from settings import PersonalizeSettings

    found = PersonalizeSettings.model_fields.get("client")
    return str(found.default) if found is not None else "aioboto3"


def _cache_settings_exist() -> bool:
    from settings import Settings

    return "cache" in Settings.model_fields


def _drive(
    report: Report,
    opts: Options,
    workloads: Sequence[Workload],
    targets: Sequence[Target],
    backend: _Backend,
    procs: Sequence[Proc],
    *,
    delay_ms: float | None = None,
) -> None:
    """The table's cells; `delay_ms` is what an ideal query waits (default: one delay)."""
    uvloop.run(
        drive(
            workloads,
            opts.concurrency,
            targets,
            procs,
            report.add,
            seconds=opts.seconds,
            max_queries=opts.max_queries,
            delay_ms=opts.delay_ms if delay_ms is None else delay_ms,
            emulator=backend.url,
            emulator_pid=backend.pid,
        )
    )


def _sanity_and_floors(report: Report, opts: Options, ours: Target, theirs: Target) -> None:
    """Same data from service and naive, and every workload's floor, before any load."""
    print("sanity (same data from both) and floor:", flush=True)
    # Every floor is measured here, one after the other, so that they share the
    # machine's conditions; batch-warm's answer is the same whether cached or not
    # (ids aside), and its cached answer is compared with the naive one further down.
    for name in opts.workloads:
        if name == PAGE.name:
            _page_sanity(report, opts, ours)
            continue
        if name in (SCROLL.name, CART.name):
            continue  # its answers are the service's own (cursors); its test proves them
        workload = WORKLOADS[name]
        difference = None
        if workload is not BATCH_WARM:
            difference = same_data(workload, ours, theirs)
        if difference is not None:
            report.mismatches.append(
                f"{name}: the service and the naive subgraph answer different data: {difference}"
            )
        data = sample(ours.url, workload)["data"]
        report.floors[name] = floor_ms(workload, data, opts.floor_cpu_s)
        if workload is BATCH_WARM:
            same = "compared once cached, below"
        else:
            same = "same data" if difference is None else f"MISMATCH: {difference}"
        print(
            f"  {name:8} {same}; floor {report.floors[name]:.3f} CPU ms/query "
            f"({len(orjson.dumps({'data': data})):,} bytes)",
            flush=True,
        )


def _home_check(
    report: Report,
    opts: Options,
    ours: Target,
    bare: Target,
    backend: _Backend,
    procs: Sequence[Proc],
) -> None:
    """The p99 check's cells: the service and the bare server in alternating rounds.

    The bare server's side is what this machine and stack give a home page with no
    GraphQL at all, in this run and, round by round, at the same time as the service's.
    """
    c8 = report.check_concurrency
    difference = same_data(WORKLOADS["home"], ours, bare)
    if difference is not None:
        report.mismatches.append(f"home: the service and the bare server: {difference}")

    def progress(done: Round) -> None:
        first = "service" if done.service_first else "bare"
        sides = "  ".join(
            f"{cell.target} {cell.queries:,} q p99-d {cell.overhead_ms(0.99):.1f} ms "
            f"CPU {cell.cpu_ms_per_query:.2f} ms/q"
            for cell in (done.service, done.bare)
        )
        print(
            f"  home     c={c8:<3} p99 check round {done.number:2}/{ROUNDS} ({first:7} first): "
            f"{sides}",
            flush=True,
        )

    measured = uvloop.run(
        interleaved_home(
            ours,
            bare,
            c8,
            procs,
            progress,
            seconds=opts.seconds,
            max_queries=opts.max_queries,
            delay_ms=opts.delay_ms,
            emulator=backend.url,
            emulator_pid=backend.pid,
        )
    )
    report.home_rounds = measured.rounds
    report.home_check, report.bare_check = measured.service, measured.bare
    for cell in (report.home_check, report.bare_check):
        print(
            f"  home     c={c8:<3} {cell.target:7} {cell.queries:6,} queries for the p99 "
            f"check, {len(measured.rounds)} interleaved rounds pooled: p50-d "
            f"{cell.overhead_ms(0.5):.1f} ms  p90-d {cell.overhead_ms(0.9):.1f} ms  p99-d "
            f"{cell.overhead_ms(0.99):.1f} ms  CPU {cell.cpu_ms_per_query:.2f} ms/q"
            + (f"  errors {sum(cell.errors.values())}" if cell.errors else ""),
            flush=True,
        )


def _page_sanity(report: Report, opts: Options, ours: Target) -> None:
    """The page's answer: no item twice; and its floor (only the service has the field)."""
    data = sample(ours.url, PAGE)["data"]
    twice = repeats(data)
    if twice:
        report.mismatches.append(f"page: items shown twice on one page: {twice}")
    report.floors[PAGE.name] = floor_ms(PAGE, data, opts.floor_cpu_s)
    print(
        f"  {PAGE.name:8} service only, {'no item twice' if not twice else 'REPEATS'}; floor "
        f"{report.floors[PAGE.name]:.3f} CPU ms/query ({len(orjson.dumps({'data': data})):,} "
        "bytes)",
        flush=True,
    )


def _sided(
    report: Report,
    opts: Options,
    ours: Target,
    bare: Target,
    backend: _Backend,
    procs: list[Proc],
    line: Callable[[PageRound, int, int], str],
    sides: list[tuple[Target, Workload]],
) -> PageComparison:
    """One side-by-side workload (page, scroll or cart): its sides in turns, at c=8."""
    c8 = report.check_concurrency
    return uvloop.run(
        compare_page(
            ours,
            bare,
            c8,
            procs,
            lambda done: print(line(done, c8, PAGE_ROUNDS), flush=True),
            seconds=opts.seconds,
            max_queries=opts.max_queries,
            delay_ms=opts.delay_ms,
            emulator=backend.url,
            emulator_pid=backend.pid,
            sides=sides,
        )
    )


def _batch_warm(
    report: Report, opts: Options, logs: Path, theirs: Target, backend: _Backend
) -> None:
    """batch-warm against a service of its own, every answer cached before the cells."""
    warm = BATCH_WARM
    config, report.warm_use_case = warm_config(logs)
    env = {"SUBGRAPH_CONFIG": str(config), "SUBGRAPH_CACHE__BACKEND": "memory"}
    warmed, warmed_url = start_service("service-warm", logs, backend.url, env)
    with running([warmed]):
        target = Target("service", f"{warmed_url}/graphql", warmed.proc.pid)
        report.warm_up_calls = uvloop.run(warm_up(target, warm, backend.url))
        # The service answers from its cache now; the naive one asks Personalize.
        difference = same_data(warm, target, theirs)
        if difference is not None:
            report.mismatches.append(
                f"{warm.name}: the service (cached) and the naive subgraph answer "
                f"different data: {difference}"
            )
        try:
            # The floor, measured above, rebuilds exactly this cached answer.
            warm.floor(sample(target.url, warm)["data"])
        except ValueError as exc:
            report.mismatches.append(f"{warm.name} (cached): {exc}")
        same = "same data" if difference is None else f"MISMATCH: {difference}"
        print(
            f"  {warm.name:8} {same} (service answering from its cache, naive asking "
            f"Personalize); service with {report.warm_use_case}.cache_ttl = "
            f"{WARM_CACHE_TTL:g} ({config.name}), warmed with {len(warm.repeating)} "
            f"batches: {report.warm_up_calls:,} Personalize calls",
            flush=True,
        )
        # Answers from the cache wait for no call: nothing to subtract.
        _drive(report, opts, [warm], [target], backend, [backend.proc, warmed], delay_ms=0.0)


def _zipf(
    report: Report, opts: Options, logs: Path, theirs: Target, naive: Proc, backend: _Backend
) -> None:
    """zipf against a fresh service with the cache on, from a cold cache, and the naive one."""
    zipf = WORKLOADS["zipf"]
    report.cache_on = _cache_settings_exist()
    env = {"SUBGRAPH_CACHE__BACKEND": "memory"} if report.cache_on else {}
    if not report.cache_on:
        report.notes.append(
            "settings.Settings has no `cache` section yet: the zipf service ran "
            "WITHOUT a cache (SUBGRAPH_CACHE__BACKEND=memory would be refused); "
            "its calls/request is what the cache has to beat."
        )
    cached, cached_url = start_service("service-cache", logs, backend.url, env)
    with running([cached]):
        target = Target("service", f"{cached_url}/graphql", cached.proc.pid)
        # From a cold cache: only `{ __typename }` ran before the stream.
        _drive(report, opts, [zipf], [target, theirs], backend, [backend.proc, cached, naive])
        difference = same_data(zipf, target, theirs)
        if difference is not None:
            report.mismatches.append(
                f"zipf (cache on, after the stream): the service and the naive subgraph "
                f"answer different data: {difference}"
            )


def run(opts: Options) -> Report:
    """The whole bench: sanity and floors, the table's cells, the p99 check's, the cached ones."""
    report = Report(
        delay_ms=opts.delay_ms, concurrency=opts.concurrency, service_client=_service_client()
    )
    logs = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    own_service = ("zipf", BATCH_WARM.name)
    plain = [
        WORKLOADS[name] for name in opts.workloads if name in WORKLOADS and name not in own_service
    ]
    print(
        f"make bench: delay {opts.delay_ms:g} ms, {opts.seconds:g} s or {opts.max_queries:,} "
        f"queries per cell, concurrency {','.join(map(str, opts.concurrency))}, "
        f"{where(logs)}",
        flush=True,
    )
    with ExitStack() as stack:
        emulator, emulator_url = start_emulator(logs, opts.delay_ms)
        service, service_url = start_service("service", logs, emulator_url, {})
        naive, naive_url = start_naive(logs, emulator_url)
        bare, bare_url = start_bare("bare", logs, emulator_url)
        stack.enter_context(running([emulator, service, naive, bare]))
        backend = _Backend(emulator, emulator_url)
        ours = Target("service", f"{service_url}/graphql", service.proc.pid)
        theirs = Target("naive", f"{naive_url}/graphql", naive.proc.pid)

        _sanity_and_floors(report, opts, ours, theirs)
        if opts.client_calls:
            report.client_call_ms = uvloop.run(client_cpu_per_call(emulator_url, opts.client_calls))
        _drive(report, opts, plain, [ours, theirs], backend, [emulator, service, naive])
        bare_target = Target("bare", f"{bare_url}/graphql", bare.proc.pid)
        if "home" in opts.workloads:
            _home_check(report, opts, ours, bare_target, backend, [emulator, service, naive, bare])
        procs = [emulator, service, naive, bare]
        # The page, scroll and cart workloads: the service's new field, the fields it
        # replaces, and the bare server's home, in turns (bench/page_workload.py).
        if PAGE.name in opts.workloads:
            page_sides = [(ours, PAGE), (ours, HOME), (bare_target, HOME)]
            report.page = _sided(
                report, opts, ours, bare_target, backend, procs, round_line, page_sides
            )
        if SCROLL.name in opts.workloads:
            sides = [(ours, SCROLL), (ours, GROWING), (bare_target, HOME)]
            report.scroll = _sided(
                report, opts, ours, bare_target, backend, procs, scroll_round_line, sides
            )
        if CART.name in opts.workloads:
            sides = [(ours, CART), (ours, CART_FIELDS), (bare_target, HOME)]
            report.cart = _sided(
                report, opts, ours, bare_target, backend, procs, cart_round_line, sides
            )
        bare.proc.terminate()
        bare.proc.wait(timeout=15)
        if any(name in opts.workloads for name in own_service):
            # Idle from here on: the cached ones take over.
            service.proc.terminate()
            service.proc.wait(timeout=15)
        if BATCH_WARM.name in opts.workloads:
            _batch_warm(report, opts, logs, theirs, backend)
        if "zipf" in opts.workloads:
            _zipf(report, opts, logs, theirs, naive, backend)
    if opts.json_out is not None:
        opts.json_out.write_bytes(report.json())
    return report


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.service", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--delay-ms", type=float, default=20.0, help="emulator delay per call")
    parser.add_argument("--seconds", type=float, default=None, help="time per cell (default 3)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated")
    parser.add_argument("--max-queries", type=int, default=None, help="count per cell (5000)")
    names = [*WORKLOADS, PAGE.name, SCROLL.name, CART.name]
    parser.add_argument("--workloads", default=",".join(names), help=f"subset of {','.join(names)}")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 s cells")
    parser.add_argument("--json", type=Path, default=None, help="also write every cell here")
    args = parser.parse_args(argv)
    concurrency = sorted({int(c) for c in args.concurrency.split(",") if c.strip()})
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in names]
    if unknown or not concurrency or min(concurrency) < 1:
        parser.error(f"bad --workloads {unknown} or --concurrency {args.concurrency!r}")
    return Options(
        delay_ms=args.delay_ms,
        seconds=args.seconds if args.seconds is not None else (1.0 if args.quick else 3.0),
        concurrency=concurrency,
        max_queries=args.max_queries or (1000 if args.quick else 5000),
        workloads=[w for w in names if w in workloads],
        floor_cpu_s=0.1 if args.quick else 0.5,
        client_calls=100 if args.quick else 400,
        json_out=args.json,
    )


def main(argv: Sequence[str] | None = None) -> None:
    opts = parse_args(argv)
    started = time.monotonic()
    try:
        report = run(opts)
    except RuntimeError as exc:
        print(f"\nmake bench: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    report.print(evaluate(report))
    print(f"\n(the whole run took {time.monotonic() - started:.0f} s)")
    if report.mismatches:
        # Numbers about different answers compare nothing; the checks stay advisory.
        raise SystemExit(1)


if __name__ == "__main__":
    main()
