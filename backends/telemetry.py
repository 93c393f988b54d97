"""What the call stack tells whoever watches it: protocols, and silence by default.

Backends never import the code that turns these reports into metrics and spans
(`observability/`); `server.py` hands that in. Use cases and outcomes are reported as
plain strings (outcomes from `backends.outcomes`).
"""

from contextlib import AbstractContextManager
from typing import Protocol

from domain.request import RecommendationRequest


class CallObserver(Protocol):
    """Hears what the cached backend did for each request, to count it."""

    def hit(self, use_case: str) -> None:
        """A fresh stored answer was served: no call made."""
        ...

    def miss(self, use_case: str) -> None:
        """No fresh stored answer: Personalize was asked."""
        ...

    def stale(self, use_case: str) -> None:
        """Personalize failed, and an expired stored answer was served instead."""
        ...

    def coalesced(self, use_case: str) -> None:
        """The request joined an identical call already in flight: no call made."""
        ...

    def called(self, use_case: str, outcome: str, seconds: float) -> None:
        """A Personalize call (retries included) ended with `outcome` after `seconds`."""
        ...


class CallSpan(Protocol):
    """One traced Personalize call, told how it ended when it did not end well."""

    outcome: str


class CallTracer(Protocol):
    """Brackets each Personalize call in a span, and marks events on the current one."""

    def call(self, request: RecommendationRequest) -> AbstractContextManager[CallSpan]:
        """A span for the call about to be made for `request`, open for the block."""
        ...

    def attempt(self) -> None:
        """One more attempt of the call in progress (its span counts them)."""
        ...

    def note(self, event: str, use_case: str) -> None:
        """An event (cache_hit, coalesced, stale_served) on the current span."""
        ...


class SilentObserver:
    """A `CallObserver` that counts nothing: for a stack nobody watches."""

    def hit(self, use_case: str) -> None:
        pass

    def miss(self, use_case: str) -> None:
        pass

    def stale(self, use_case: str) -> None:
        pass

    def coalesced(self, use_case: str) -> None:
        pass

    def called(self, use_case: str, outcome: str, seconds: float) -> None:
        pass


# The default observer: one is enough, it keeps nothing.
SILENT = SilentObserver()
