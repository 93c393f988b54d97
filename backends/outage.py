"""Whether the Redis cache failed a moment ago: skipped meanwhile, and said once per outage."""

import logging
import time

# The logger the Redis store has always logged under, so log filters and alerts on it
# still match after the store moved into modules of its own.
log = logging.getLogger("backends.cache")

# After a Redis error, lookups and writes skip Redis this long instead of paying a
# timeout per request; the first request after it tries again.
_OUTAGE_PAUSE = 1.0


class Outage:
    """Whether Redis failed a moment ago; logs once when an outage starts and once when it ends."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._down = False
        self._retry_at = 0.0

    def skip(self) -> bool:
        return self._down and time.monotonic() < self._retry_at

    def failed(self, exc: BaseException) -> None:
        if not self._down:
            log.warning(
                "redis cache at %s failed (%s); answering from Personalize until it is back",
                self._where,
                type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
            )
        self._down = True
        self._retry_at = time.monotonic() + _OUTAGE_PAUSE

    def recovered(self) -> None:
        if self._down:
            log.warning("redis cache at %s is back", self._where)
            self._down = False
