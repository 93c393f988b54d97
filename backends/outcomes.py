"""The words a call's outcome is reported in: "ok", or what went wrong, from a fixed set.

Each error names its outcome here rather than by its class name: the outcome is a
metric label and a span attribute that dashboards and alerts are written against, so
renaming a class must not quietly rename a series.
"""

import asyncio

from domain.errors import (
    CircuitOpen,
    CursorExpired,
    DeadlineSpent,
    EventsNotStored,
    EventsQueueFull,
    InvalidArgument,
    NotConfigured,
    OperationTooExpensive,
    SubgraphError,
    UpstreamNotFound,
    UpstreamRefused,
    UpstreamRejectedInput,
    UpstreamThrottled,
    UpstreamTimeout,
    UpstreamUnavailable,
)

OK = "ok"
CANCELLED = "cancelled"
INTERNAL_ERROR = "internal_error"

OUTCOMES: dict[type[SubgraphError], str] = {
    SubgraphError: "subgraph_error",
    InvalidArgument: "invalid_argument",
    UpstreamRejectedInput: "upstream_rejected_input",
    NotConfigured: "not_configured",
    UpstreamNotFound: "upstream_not_found",
    OperationTooExpensive: "operation_too_expensive",
    UpstreamThrottled: "upstream_throttled",
    UpstreamTimeout: "upstream_timeout",
    DeadlineSpent: "deadline_spent",
    UpstreamUnavailable: "upstream_unavailable",
    UpstreamRefused: "upstream_refused",
    CircuitOpen: "circuit_open",
    EventsQueueFull: "events_queue_full",
    EventsNotStored: "events_not_stored",
    CursorExpired: "cursor_expired",
}


def outcome(exc: BaseException) -> str:
    """The outcome label of a call that raised `exc` (a bounded set)."""
    if isinstance(exc, asyncio.CancelledError):
        return CANCELLED
    if not isinstance(exc, SubgraphError):
        return INTERNAL_ERROR
    # An error without a name of its own reports its nearest named ancestor's.
    for kind in type(exc).__mro__:
        name = OUTCOMES.get(kind)
        if name is not None:
            return name
    return OUTCOMES[SubgraphError]
