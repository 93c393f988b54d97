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
from collections.abc import Callable
from dataclasses import dataclass, field

from backends.base import RecommendationBackend
from domain.backoff import backoff_ceiling
from domain.breaker import BreakerState
from domain.errors import CircuitOpen, DeadlineSpent, SubgraphError, UpstreamTimeout
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, Source
from settings import BreakerSettings, PersonalizeSettings

log = logging.getLogger(__name__)


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

    def before_call(self, arn: str, use_case: str) -> bool:
        """Raise CircuitOpen unless a call to `arn` may go out now; True for the probe."""
        if self.settings.failures == 0:
            return False
        circuit = self._circuits.get(arn)
        if circuit is None or circuit.state is BreakerState.CLOSED:
            return False
        now = time.monotonic()
        # Open: after the cool-down this call is the probe, and everyone else waits for
        # its outcome. Half-open: a probe that never reported (cancelled with its
        # operation) is replaced after another cool-down rather than blocking forever.
        if now - circuit.opened_at >= self.settings.reset_after:
            circuit.state = BreakerState.HALF_OPEN
            circuit.opened_at = now
            log.info("breaker half-open, probing", extra={"arn": arn})
            return True
        raise CircuitOpen(
            f"calls for use case {use_case!r} are paused after repeated Personalize failures"
        )

    def probe_abandoned(self, arn: str) -> None:
        """The probe ended without news (cancelled, out of time): let the next call probe."""
        circuit = self._circuits.get(arn)
        if circuit is not None and circuit.state is BreakerState.HALF_OPEN:
            circuit.state = BreakerState.OPEN
            circuit.opened_at = time.monotonic() - self.settings.reset_after

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
    def source(self) -> Source:
        return self._backend.source

    def stored(self, request: RecommendationRequest) -> RecommendationResult | None:
        """No stored answers here (the cache in front of this backend has them)."""
        return None

    async def recommend(
        self,
        request: RecommendationRequest,
        deadline: float,
        spend: Callable[[], None] | None = None,
    ) -> RecommendationResult:
        """One call, retried while it may be; `deadline` is on the `time.monotonic` clock.

        `spend` is called before the call is made, and may refuse it by raising.
        """
        if spend is not None:
            spend()
        arn = request.arn
        if deadline <= time.monotonic():
            # Checked before the breaker, so a call without time never takes the probe.
            raise DeadlineSpent(f"no time was left to call use case {request.use_case!r}")
        # Asked once per call: the retries of an admitted call (a probe's included) go on.
        probing = self._breakers.before_call(arn, request.use_case)
        reported = failed_before = False
        try:
            attempt = 1
            while True:
                try:
                    result = await self._attempt(request, deadline)
                except DeadlineSpent:
                    # Our deadline, not the upstream, ended this attempt: it says nothing
                    # about the upstream's health unless an earlier attempt really failed.
                    if failed_before:
                        self._breakers.failed(arn)
                        reported = True
                    raise
                except SubgraphError as exc:
                    if not exc.degradable:
                        # The service answered (e.g. InvalidInput): it is healthy.
                        self._breakers.succeeded(arn)
                        reported = True
                        raise
                    failed_before = True
                    pause = self._backoff(attempt)
                    if (
                        not exc.retryable
                        or attempt >= self._settings.max_attempts
                        or time.monotonic() + pause >= deadline
                    ):
                        self._breakers.failed(arn)
                        reported = True
                        raise
                    log.info(
                        "retrying personalize call",
                        extra={"use_case": request.use_case, "attempt": attempt, "code": exc.code},
                    )
                    attempt += 1
                    await asyncio.sleep(pause)
                else:
                    self._breakers.succeeded(arn)
                    reported = True
                    return result
        finally:
            if probing and not reported:
                # Cancelled, or out of time: the next caller probes instead.
                self._breakers.probe_abandoned(arn)

    async def _attempt(
        self, request: RecommendationRequest, deadline: float
    ) -> RecommendationResult:
        use_case = request.use_case
        if self._limit.locked():
            try:
                # A slot is ours to wait for, bounded by the deadline only: a wait here is
                # no fault of the upstream's.
                async with asyncio.timeout(deadline - time.monotonic()):
                    await self._limit.acquire()
            except TimeoutError:
                raise DeadlineSpent(
                    f"the deadline passed while use case {use_case!r} waited for a connection"
                ) from None
        else:
            # A free slot is taken at once (no timer to arm and cancel on the hot path).
            await self._limit.acquire()
        try:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineSpent(f"no time was left to call use case {use_case!r}")
            cut_short = remaining < self._attempt_timeout
            try:
                async with asyncio.timeout(min(remaining, self._attempt_timeout)):
                    return await self._backend.recommend(request)
            except TimeoutError:
                if cut_short:
                    raise DeadlineSpent(
                        f"Personalize did not answer use case {use_case!r} before the deadline"
                    ) from None
                raise UpstreamTimeout(
                    f"Personalize did not answer in time for use case {use_case!r}"
                ) from None
        finally:
            self._limit.release()

    def _backoff(self, attempt: int) -> float:
        # Full jitter after attempt n: uniform in [0, min(cap, base * 2^(n-1))).
        ceiling = backoff_ceiling(attempt, self._settings.backoff_base, self._settings.backoff_cap)
        return self._rng.uniform(0, ceiling)
