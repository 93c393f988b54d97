"""Every measurement of a `make bench` run, and how it is read: table, CPU split, JSON.

`Report` collects the cells, the floors and what the run noted on its way; it prints
the table of service against naive against the floor, the cells' errors, a rough
split of each server's CPU into Personalize client calls and the rest, the cells
where the emulator or the load generator was busy enough to show, and the verdicts
it is given (`bench.checks`).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from bench.cart_workload import cells_json as cart_cells_json
from bench.interleaved import Round
from bench.measurement import Cell
from bench.page_workload import PageComparison, cells_json
from bench.scroll_workload import cells_json as scroll_cells_json
from bench.warm_config import WARM_CACHE_TTL
from bench.workloads import BATCH_WARM, WORKLOADS

# The checks of the issue, evaluated at this concurrency where they name none.
CHECK_CONCURRENCY = 8


def fmt(value: float, digits: int = 1) -> str:
    """A number for the table, with thousands separated; "-" for a cell without queries."""
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def _nearest(values: Sequence[int], wanted: int) -> int:
    return min(values, key=lambda v: (abs(v - wanted), v))


@dataclass
class Report:
    """Every measurement of the run, and how to print it."""

    delay_ms: float
    concurrency: list[int]
    cells: dict[tuple[str, str, int], Cell] = field(default_factory=dict)
    floors: dict[str, float] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    client_call_ms: float = math.nan
    cache_on: bool = False
    # batch-warm: the use case given a cache_ttl, and the calls its warm-up made.
    warm_use_case: str | None = None
    warm_up_calls: int = 0
    # What the service calls Personalize with (settings' personalize.client).
    service_client: str = "aioboto3"
    # The home p99 check's rounds (bench.interleaved): the service and bench.bare_home,
    # the check's other side (the stack's own p99 and CPU, no GraphQL), taking turns.
    home_rounds: list[Round] = field(default_factory=list)
    # Each side's rounds pooled: what the check reads.
    home_check: Cell | None = None
    bare_check: Cell | None = None
    # The page workload (bench.page_workload): the service's page, its 4 fields, bare.
    page: PageComparison | None = None
    # The scroll workload (bench.scroll_workload): scroll, growing calls, bare home.
    scroll: PageComparison | None = None
    # The cart workload (bench.cart_workload): a cart, its 5 related fields, bare home.
    cart: PageComparison | None = None

    @property
    def check_concurrency(self) -> int:
        """The run's concurrency nearest `CHECK_CONCURRENCY`."""
        return _nearest(self.concurrency, CHECK_CONCURRENCY)

    def add(self, cell: Cell) -> None:
        self.cells[(cell.target, cell.workload, cell.concurrency)] = cell

    def cell(self, target: str, workload: str, concurrency: int) -> Cell | None:
        return self.cells.get((target, workload, concurrency))

    def table(self) -> str:
        head = (
            "| workload | conc | service q/s | p50-d ms | p99-d ms | calls/q | CPU ms/q "
            "| naive q/s | p50-d ms | p99-d ms | calls/q | CPU ms/q "
            "| floor CPU ms/q | service/floor | naive/floor |"
        )
        lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
        for name in WORKLOADS:
            for c in self.concurrency:
                ours, naive = self.cell("service", name, c), self.cell("naive", name, c)
                if ours is None:
                    continue
                floor = self.floors.get(name, math.nan)
                row = [name, str(c)]
                for cell in (ours, naive):
                    if cell is None:  # batch-warm: the naive subgraph has no cache
                        row += ["n/a"] * 5
                        continue
                    row += [
                        fmt(cell.qps),
                        fmt(cell.overhead_ms(0.5)),
                        fmt(cell.overhead_ms(0.99)),
                        fmt(cell.calls_per_query, 2),
                        fmt(cell.cpu_ms_per_query, 2),
                    ]
                row += [
                    fmt(floor, 3),
                    f"{fmt(ours.cpu_ms_per_query / floor)}x",
                    "n/a" if naive is None else f"{fmt(naive.cpu_ms_per_query / floor)}x",
                ]
                lines.append("| " + " | ".join(row) + " |")
        return "\n".join(lines)

    def where_cpu_goes(self) -> list[str]:
        if math.isnan(self.client_call_ms):
            return []
        c8 = self.check_concurrency
        lines = []
        for name in WORKLOADS:
            for target in ("service", "naive"):
                cell = self.cell(target, name, c8)
                if cell is None or not cell.queries:
                    continue
                if target == "service" and self.service_client != "aioboto3" and cell.calls:
                    lines.append(
                        f"  {name:8} {target:8} c={c8}: {fmt(cell.cpu_ms_per_query, 2)} ms/query, "
                        f"{fmt(cell.calls_per_query, 1)} calls over its "
                        f"personalize.client = {self.service_client!r} (not split: that "
                        "client's CPU per call is not measured here)"
                    )
                    continue
                client = cell.calls_per_query * self.client_call_ms
                rest = cell.cpu_ms_per_query - client
                if rest <= 0:
                    remainder = "the rest is within the noise"
                else:
                    remainder = f"~{fmt(rest, 2)} ms HTTP/GraphQL/other"
                    if name in self.floors:
                        remainder += f" ({fmt(rest / self.floors[name])}x floor)"
                lines.append(
                    f"  {name:8} {target:8} c={c8}: {fmt(cell.cpu_ms_per_query, 2)} ms/query = "
                    f"~{fmt(client, 2)} ms in the client ({fmt(cell.calls_per_query, 1)} calls) "
                    f"+ {remainder}"
                )
        return lines

    def print(self, checks: Sequence[tuple[str, str]]) -> None:
        """Everything after the progress lines, ending with `checks` (status, text)."""
        print()
        print(self.table())
        print()
        ran = {workload for _, workload, _ in self.cells}
        legend = (
            "q/s: completed queries per second; p50-d/p99-d: latency percentile minus the "
            f"injected {self.delay_ms:g} ms delay (client + server + emulator overhead); "
            "calls/q: Personalize calls per query (emulator counter); CPU ms/q: server "
            "process utime+stime per query (emulator and load generator excluded); floor: "
            "the same JSON built from raw lists + orjson.dumps, in-process (least of 3 "
            "rounds); x/floor: CPU ms per query over the floor's."
        )
        if BATCH_WARM.name in ran:
            legend += (
                f" batch-warm: the service column runs with {self.warm_use_case} cached "
                f"({WARM_CACHE_TTL:g} s) and warmed ({self.warm_up_calls:,} calls before "
                "measuring), and its p50-d/p99-d subtract nothing (no call to wait for); the "
                "naive subgraph has no cache (n/a)."
            )
        if "zipf" in ran:
            legend += " zipf: the service column runs with the cache on."
        print(legend)
        named = [(cell, "") for cell in self.cells.values()]
        if self.home_check is not None:
            named.append((self.home_check, " (the p99 check's rounds, pooled)"))
        if self.bare_check is not None:
            named.append((self.bare_check, " (the bare server's p99 rounds, pooled)"))
        errors = [
            f"  {cell.target} {cell.workload} c={cell.concurrency}{what}: "
            f"{sum(cell.errors.values())} problems in {cell.queries} queries {dict(cell.errors)}"
            for cell, what in named
            if cell.errors
        ]
        if errors:
            print("\nERRORS (their latencies are in the percentiles):")
            print("\n".join(errors))
        for mismatch in self.mismatches:
            print(f"\n!!! MISMATCH: {mismatch}")
        if not math.isnan(self.client_call_ms):
            print(
                "\nWhere server CPU goes, roughly: calls x the CPU a stock aioboto3 client "
                f"spends per call (measured in this process: {self.client_call_ms:.3f} ms; the "
                "naive subgraph's client), and the rest:"
            )
            print("\n".join(self.where_cpu_goes()))
        busy = [
            f"  {cell.target} {cell.workload} c={cell.concurrency}: emulator "
            f"{cell.emulator_cpu_s / cell.seconds:.0%} of a core, load generator "
            f"{cell.client_cpu_s / cell.seconds:.0%}"
            for cell in self.cells.values()
            if cell.seconds and max(cell.emulator_cpu_s, cell.client_cpu_s) / cell.seconds > 0.7
        ]
        if busy:
            print(
                "\nCells where the emulator or the load generator used > 70% of a core "
                "(their queueing shows up as overhead):"
            )
            print("\n".join(busy))
        for note in self.notes:
            print(f"\nNOTE: {note}")
        print("\nChecks:")
        for status, text in checks:
            print(f"{status}  {text}")

    def _home_p99_values(self) -> dict[str, object] | None:
        """The home p99 check's numbers as its line gives them (`--json`'s `home_p99_check`)."""
        home, bare = self.home_check, self.bare_check
        if home is None or bare is None:
            return None
        p99, bare_p99 = home.overhead_ms(0.99), bare.overhead_ms(0.99)
        cpu, bare_cpu = home.cpu_ms_per_query, bare.cpu_ms_per_query
        return {
            "interleaved_rounds": len(self.home_rounds),
            "service_p99_minus_delay_ms": round(p99, 3),
            "bare_p99_minus_delay_ms": round(bare_p99, 3),
            "p99_difference_ms": round(p99 - bare_p99, 3),
            "service_cpu_ms_per_query": round(cpu, 3),
            "bare_cpu_ms_per_query": round(bare_cpu, 3),
            "cpu_ratio": round(cpu / bare_cpu, 3) if bare_cpu else None,
        }

    def json(self) -> bytes:
        """What `--json FILE` holds: every cell, the check cells, floors and mismatches."""
        return orjson.dumps(
            {
                "delay_ms": self.delay_ms,
                "floors_ms": self.floors,
                "warm_use_case": self.warm_use_case,
                "warm_up_calls": self.warm_up_calls,
                "client_cpu_ms_per_call": self.client_call_ms,
                "cache_on": self.cache_on,
                "cells": [cell.summary() for cell in self.cells.values()],
                "home_p99_check_cell": (
                    self.home_check.summary() if self.home_check is not None else None
                ),
                "home_p99_bare_cell": (
                    self.bare_check.summary() if self.bare_check is not None else None
                ),
                "home_p99_check": self._home_p99_values(),
                "home_p99_rounds": [r.summary() for r in self.home_rounds],
                "page_cells": cells_json(self.page),
                "scroll_cells": scroll_cells_json(self.scroll),
                "cart_cells": cart_cells_json(self.cart),
                "mismatches": self.mismatches,
            },
            option=orjson.OPT_INDENT_2,
        )
