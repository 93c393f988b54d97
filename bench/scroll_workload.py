"""The scroll workload: a user's "for you" grid scrolled 5 pages of 20, beside the same
100 items asked as 5 separate calls of numResults 20, 40, 60, 80 and 100 (what a client
does without cursors) and the bare server's home page.

A scroll's first page selects `pageInfo`, so it fetches the window (100 items) once; its
4 later pages pass `after` and are read from the window, with no Personalize call. Each
client scrolls one user to the window's end (its next query depends on the last
answer's cursor: `Workload.on_answer`), then starts another user. The growing side asks
the same user numResults 20..100, one call per page. Measured as the page workload is
(`bench.page_workload.compare_page`: rounds taking turns, each side pooled), it prints
per side: Personalize calls per page, server CPU per query and p50/p99 over the delay.

The service runs one process by default; with `WORKERS` > 1 and the memory store, a
later page reaching another worker would find no window (`CURSOR_EXPIRED`, counted as
errors): scrolling across processes needs the Redis store (README).
"""

import random
from collections.abc import Sequence
from typing import Any

import orjson

from bench.page_workload import PageComparison, PageRound, pooled_cells, progress_line
from bench.workloads import N_USERS, Carousel, Json, Workload, user_id

PAGE_SIZE = 20
PAGES = 5
_SELECTION = "recommendationId items { itemId score }"

SCROLL_QUERY = f"""query Scroll($representations: [_Any!]!, $after: String) {{
  _entities(representations: $representations) {{
    ... on User {{
      recommendations(numResults: {PAGE_SIZE}, after: $after) {{
        {_SELECTION} pageInfo {{ endCursor hasNextPage }}
      }}
    }}
  }}
}}"""
GROWING_QUERY = f"""query Growing($representations: [_Any!]!, $n: Int) {{
  _entities(representations: $representations) {{
    ... on User {{ recommendations(numResults: $n) {{ {_SELECTION} }} }}
  }}
}}"""


def _user(rng: random.Random) -> Json:
    return {"__typename": "User", "id": user_id(rng.randint(1, N_USERS))}


class _Scrolls:
    """Each client's scroll: its user and the cursor of its next page (by rng)."""

    def __init__(self) -> None:
        self._asked: dict[random.Random, Json] = {}
        self._next: dict[random.Random, tuple[Json, str]] = {}

    def variables(self, rng: random.Random) -> Json:
        found = self._next.pop(rng, None)
        user, after = found if found is not None else (_user(rng), None)
        self._asked[rng] = user
        return {"representations": [user], "after": after}

    def answered(self, rng: random.Random, body: bytes) -> None:
        user = self._asked.pop(rng, None)
        try:
            page = orjson.loads(body)["data"]["_entities"][0]["recommendations"]
            info = page["pageInfo"]
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
            return  # a failed page: the client starts another scroll
        if user is not None and info["hasNextPage"]:
            self._next[rng] = (user, info["endCursor"])


class _Growing:
    """Each client's user and how many pages it has asked for (by rng)."""

    def __init__(self) -> None:
        self._at: dict[random.Random, tuple[Json, int]] = {}

    def variables(self, rng: random.Random) -> Json:
        user, page = self._at.get(rng, (None, PAGES))
        if user is None or page >= PAGES:
            user, page = _user(rng), 0
        self._at[rng] = (user, page + 1)
        return {"representations": [user], "n": PAGE_SIZE * (page + 1)}


def _build(raw: Sequence[Carousel]) -> Json:
    (carousel,) = raw
    rid, items = carousel
    shown = [{"itemId": i, "score": s} for i, s in items]
    return {"data": {"_entities": [{"recommendations": {"recommendationId": rid, "items": shown}}]}}


def _paths(data: Json) -> list[Any]:
    return [("_entities", 0, "recommendations")]


_scrolls = _Scrolls()
SCROLL = Workload(
    name="scroll",
    description=f"1 user's grid, {PAGES} pages of {PAGE_SIZE} on one call (after, pageInfo)",
    query=SCROLL_QUERY,
    personalize_fields=1,
    make_variables=_scrolls.variables,
    paths=_paths,
    build=_build,
    on_answer=_scrolls.answered,
)
GROWING = Workload(
    name="growing",
    description=f"the same grid as {PAGES} calls of numResults {PAGE_SIZE}..{PAGE_SIZE * PAGES}",
    query=GROWING_QUERY,
    personalize_fields=1,
    make_variables=_Growing().variables,
    paths=_paths,
    build=_build,
)


def _side(cell: Any) -> str:
    return (
        f"{cell.calls_per_query:.2f} calls/page, CPU {cell.cpu_ms_per_query:.2f} ms/q, "
        f"p50-d {cell.overhead_ms(0.5):.1f} ms, p99-d {cell.overhead_ms(0.99):.1f} ms"
        + (f", {sum(cell.errors.values())} errors" if cell.errors else "")
    )


def summary(comparison: PageComparison, c: int) -> list[str]:
    """The lines the bench prints for the scroll workload (INFO: read, not gated on)."""
    scroll = comparison.side("service", "scroll")
    growing = comparison.side("service", "growing")
    bare = comparison.side("bare", "home")
    return [
        f"scroll at c={c}, {len(comparison.rounds)} rotating rounds pooled, {PAGES} pages of "
        f"{PAGE_SIZE} on one call vs numResults {PAGE_SIZE}..{PAGE_SIZE * PAGES} per page vs "
        f"the bare server's home: scroll {scroll.queries:,} q: {_side(scroll)} | growing "
        f"{growing.queries:,} q: {_side(growing)} | bare {bare.queries:,} q: {_side(bare)}. "
        f"Scroll/growing CPU {scroll.cpu_ms_per_query / growing.cpu_ms_per_query:.2f}x, p99 "
        f"{scroll.overhead_ms(0.99) - growing.overhead_ms(0.99):+.2f} ms; scroll/bare p99 "
        f"{scroll.overhead_ms(0.99) - bare.overhead_ms(0.99):+.2f} ms"
    ]


def round_line(done: PageRound, c: int, rounds: int) -> str:
    return progress_line("scroll", done, c, rounds, calls=True)


def cells_json(comparison: PageComparison | None) -> list[dict[str, Any]]:
    """Under `scroll_cells`."""
    return pooled_cells(
        comparison, (("service", "scroll"), ("service", "growing"), ("bare", "home"))
    )
