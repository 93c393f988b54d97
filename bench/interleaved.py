"""The home p99 check's measurement: service and bare server in alternating rounds, pooled.

The check compares two servers' p99 and CPU per home page (`bench.checks`). Measured
one after the other, each side met a different stretch of a shared 2-core machine, and
whatever else ran changed between them: one commit passed (+0.32 ms) and failed
(+3.42 ms) in two runs. Here each side's queries are split into `ROUNDS` rounds and
the sides take turns: service then bare, then bare then service, and so on, so each
side goes first in half the rounds and a drift over the measurement weighs on both
alike. Both sides of a round send the same query stream, after an unmeasured lead-in
on the round's connections (`LEAD_IN_PER_CLIENT`), so that each round is measured in
the steady state of its load, as the single cell was after its first moments. Each
side's rounds are then pooled (`bench.measurement.pool`): the percentiles over all
its latencies, CPU per query over all its CPU and queries.
"""

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.measurement import Cell, pool, run_cell
from bench.processes import Proc, Target, check_alive
from bench.workloads import HOME

# The check's queries per side are split over this many rounds; the rounds' time and
# query bounds add up to the single cell's the check had before (below).
ROUNDS = 10
# Each round starts with this many home pages per client, unmeasured, on the round's
# connections: a round's first pages otherwise came in a burst (every client at once)
# onto a server that had rested while the other side ran. In two trial runs of 10
# rounds without it, pages 0-7 of a round were 5.7-6.3 ms slower at the median than
# pages 256-499 for the service and 2.3-3.6 ms for the bare server, settling by about
# the 64th (8 per client): ten such starts per side where the single cell had one, and
# costlier for the side with more CPU per page. With it (three runs), 1.5-2.9 and
# 0.7-2.3 ms. It adds about 0.3 s per round and side.
LEAD_IN_PER_CLIENT = 12
# Each side gets ten times a table cell's time (same query cap, 5,000): a 3 s cell
# holds about 1,000 home pages, so its p99 rests on its 10 slowest; 5,000 on 50.
CHECK_TIME_FACTOR = 10


@dataclass
class Round:
    """One round of the check: each side's cell, and which side went first."""

    number: int
    service: Cell
    bare: Cell
    service_first: bool

    def summary(self) -> dict[str, Any]:
        """The round as `--json` writes it (under `home_p99_rounds`)."""
        return {
            "round": self.number,
            "first": self.service.target if self.service_first else self.bare.target,
            "service": self.service.summary(),
            "bare": self.bare.summary(),
        }


@dataclass
class Interleaved:
    """The check's rounds in the order they ran, and each side's pool of them."""

    rounds: list[Round]

    @property
    def service(self) -> Cell:
        return pool([r.service for r in self.rounds])

    @property
    def bare(self) -> Cell:
        return pool([r.bare for r in self.rounds])


async def interleaved_home(
    service: Target,
    bare: Target,
    c: int,
    procs: Sequence[Proc],
    on_round: Callable[[Round], None],
    *,
    seconds: float,
    max_queries: int,
    delay_ms: float,
    emulator: str,
    emulator_pid: int,
    rounds: int = ROUNDS,
) -> Interleaved:
    """`rounds` rounds of home at concurrency `c`, each against both targets in turn.

    `seconds` is a table cell's time and `max_queries` a table cell's cap: each side's
    rounds together get `CHECK_TIME_FACTOR` times that time and that many queries. The
    bare server, which has not served yet, first gets a table cell's time of the same
    workload, unmeasured, as the service got its table cells. `procs` are checked
    alive after every cell; `on_round` is told of each round as it ends.
    """

    async def cell(target: Target, seed: int, time_s: float, count: int, lead_in: int) -> Cell:
        measured = await run_cell(
            target,
            HOME,
            c,
            seconds=time_s,
            max_queries=count,
            delay_ms=delay_ms,
            emulator=emulator,
            emulator_pid=emulator_pid,
            seed=seed,
            lead_in=lead_in,
        )
        check_alive(procs)
        return measured

    await cell(bare, zlib.crc32(f"home/{c}/check".encode()), seconds, 10**6, 0)
    per_round = (seconds * CHECK_TIME_FACTOR / rounds, max(1, max_queries // rounds))
    lead_in = LEAD_IN_PER_CLIENT * c
    done: list[Round] = []
    for number in range(1, rounds + 1):
        # Both sides of a round get the same queries; each round other ones.
        seed = zlib.crc32(f"home/{c}/check/{number}".encode())
        service_first = number % 2 == 1
        if service_first:
            ours = await cell(service, seed, *per_round, lead_in)
            theirs = await cell(bare, seed, *per_round, lead_in)
        else:
            theirs = await cell(bare, seed, *per_round, lead_in)
            ours = await cell(service, seed, *per_round, lead_in)
        this = Round(number, ours, theirs, service_first)
        done.append(this)
        on_round(this)
    return Interleaved(done)
