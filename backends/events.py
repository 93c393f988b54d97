"""User events on their way to Personalize: a bounded queue and one sender per process.

`recordEvents` puts one PutEvents batch (one user or session, 1..10 events) on the
queue and may wait briefly for it. The sender sends batches in order; a throttled or
failed call (5xx, timeouts, connection errors) is retried with backoff until it goes
through, so throttling loses nothing. A full queue refuses new batches with a coded
error rather than dropping any; a batch Personalize rejects for good (400, 403) is
reported — logged with its size and counted — never dropped silently; so is whatever is
still queued when the flush at shutdown runs out of time.
"""

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from domain.errors import EventsQueueFull, SubgraphError
from settings import EventsSettings

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where batches go: Personalize's PutEvents, or the embedded engine."""

    async def put_events(self, params: dict[str, Any]) -> None:
        """Send one PutEvents request; raise a SubgraphError describing any failure."""
        ...


@dataclass
class _Batch:
    params: dict[str, Any]
    # True once delivered; the SubgraphError when Personalize refused it for good.
    delivered: asyncio.Future[bool] = field(default_factory=asyncio.Future)

    def __post_init__(self) -> None:
        # Read the outcome even when nobody waits any more, so a refusal reported
        # after the wait is not also flagged as an unretrieved exception.
        self.delivered.add_done_callback(lambda f: f.cancelled() or f.exception())

    @property
    def size(self) -> int:
        return len(self.params["eventList"])


@dataclass
class EventCounts:
    """What happened to events so far (for metrics and the closing report)."""

    accepted: int = 0
    delivered: int = 0
    rejected: int = 0
    refused: int = 0
    retries: int = 0


class EventSender:
    """The queue and its sender task; one per process, opened in the app's lifespan."""

    def __init__(
        self,
        sink: EventSink,
        settings: EventsSettings,
        on_change: Callable[["EventSender"], None] | None = None,
    ) -> None:
        self._sink = sink
        self._settings = settings
        self._queue: asyncio.Queue[_Batch] = asyncio.Queue(maxsize=settings.queue_size)
        self._rng = random.Random()
        self._task: asyncio.Task[None] | None = None
        self.counts = EventCounts()
        self._on_change = on_change
        # The batch being delivered, if any: counted as queued, and reported if shutdown
        # interrupts it.
        self._current: _Batch | None = None

    @property
    def depth(self) -> int:
        """Batches waiting to be sent (the one being sent included)."""
        return self._queue.qsize() + (1 if self._current is not None else 0)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        sink: EventSink,
        settings: EventsSettings,
        on_change: Callable[["EventSender"], None] | None = None,
    ) -> AsyncIterator["EventSender"]:
        sender = cls(sink, settings, on_change)
        sender._task = asyncio.create_task(sender._run(), name="event-sender")
        try:
            yield sender
        finally:
            await sender._close()

    async def record(self, params: dict[str, Any]) -> bool:
        """Queue one batch; True once delivered within `wait_ms`, False if still queued.

        A refusal for good that arrives within the wait is raised (the client learns
        its events were not taken); a later one is logged and counted.
        """
        # An id per event lets Personalize drop the copy when a retry follows a call
        # that did arrive (a timeout or a dropped connection after the fact).
        for event in params["eventList"]:
            event.setdefault("eventId", uuid.uuid4().hex)
        batch = _Batch(params)
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.counts.refused += batch.size
            self._changed()
            raise EventsQueueFull(
                f"{self._queue.qsize()} event batches are waiting for Personalize; "
                "these events were not taken, send them again later"
            ) from None
        self.counts.accepted += batch.size
        self._changed()
        if self._settings.wait_ms <= 0:
            return False
        try:
            async with asyncio.timeout(self._settings.wait_ms / 1000):
                return await asyncio.shield(batch.delivered)
        except TimeoutError:
            return False

    async def _run(self) -> None:
        # Nothing may end this loop but cancellation: a dead sender would accept events
        # it never delivers.
        while True:
            batch = await self._queue.get()
            self._current = batch
            try:
                await self._deliver(batch)
            finally:
                if batch.delivered.done():
                    self._current = None
                self._queue.task_done()
                self._changed()

    async def _deliver(self, batch: _Batch) -> None:
        attempt = 0
        while True:
            try:
                await self._sink.put_events(batch.params)
            except Exception as exc:
                if isinstance(exc, SubgraphError) and not exc.retryable:
                    self.counts.rejected += batch.size
                    log.error(
                        "event batch rejected by Personalize, not delivered",
                        extra={"code": exc.code, "events": batch.size, "reason": str(exc)},
                    )
                    if not batch.delivered.done():
                        batch.delivered.set_exception(exc)
                    return
                if not isinstance(exc, SubgraphError):
                    # A bug or an unmapped client error: keep the batch, say so, retry.
                    log.exception("event batch failed unexpectedly, retrying")
                attempt += 1
                self.counts.retries += 1
                if attempt in (1, 10) or attempt % 100 == 0:
                    log.warning(
                        "event batch not delivered yet, retrying",
                        extra={
                            "code": getattr(exc, "code", type(exc).__name__),
                            "attempt": attempt,
                            "events": batch.size,
                        },
                    )
                ceiling = min(
                    self._settings.retry_cap, self._settings.retry_base * 2 ** (attempt - 1)
                )
                await asyncio.sleep(self._rng.uniform(ceiling / 2, ceiling))
                continue
            self.counts.delivered += batch.size
            _settle(batch, True)
            return

    async def _close(self) -> None:
        """Flush what is queued within `flush_timeout`, then report what is left."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.flush_timeout):
                await self._queue.join()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        interrupted = [self._current] if self._current is not None else []
        left = sum(b.size for b in interrupted + _drain(self._queue))
        if left:
            log.error(
                "events not delivered at shutdown",
                extra={"events": left, "flush_timeout": self._settings.flush_timeout},
            )


def _settle(batch: _Batch, delivered: bool) -> None:
    if not batch.delivered.done():
        batch.delivered.set_result(delivered)


def _drain(queue: "asyncio.Queue[_Batch]") -> list[_Batch]:
    batches = []
    while not queue.empty():
        batches.append(queue.get_nowait())
    return batches
