"""The page workload: a home page as one `recommendationPage` of 4 deduplicated sections,
beside the same 4 carousels as separate fields (`home`) and the bare server.

The sections are home's carousels, in home's order: the default per-user use case, USER_
PERSONALIZATION, the default again with `excludePurchased`, and a ranking of 10 ids. The
page makes the same 4 calls as home, but each section after the first asks for more
items than it shows (the over-fetch rule: 25, 50 and 75 items; the ranking ranks its 10
ids) and the answer is deduplicated: what the page costs over the separate fields is
that and the dedupe. Only the service has the field (the naive subgraph and the bare
server do not), so its three sides are the service's page, the service's home and the
bare server's home, measured at the check's concurrency in rounds taking turns (the
order rotating each round, as `bench.interleaved` does for two), each side's rounds
pooled. It prints, per side: Personalize calls per page, server CPU per query and the
p50 and p99 over the backend delay.
"""

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.interleaved import LEAD_IN_PER_CLIENT
from bench.measurement import Cell, pool, run_cell
from bench.processes import Proc, Target, check_alive
from bench.workloads import _ITEMS, HOME, Carousel, Json, Workload, _recommendations

ROUNDS = 6
# Each side gets this many table cells' time in all (5 x 3 s = 15 s by default).
TIME_FACTOR = 5

PAGE_QUERY = f"""query HomePage($representations: [_Any!]!, $candidates: [ID!]!) {{
  _entities(representations: $representations) {{
    ... on User {{
      recommendationPage(sections: [
        {{useCase: RECOMMENDED_FOR_YOU, numResults: 25}}
        {{useCase: USER_PERSONALIZATION, numResults: 25}}
        {{useCase: RECOMMENDED_FOR_YOU, numResults: 25, filter: {{excludePurchased: true}}}}
        {{useCase: PERSONALIZED_RANKING, itemIds: $candidates}}
      ]) {{ {_ITEMS} }}
    }}
  }}
}}"""
SECTIONS = 4


def _page_build(raw: Sequence[Carousel]) -> Json:
    sections = [_recommendations(c, False) for c in raw]
    return {"data": {"_entities": [{"recommendationPage": sections}]}}


PAGE = Workload(
    name="page",
    description="home's 4 carousels as 4 deduplicated sections of one recommendationPage",
    query=PAGE_QUERY,
    personalize_fields=SECTIONS,
    make_variables=HOME.make_variables,
    paths=lambda data: [
        ("_entities", 0, "recommendationPage", k)
        for k in range(len(data["_entities"][0]["recommendationPage"]))
    ],
    build=_page_build,
)


def repeats(data: Json) -> list[str]:
    """Items shown twice on a page's answer (none, if the page deduplicates)."""
    seen: set[str] = set()
    twice = []
    for section in data["_entities"][0]["recommendationPage"]:
        for entry in section["items"]:
            if entry["itemId"] in seen:
                twice.append(entry["itemId"])
            seen.add(entry["itemId"])
    return twice


@dataclass
class PageRound:
    """One round: each side's cell, in the order they ran."""

    number: int
    cells: list[Cell]


@dataclass
class PageComparison:
    """The rounds in the order they ran, and each side pooled over them."""

    rounds: list[PageRound]

    def side(self, target: str, workload: str) -> Cell:
        return pool(
            [
                c
                for r in self.rounds
                for c in r.cells
                if (c.target, c.workload) == (target, workload)
            ]
        )


async def compare_page(
    service: Target,
    bare: Target,
    c: int,
    procs: Sequence[Proc],
    on_round: Callable[[PageRound], None],
    *,
    seconds: float,
    max_queries: int,
    delay_ms: float,
    emulator: str,
    emulator_pid: int,
    rounds: int = ROUNDS,
    sides: Sequence[tuple[Target, Workload]] | None = None,
) -> PageComparison:
    """`rounds` rounds at concurrency `c`: the service's page, its home, the bare home
    (or the given `sides`, as `bench.scroll_workload` compares its own)."""
    if sides is None:
        sides = [(service, PAGE), (service, HOME), (bare, HOME)]
    sides = list(sides)
    per_round = (seconds * TIME_FACTOR / rounds, max(1, max_queries // rounds))

    async def cell(target: Target, workload: Workload, seed: int) -> Cell:
        measured = await run_cell(
            target,
            workload,
            c,
            seconds=per_round[0],
            max_queries=per_round[1],
            delay_ms=delay_ms,
            emulator=emulator,
            emulator_pid=emulator_pid,
            seed=seed,
            lead_in=LEAD_IN_PER_CLIENT * c,
        )
        check_alive(procs)
        return measured

    done: list[PageRound] = []
    for number in range(1, rounds + 1):
        # Every side of a round gets the same users and ids; the order rotates.
        seed = zlib.crc32(f"{sides[0][1].name}/{c}/{number}".encode())
        shift = number % len(sides)
        order = sides[shift:] + sides[:shift]
        this = PageRound(number, [await cell(t, w, seed) for t, w in order])
        done.append(this)
        on_round(this)
    return PageComparison(done)


def _side(cell: Cell) -> str:
    return (
        f"{cell.calls_per_query:.2f} calls/page, CPU {cell.cpu_ms_per_query:.2f} ms/q, "
        f"p50-d {cell.overhead_ms(0.5):.1f} ms, p99-d {cell.overhead_ms(0.99):.1f} ms"
        + (f", {sum(cell.errors.values())} errors" if cell.errors else "")
    )


def summary(comparison: PageComparison, c: int, floor_ms: float | None) -> list[str]:
    """The lines the bench prints for the page workload (INFO: read, not gated on)."""
    page = comparison.side("service", "page")
    home = comparison.side("service", "home")
    bare = comparison.side("bare", "home")
    floor = f"; page floor {floor_ms:.3f} ms" if floor_ms is not None else ""
    return [
        f"page at c={c}, {len(comparison.rounds)} rotating rounds pooled, home's 4 carousels "
        f"as one recommendationPage of 4 deduplicated sections vs as 4 fields vs the bare "
        f"server: page {page.queries:,} q: {_side(page)} | 4 fields {home.queries:,} q: "
        f"{_side(home)} | bare {bare.queries:,} q: {_side(bare)}. Page/fields CPU "
        f"{page.cpu_ms_per_query / home.cpu_ms_per_query:.2f}x, p99 "
        f"{page.overhead_ms(0.99) - home.overhead_ms(0.99):+.2f} ms; page/bare CPU "
        f"{page.cpu_ms_per_query / bare.cpu_ms_per_query:.2f}x, p99 "
        f"{page.overhead_ms(0.99) - bare.overhead_ms(0.99):+.2f} ms{floor}"
    ]


def progress_line(label: str, done: PageRound, c: int, rounds: int, *, calls: bool) -> str:
    """One progress line per round of a side-by-side workload (page, scroll, cart)."""
    sides = "  ".join(
        f"{cell.target}/{cell.workload} {cell.queries:,} q p99-d {cell.overhead_ms(0.99):.1f} ms "
        f"CPU {cell.cpu_ms_per_query:.2f} ms/q"
        + (f" calls {cell.calls_per_query:.2f}/q" if calls else "")
        for cell in done.cells
    )
    return f"  {label:<8} c={c:<3} round {done.number}/{rounds}: {sides}"


def pooled_cells(
    comparison: PageComparison | None, sides: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Each (target, workload) side pooled, as `--json` writes it."""
    if comparison is None:
        return []
    return [comparison.side(target, workload).summary() for target, workload in sides]


def round_line(done: PageRound, c: int, rounds: int) -> str:
    return progress_line("page", done, c, rounds, calls=False)


def cells_json(comparison: PageComparison | None) -> list[dict[str, Any]]:
    """Under `page_cells`."""
    return pooled_cells(comparison, (("service", "page"), ("service", "home"), ("bare", "home")))
