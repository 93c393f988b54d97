"""Calls that end in time and do not hammer a failing upstream: retries, deadline, breaker.

Every Personalize call of an operation shares one deadline. An attempt gets the time
left (at most the client's own connect + read timeouts); only throttling, timeouts and
5xx are retried, after a full-jitter backoff that must also fit before the deadline.
A circuit breaker per ARN stops calling after repeated failures and lets one probe
through once its cool-down has passed.
"""

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from enum import StrEnum

from backends.base import RecommendationBackend
from backends.request import RecommendationRequest, RecommendationResult
from errors import CircuitOpen, DeadlineSpent, SubgraphError, UpstreamTimeout
from settings import BreakerSettings, PersonalizeSettings

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    """Closed: calls flow. Open: calls are refused. Half-open: one probe is in flight."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class _Circuit:
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0


@dataclass
class Breakers:
    """The breaker of every ARN, shared by all requests of the process."""

    settings: BreakerSettings
    _circuits: dict[str, _Circuit] = field(default_factory=dict)

    def before_call(self, arn: str, use_case: str) -> None:
        """Raise CircuitOpen unless a call to `arn` may go out now."""
        if self.settings.failures == 0:
            return
        circuit = self._circuits.get(arn)
        if circuit is None or circuit.state is BreakerState.CLOSED:
            return
        now = time.monotonic()
        # Open: after the cool-down this call is the probe, and everyone else waits for
        # its outcome. Half-open: a probe that never reported (cancelled with its
        # operation) is replaced after another cool-down rather than blocking forever.
        if now - circuit.opened_at >= self.settings.reset_after:
            circuit.state = BreakerState.HALF_OPEN
            circuit.opened_at = now
            log.info("breaker half-open, probing", extra={"arn": arn})
            return
        raise CircuitOpen(
            f"calls for use case {use_case!r} are paused after repeated Personalize failures"
        )

    def succeeded(self, arn: str) -> None:
        circuit = self._circuits.get(arn)
        if circuit is not None and (circuit.failures or circuit.state is not BreakerState.CLOSED):
            if circuit.state is not BreakerState.CLOSED:
                log.info("breaker closed", extra={"arn": arn})
            self._circuits[arn] = _Circuit()

    def failed(self, arn: str) -> None:
        if self.settings.failures == 0:
            return
        circuit = self._circuits.setdefault(arn, _Circuit())
        circuit.failures += 1
        if circuit.state is BreakerState.HALF_OPEN or circuit.failures >= self.settings.failures:
            if circuit.state is not BreakerState.OPEN:
                log.warning("breaker open", extra={"arn": arn, "failures": circuit.failures})
            circuit.state = BreakerState.OPEN
            circuit.opened_at = time.monotonic()

    def states(self) -> dict[str, BreakerState]:
        """Every ARN that has failed since its last success, and its state."""
        return {arn: c.state for arn, c in self._circuits.items()}


class GuardedBackend:
    """A backend behind the deadline, retry and breaker policy; shared by all requests."""

    def __init__(
        self,
        backend: RecommendationBackend,
        settings: PersonalizeSettings,
        breakers: Breakers,
        rng: random.Random | None = None,
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._breakers = breakers
        # A bound on one attempt even when the deadline is far away.
        self._attempt_timeout = settings.connect_timeout + settings.read_timeout
        self._limit = asyncio.Semaphore(settings.max_concurrency)
        self._rng = rng or random.Random()

    @property
    def source(self) -> str:
        return self._backend.source

    async def recommend(
        self, request: RecommendationRequest, deadline: float
    ) -> RecommendationResult:
        """One call, retried while it may be; `deadline` is on the `time.monotonic` clock."""
        # Asked once per call: the retries of an admitted call (a probe's included) go on.
        self._breakers.before_call(request.arn, request.use_case)
        attempt = 1
        while True:
            try:
                result = await self._attempt(request, deadline)
            except DeadlineSpent:
                # Nothing was sent: no news about the upstream's health.
                raise
            except SubgraphError as exc:
                if not exc.degradable:
                    # The service answered (e.g. InvalidInput): it is healthy.
                    self._breakers.succeeded(request.arn)
                    raise
                pause = self._backoff(attempt)
                if (
                    not exc.retryable
                    or attempt >= self._settings.max_attempts
                    or time.monotonic() + pause >= deadline
                ):
                    self._breakers.failed(request.arn)
                    raise
                log.info(
                    "retrying personalize call",
                    extra={"use_case": request.use_case, "attempt": attempt, "code": exc.code},
                )
                attempt += 1
                await asyncio.sleep(pause)
            else:
                self._breakers.succeeded(request.arn)
                return result

    async def _attempt(
        self, request: RecommendationRequest, deadline: float
    ) -> RecommendationResult:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineSpent(f"no time was left to call use case {request.use_case!r}")
        try:
            # Waiting for a slot counts against the deadline too.
            async with asyncio.timeout(min(remaining, self._attempt_timeout)):
                async with self._limit:
                    return await self._backend.recommend(request)
        except TimeoutError:
            raise UpstreamTimeout(
                f"Personalize did not answer in time for use case {request.use_case!r}"
            ) from None

    def _backoff(self, attempt: int) -> float:
        # Full jitter: uniform in [0, min(cap, base * 2^attempt)).
        ceiling = min(self._settings.backoff_cap, self._settings.backoff_base * 2**attempt)
        return self._rng.uniform(0, ceiling)
