"""Two ways of doing the same thing, timed side by side: CPU per operation over interleaved rounds.

Each side is a way to do `n` operations and a way to read the CPU of whoever does them
(this process, or a server's from /proc). The rounds interleave the two sides and swap
who goes first every round (ours, library; library, ours; ...), so that a change of
the machine's load during the run falls on both. The figure of a side is the median of
its rounds; the ratio is library/ours of those medians, and the range of the per-round
ratios shows how much the noise moved it.
"""

import statistics
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Side:
    """One way of doing the operations, and the CPU meter that sees its cost."""

    # Does n operations, start to finish.
    run: Callable[[int], Awaitable[None]]
    # CPU seconds spent so far by whoever does the work (monotonic).
    cpu: Callable[[], float]


@dataclass(frozen=True)
class Comparison:
    """CPU microseconds per operation of each side, one value per round."""

    ours: tuple[float, ...]
    library: tuple[float, ...]

    @property
    def ours_us(self) -> float:
        return statistics.median(self.ours)

    @property
    def library_us(self) -> float:
        return statistics.median(self.library)

    @property
    def ratio(self) -> float:
        """library / ours, of the medians."""
        return self.library_us / self.ours_us

    @property
    def round_ratios(self) -> tuple[float, float]:
        """The least and the greatest library/ours of a single round."""
        ratios = [lib / ours for ours, lib in zip(self.ours, self.library, strict=True)]
        return min(ratios), max(ratios)


async def measure(
    sides: Mapping[str, Side], *, ops: int, rounds: int
) -> dict[str, tuple[float, ...]]:
    """Warm every side up, then `rounds` rounds of `ops` operations each, per side.

    CPU µs per operation, one value per round. Each round starts with the next side.
    """
    warm_up = max(1, ops // 5)
    for side in sides.values():
        await side.run(warm_up)
    names = list(sides)
    found: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        start = round_ % len(names)
        for name in names[start:] + names[:start]:
            side = sides[name]
            before = side.cpu()
            await side.run(ops)
            found[name].append((side.cpu() - before) * 1e6 / ops)
    return {name: tuple(values) for name, values in found.items()}


async def compare(ours: Side, library: Side, *, ops: int, rounds: int) -> Comparison:
    """Ours against the library, interleaved (ours first in even rounds, library in odd)."""
    found = await measure({"ours": ours, "library": library}, ops=ops, rounds=rounds)
    return Comparison(found["ours"], found["library"])
