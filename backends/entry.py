"""A stored answer and when it was stored: what every answer store keeps and hands back."""

import time
from dataclasses import dataclass

from domain.result import RecommendationResult


@dataclass(frozen=True, slots=True)
class Entry:
    """A stored answer and when it was stored.

    Times are wall-clock (`time.time`): Redis entries outlive the process that wrote
    them and are read by other replicas.
    """

    result: RecommendationResult
    stored_at: float

    def age(self) -> float:
        return time.time() - self.stored_at
