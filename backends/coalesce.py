"""Identical calls in flight at the same time share one: the first caller's, joined by the rest.

The per-operation loader already makes equal requests of one operation cost one call;
this does the same across operations. The first caller makes the call in its own task
and hands the outcome, success or failure, straight to the callers who joined it
meanwhile; then it is forgotten, and the next caller makes a new call. Each joiner waits
under its own deadline and on a future of its own, so one that gives up takes nothing
from the others. A maker that is cancelled takes its call with it: its joiners with
time left ask again, and one of them makes the call.

Why not a task of its own for the shared call: every task and every future awaited
through a done-callback costs the awaiting caller a turn of the event loop, and under
load a turn waits for every other operation's ready work. A separate call task and the
shield around it were three such turns on every call's way back.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from domain.errors import DeadlineSpent, UpstreamUnavailable

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Abandoned(Exception):
    """The maker was cancelled before its call ended: nothing is known of the answer."""


class _SharedCall(Generic[V]):
    """A call in flight: the task making it, and a future for each caller who joined."""

    __slots__ = ("maker", "waiters")

    def __init__(self, maker: "asyncio.Task[object] | None") -> None:
        self.maker = maker
        self.waiters: list[asyncio.Future[V]] = []


class Coalescer(Generic[K, V]):
    """The calls in flight, one per key; `run` makes one or joins the one under way."""

    def __init__(self) -> None:
        self._in_flight: dict[K, _SharedCall[V]] = {}
        # Set by aclose: no call is made any more, and the joiners of a cancelled maker
        # give up instead of asking again.
        self._closing = False

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
        `deadline` (time.monotonic) bounds a joiner's wait only: past it, DeadlineSpent,
        while the call goes on for whoever else waits.
        """
        while True:
            shared = self._in_flight.get(key)
            if shared is None:
                if self._closing:
                    raise UpstreamUnavailable("Personalize calls have stopped: shutting down")
                if spend is not None:
                    spend()
                # No timer of our own: the guard's timeouts end the call by our deadline.
                return await self._make(key, call), False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineSpent("no time was left to wait for Personalize")
            waiter: asyncio.Future[V] = asyncio.get_running_loop().create_future()
            shared.waiters.append(waiter)
            try:
                async with asyncio.timeout(remaining):
                    return await waiter, True
            except TimeoutError:
                raise DeadlineSpent(
                    "the deadline passed while waiting for a Personalize call"
                ) from None
            except _Abandoned:
                if self._closing:
                    raise asyncio.CancelledError from None
                continue
            except DeadlineSpent:
                # The call ran out of its maker's time, not necessarily ours: with time
                # left, ask again rather than inherit the timeout.
                if deadline <= time.monotonic():
                    raise
            finally:
                # An outcome that came as this joiner was being cancelled is read here,
                # so that it is not reported as never retrieved.
                if waiter.done() and not waiter.cancelled():
                    waiter.exception()

    async def _make(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        shared: _SharedCall[V] = _SharedCall(asyncio.current_task())
        self._in_flight[key] = shared
        try:
            value = await call()
        except BaseException as exc:
            # Cancelled (or stopped otherwise): the joiners learn nothing and ask again.
            self._settle(key, shared, None, exc if isinstance(exc, Exception) else _Abandoned())
            raise
        self._settle(key, shared, value, None)
        return value

    def _settle(
        self, key: K, shared: _SharedCall[V], value: V | None, error: Exception | None
    ) -> None:
        if self._in_flight.get(key) is shared:
            del self._in_flight[key]
        for waiter in shared.waiters:
            if waiter.done():
                continue  # that joiner gave up
            if error is None:
                waiter.set_result(value)  # type: ignore[arg-type]
            else:
                waiter.set_exception(error)

    async def aclose(self) -> None:
        """Cancel the calls still in flight (at shutdown) and wait until they have ended;
        their joiners are cancelled too, rather than making the calls again."""
        self._closing = True
        while True:
            makers = {c.maker for c in self._in_flight.values() if c.maker is not None}
            makers.discard(asyncio.current_task())
            if not makers:
                return
            for maker in makers:
                maker.cancel()
            await asyncio.gather(*makers, return_exceptions=True)
