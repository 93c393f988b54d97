"""User events on their way to Personalize: the outbox, and senders per session.

`recordEvents` stores one PutEvents batch (one session, 1..10 events) in the outbox
(`backends.outbox`: a local SQLite journal or a Redis stream) before it answers, then
may wait briefly for its delivery. Up to `max_in_flight` sessions are sent to at once;
a session's batches go one after another, in the order they were stored. A throttled or
failed call (5xx, timeouts, connection errors) is retried with backoff, that batch
alone, until it goes through; a batch Personalize refuses for good (400, 403) moves to
the outbox's dead letters with its reason. A delivered batch is deleted from the
outbox. What is left at shutdown once `flush_timeout` has passed stays in the outbox,
and the next start (or another process sharing it) sends it: at least once, each event
with its eventId so a copy is identifiable. A full queue refuses new batches with a
coded error rather than dropping any.
"""

import asyncio
import bisect
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from backends.outbox import Outbox, Stored
from domain.backoff import backoff_ceiling
from domain.errors import EventsNotStored, EventsQueueFull, SubgraphError
from settings import EventsSettings

log = logging.getLogger(__name__)


class EventSink(Protocol):
    """Where batches go: Personalize's PutEvents, or the embedded engine."""

    async def put_events(self, params: dict[str, Any]) -> None:
        """Send one PutEvents request; raise a SubgraphError describing any failure."""
        ...


@dataclass(eq=False)
class _Batch:
    stored: Stored
    # True once delivered; the SubgraphError when Personalize refused it for good.
    delivered: asyncio.Future[bool] = field(default_factory=asyncio.Future)

    def __post_init__(self) -> None:
        # Read the outcome even when nobody waits any more, so a refusal reported
        # after the wait is not also flagged as an unretrieved exception.
        self.delivered.add_done_callback(lambda f: f.cancelled() or f.exception())

    @property
    def size(self) -> int:
        return len(self.stored.params["eventList"])


@dataclass
class EventCounts:
    """What happened to events so far (for metrics and the closing report)."""

    accepted: int = 0
    delivered: int = 0
    rejected: int = 0
    refused: int = 0
    retries: int = 0


class EventSender:
    """The outbox's senders; one per process, opened in the app's lifespan."""

    def __init__(
        self,
        sink: EventSink,
        settings: EventsSettings,
        outbox: Outbox,
        on_change: Callable[["EventSender"], None] | None = None,
    ) -> None:
        self._sink = sink
        self._settings = settings
        self._outbox = outbox
        self._rng = random.Random()
        self._tasks: list[asyncio.Task[None]] = []
        self.counts = EventCounts()
        self._on_change = on_change
        # Each session's batches in order; a session is in `_ready` while its first
        # batch waits for a sender, and is being sent while it is not.
        self._sessions: dict[str, deque[_Batch]] = {}
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        # The batches in `_sessions` (those being sent included) by outbox id; its size
        # is the depth. A batch leaves only once it left the outbox
        # (delivered and done, or dead-lettered), so `take` returns what is ours but
        # missing here (a lost reply) and never a second copy of what is held.
        self._by_id: dict[str, _Batch] = {}
        self._sending = 0
        self._busy: set[str] = set()  # sessions whose first batch is being sent
        self._storing = 0  # batches on their way into the outbox
        self._empty = asyncio.Event()
        self._empty.set()
        self.dead_letters = 0

    @property
    def depth(self) -> int:
        """Batches this process holds for delivery (those being sent included)."""
        return len(self._by_id)

    @property
    def oldest_age(self) -> float:
        """Seconds the oldest batch this process holds has waited (0 when none)."""
        oldest = min((b.stored.added for q in self._sessions.values() for b in q), default=None)
        return 0.0 if oldest is None else max(0.0, time.time() - oldest)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        sink: EventSink,
        settings: EventsSettings,
        outbox: Outbox,
        on_change: Callable[["EventSender"], None] | None = None,
    ) -> AsyncIterator["EventSender"]:
        sender = cls(sink, settings, outbox, on_change)
        try:
            sender._hold(await outbox.take(sender._by_id), "left by a previous process")
            sender.dead_letters = await outbox.dead_count()
        except Exception:
            # A Redis that is down at start-up: recommendations are served, recordEvents
            # refuses (EVENTS_QUEUE_FULL) until the outbox answers; upkeep keeps trying.
            log.exception("event outbox unavailable at start-up; trying again")
        sender._tasks = [
            asyncio.create_task(sender._send(), name=f"event-sender-{n}")
            for n in range(settings.max_in_flight)
        ]
        sender._tasks.append(asyncio.create_task(sender._keep(), name="event-outbox-lease"))
        try:
            yield sender
        finally:
            await sender._close()

    async def record(self, params: dict[str, Any]) -> bool:
        """Store one batch; True once delivered within `wait_ms`, False if still waiting.

        A refusal for good that arrives within the wait is raised (the client learns
        its events were not taken); a later one is logged, counted and kept as a dead
        letter.
        """
        # An id per event lets Personalize drop the copy when a retry follows a call
        # that did arrive (a timeout, a dropped connection, a restart after the fact).
        for event in params["eventList"]:
            event.setdefault("eventId", uuid.uuid4().hex)
        size = len(params["eventList"])
        waiting = len(self._by_id) - self._sending + self._storing
        if waiting >= self._settings.queue_size:
            self.counts.refused += size
            self._changed()
            raise EventsQueueFull(
                f"{waiting} event batches are waiting for Personalize; "
                "these events were not taken, send them again later"
            )
        # Counted now, not when the task starts: requests arriving together would
        # otherwise all pass the check above before any of them is counted.
        self._storing += 1
        # A task of its own, shielded: once stored, the batch is queued for delivery
        # even if this request stops waiting.
        batch = await asyncio.shield(asyncio.ensure_future(self._store(params, size)))
        if self._settings.wait_ms <= 0:
            return False
        try:
            async with asyncio.timeout(self._settings.wait_ms / 1000):
                return await asyncio.shield(batch.delivered)
        except TimeoutError:
            return False

    async def _store(self, params: dict[str, Any], size: int) -> _Batch:
        # `record` counted this batch in `_storing`; it is uncounted here, once held.
        try:
            stored = await self._outbox.add(params)
        except Exception:
            log.exception("event outbox could not store a batch")
            self.counts.refused += size
            self._changed()
            raise EventsNotStored(
                "the events could not be stored for delivery; "
                "these events were not taken, send them again later"
            ) from None
        finally:
            self._storing -= 1
        # Upkeep's `take` may have found the batch first (it is ours in the outbox before
        # this reply arrives): it is held already, not queued twice.
        batch = self._by_id.get(stored.id)
        if batch is None:
            batch = _Batch(stored)
            self._enqueue(batch)
        self.counts.accepted += size
        self._changed()
        return batch

    def _hold(self, found: list[Stored], whence: str) -> None:
        taken = []
        for stored in found:
            if stored.id not in self._by_id:
                self._enqueue(_Batch(stored))
                taken.append(stored)
        if not taken:
            return
        log.warning(
            "event batches taken over from the outbox, sending them",
            extra={
                "batches": len(taken),
                "events": sum(len(s.params["eventList"]) for s in taken),
                "whence": whence,
            },
        )
        self._changed()

    def _enqueue(self, batch: _Batch) -> None:
        session = batch.stored.session
        queue = self._sessions.get(session)
        self._by_id[batch.stored.id] = batch
        self._empty.clear()
        if queue is None:
            self._sessions[session] = deque([batch])
            self._ready.put_nowait(session)
            return
        # Taken-over batches are older than what this process stored since: in order,
        # behind the batch being sent, if any.
        if queue and batch.stored.order < queue[-1].stored.order:
            lo = 1 if session in self._busy else 0
            at = bisect.bisect_right(queue, batch.stored.order, lo=lo, key=lambda b: b.stored.order)
            queue.insert(at, batch)
        else:
            queue.append(batch)

    async def _send(self) -> None:
        # Nothing may end this loop but cancellation: a dead sender would accept events
        # it never delivers.
        while True:
            session = await self._ready.get()
            queue = self._sessions[session]
            batch = queue[0]
            self._sending += 1
            self._busy.add(session)
            try:
                await self._deliver(batch)
            except Exception:
                # Not a failed call (those retry inside): a bug. The batch stays first
                # in its session and is tried again, rather than this sender ending.
                log.exception("event sender failed on a batch; trying it again")
                await asyncio.sleep(self._settings.retry_cap)
                self._ready.put_nowait(session)
                continue
            finally:
                self._sending -= 1
                self._busy.discard(session)
            queue.popleft()
            # Delivered and done, or dead-lettered: out of the outbox (unless `done` or
            # `dead` failed: then `take` returns it again, sent at least once).
            self._by_id.pop(batch.stored.id, None)
            if queue:
                self._ready.put_nowait(session)
            else:
                del self._sessions[session]
                if not self._sessions:
                    self._empty.set()
            self._changed()

    async def _deliver(self, batch: _Batch) -> None:
        attempt = 0
        while True:
            try:
                await self._sink.put_events(batch.stored.params)
            except Exception as exc:
                if isinstance(exc, SubgraphError) and not exc.retryable:
                    await self._reject(batch, exc)
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
                ceiling = backoff_ceiling(
                    attempt, self._settings.retry_base, self._settings.retry_cap
                )
                await asyncio.sleep(self._rng.uniform(ceiling / 2, ceiling))
                continue
            self.counts.delivered += batch.size
            if not batch.delivered.done():
                batch.delivered.set_result(True)
            try:
                await self._outbox.done(batch.stored)
            except Exception:
                # Delivered, but still in the outbox: upkeep takes it again once it has
                # left memory, and it is sent again (at least once; the eventIds
                # identify the copy).
                log.exception("event outbox could not forget a delivered batch")
            return

    async def _reject(self, batch: _Batch, exc: SubgraphError) -> None:
        self.counts.rejected += batch.size
        log.error(
            "event batch rejected by Personalize, kept as a dead letter",
            extra={"code": exc.code, "events": batch.size, "reason": str(exc)},
        )
        try:
            await self._outbox.dead(batch.stored, str(exc.code), str(exc))
            self.dead_letters += 1
        except Exception:
            # It stays in the outbox: upkeep takes it again, to be refused again.
            log.exception("event outbox could not keep a dead letter; it stays queued")
        if not batch.delivered.done():
            batch.delivered.set_exception(exc)

    async def _keep(self) -> None:
        """Renew this process's lease; take over batches whose owner is gone."""
        while True:
            await asyncio.sleep(self._settings.lease / 3)
            try:
                await self._outbox.renew()
                self._hold(await self._outbox.take(self._by_id), "owner gone or a reply lost")
                self.dead_letters = await self._outbox.dead_count()
            except Exception:
                log.exception("event outbox upkeep failed; trying again")

    async def _close(self) -> None:
        """Flush what is held within `flush_timeout`; the rest stays in the outbox."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.flush_timeout):
                await self._empty.wait()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                # The outbox is released below whatever ended a task.
                log.exception("event sender task failed")
        kept = [b for queue in self._sessions.values() for b in queue]
        try:
            await self._outbox.release()
        except Exception:
            log.exception("event outbox could not give its batches up; another start will")
        if kept:
            log.warning(
                "events kept in the outbox for the next start",
                extra={
                    "events": sum(b.size for b in kept),
                    "batches": len(kept),
                    "outbox": self._outbox.kind,
                    "flush_timeout": self._settings.flush_timeout,
                },
            )
