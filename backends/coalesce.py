"""Identical calls in flight at the same time share one: the first caller's, joined by the rest.

The per-operation loader already makes equal requests of one operation cost one call;
this does the same across operations. The shared call runs as a task of its own, so a
caller that gives up (its operation cancelled, or out of time) never cancels it for the
others. Each caller waits under its own deadline. An outcome, success or failure, is
handed to the callers waiting at that moment and then forgotten: the next caller makes
a new call.
"""

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from errors import DeadlineSpent

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """The calls in flight, one per key; `run` starts one or joins the one under way."""

    def __init__(self) -> None:
        self._in_flight: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._in_flight)

    async def run(
        self,
        key: K,
        call: Callable[[], Awaitable[V]],
        deadline: float,
        spend: Callable[[], None] | None = None,
    ) -> tuple[V, bool]:
        """The outcome of the call for `key`, and whether it was joined rather than made.

        `call` makes the call when nobody else is making it (after `spend`, which may
        refuse by raising); it is expected to end by its own caller's deadline.
        `deadline` (time.monotonic) bounds this caller's wait only: past it,
        DeadlineSpent, while the call goes on for whoever else waits.
        """
        while True:
            task = self._in_flight.get(key)
            joined = task is not None
            if task is None:
                if spend is not None:
                    spend()
                task = asyncio.ensure_future(call())
                self._in_flight[key] = task
                task.add_done_callback(functools.partial(self._forget, key))
            if not joined:
                # Our own call ends by our deadline (the guard's timeouts see to it): no
                # timer of our own. Shielded, so that a cancelled maker leaves the call to
                # whoever joined it.
                return await asyncio.shield(task), False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineSpent("no time was left to wait for Personalize")
            try:
                async with asyncio.timeout(remaining):
                    return await asyncio.shield(task), joined
            except TimeoutError:
                raise DeadlineSpent(
                    "the deadline passed while waiting for a Personalize call"
                ) from None
            except DeadlineSpent:
                # The call ran out of its maker's time, not necessarily ours: a later
                # caller with time left asks again rather than inherit the timeout.
                if not joined or deadline <= time.monotonic():
                    raise

    async def aclose(self) -> None:
        """Cancel the calls still in flight (at shutdown) and wait until they have ended."""
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, key: K, task: "asyncio.Task[V]") -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        # Read the outcome, so a failure nobody waited for is not reported as unretrieved.
        if not task.cancelled():
            task.exception()
