"""The state of a circuit breaker, as the guard keeps it and metrics report it."""

from enum import StrEnum


class BreakerState(StrEnum):
    """Closed: calls flow. Open: calls are refused. Half-open: one probe is in flight."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
