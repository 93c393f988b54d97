"""Real-time events (PutEvents) joined to the training interactions, one user at a time.

Personalize's event trackers feed two things: the next training run (every recipe),
and, at once, the user's history as real-time recommendations read it. This store is
the second part. Recording is O(events): an event is appended to its user's list and
that user's merged history is dropped from the cache. The next request for the user
merges training rows and recorded events by time (``UserHistory``), which filters
over ``Interactions.EVENT_TYPE`` and the user-personalization models read instead of
the training rows; nothing is refitted.

What does not change: popularity and trending counts, SIMS neighbours and the fitted
user-personalization weights (the service updates those only when a solution is
retrained). Events whose item is not in the Items dataset stay in the history (they
count among the latest events of their type) but cannot be recommended; events
without an itemId are accepted and counted only. Events without a userId are held per
sessionId and change nothing until an event with a userId arrives in the same session:
then they join that user's history, as Personalize associates a session's anonymous
events with the user who logs in.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import Dataset, UserHistory
from .validation import PutEventsRequest

EVENTS_PER_USER = 1_000
"""Real-time events kept per user (oldest dropped); filters read the latest 100 per type."""
EVENTS_PER_SESSION = 100
"""Anonymous events held per sessionId until the session's user is known."""
SESSIONS = 10_000
"""Anonymous sessions held at once; the least recently active one is forgotten first."""


@dataclass(frozen=True)
class _Recorded:
    item: int
    """Index into the Items table, or -1 for an item the Items table does not have."""
    item_id: str
    sent_at: float
    event: int
    """Code into the store's lower-cased event type vocabulary."""
    value: float


class EventStore:
    """Recorded events per user and per anonymous session, and merged histories."""

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset
        inter = dataset.interactions
        # Lower-cased names: filters compare event types case-insensitively. The
        # training types come first, so their codes translate by one lookup table.
        self._type_code: dict[str, int] = {}
        for name in inter.event_types:
            self._type_code.setdefault(name.lower(), len(self._type_code))
        self._training_codes = np.array(
            [self._type_code[name.lower()] for name in inter.event_types], dtype=np.int64
        )
        self._users: dict[str, deque[_Recorded]] = {}
        self._sessions: dict[str, deque[_Recorded]] = {}
        self._histories: dict[str, UserHistory] = {}
        self.counts = self._zero_counts()
        # Events per metric attribution source and event type, as Personalize's metric
        # attributions report them (events without a source are not here).
        self.attributed: dict[str, dict[str, int]] = {}

    @staticmethod
    def _zero_counts() -> dict[str, int]:
        return {
            "received": 0,
            "recorded": 0,
            "anonymous": 0,
            "merged": 0,
            "unknownItems": 0,
            "withoutItem": 0,
        }

    def clear(self) -> None:
        """Forget every recorded event, as if the engine had just been built."""
        self._users.clear()
        self._sessions.clear()
        self._histories.clear()
        self.counts = self._zero_counts()
        self.attributed = {}

    def record(self, request: PutEventsRequest) -> None:
        """Add a validated PutEvents request's events to its user (or its session)."""
        index = self._dataset.items.index
        counts = self.counts
        counts["received"] += len(request.events)
        recorded: list[_Recorded] = []
        for event in request.events:
            if event.attribution_source is not None:
                types = self.attributed.setdefault(event.attribution_source, {})
                types[event.event_type] = types.get(event.event_type, 0) + 1
            if event.item_id is None:
                counts["withoutItem"] += 1
                continue
            item = index.get(event.item_id, -1)
            counts["unknownItems"] += item < 0
            code = self._type_code.setdefault(event.event_type.lower(), len(self._type_code))
            value = math.nan if event.event_value is None else event.event_value
            recorded.append(_Recorded(item, event.item_id, event.sent_at, code, value))
        session = request.session_id
        if request.user_id is None:
            counts["anonymous"] += len(recorded)
            if recorded:
                # Re-inserting moves the session to the end: the oldest-active goes first.
                waiting = self._sessions.pop(session, None)
                if waiting is None:
                    waiting = deque(maxlen=EVENTS_PER_SESSION)
                waiting.extend(recorded)
                self._sessions[session] = waiting
                while len(self._sessions) > SESSIONS:
                    del self._sessions[next(iter(self._sessions))]
            return
        held = self._sessions.pop(session, None)
        if held:
            counts["merged"] += len(held)
            recorded = [*held, *recorded]
        if not recorded:
            return
        user = request.user_id
        mine = self._users.get(user)
        if mine is None:
            mine = self._users[user] = deque(maxlen=EVENTS_PER_USER)
        mine.extend(recorded)
        counts["recorded"] += len(recorded)
        self._histories.pop(user, None)

    def history(self, user_id: str | None) -> UserHistory | None:
        """The user's training rows and recorded events by time; None without events."""
        if user_id is None:
            return None
        cached = self._histories.get(user_id)
        if cached is not None:
            return cached
        mine = self._users.get(user_id)
        if not mine:
            return None
        inter = self._dataset.interactions
        user = inter.user_index.get(user_id)
        n = len(mine)
        items = np.fromiter((e.item for e in mine), dtype=np.int64, count=n)
        events = np.fromiter((e.event for e in mine), dtype=np.int64, count=n)
        sent_at = np.fromiter((e.sent_at for e in mine), dtype=np.float64, count=n)
        values = np.fromiter((e.value for e in mine), dtype=np.float64, count=n)
        if user is not None:
            rows = inter.history(user)
            training_values: Any = inter.extra.get("EVENT_VALUE")
            items = np.concatenate([inter.item[rows].astype(np.int64), items])
            events = np.concatenate([self._training_codes[inter.event[rows]], events])
            sent_at = np.concatenate([inter.timestamp[rows].astype(np.float64), sent_at])
            values = np.concatenate(
                [
                    np.full(rows.stop - rows.start, np.nan)
                    if training_values is None
                    else np.asarray(training_values[rows], dtype=np.float64),
                    values,
                ]
            )
        # Stable: at equal times training rows stay first and events keep arrival order.
        order = np.argsort(sent_at, kind="stable")
        merged = UserHistory(
            items[order],
            events[order],
            np.floor(sent_at[order]).astype(np.int64),
            values[order],
            self._type_code,
        )
        self._histories[user_id] = merged
        return merged
