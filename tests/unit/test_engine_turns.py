"""The emulator's engine work takes turns with everything else on the event loop."""

import asyncio
import functools
import itertools

import pytest
from starlette.responses import Response

from local_personalize.emulator import EngineTurns


async def test_each_call_s_work_gets_a_loop_turn_of_its_own() -> None:
    turns = EngineTurns()
    log: list[str] = []
    done = False

    async def ticker() -> None:
        # Stands for due answers and new arrivals: work that needs a loop turn.
        while not done:
            log.append("tick")
            await asyncio.sleep(0)

    def work(n: int) -> Response:
        log.append(f"work {n}")
        return Response(str(n))

    ticking = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    answers = await asyncio.gather(*(turns.run(functools.partial(work, n)) for n in range(4)))
    done = True
    await ticking
    assert [a.body for a in answers] == [b"0", b"1", b"2", b"3"]
    works = [i for i, entry in enumerate(log) if entry.startswith("work")]
    # In arrival order, and never two calls' work in one turn.
    assert [log[i] for i in works] == ["work 0", "work 1", "work 2", "work 3"]
    assert all(later - earlier > 1 for earlier, later in itertools.pairwise(works))


async def test_a_failure_reaches_its_caller_only_and_a_cancelled_call_is_skipped() -> None:
    turns = EngineTurns()
    ran: list[str] = []

    def work(name: str) -> Response:
        ran.append(name)
        if name == "bad":
            raise RuntimeError("engine broke")
        return Response(name)

    bad = asyncio.ensure_future(turns.run(lambda: work("bad")))
    gone = asyncio.ensure_future(turns.run(lambda: work("gone")))
    good = asyncio.ensure_future(turns.run(lambda: work("good")))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(RuntimeError, match="engine broke"):
        await bad
    assert (await good).body == b"good"
    assert ran == ["bad", "good"]
