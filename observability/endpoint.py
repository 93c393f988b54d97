"""Whether the Personalize endpoint accepts connections: for /metrics and the logs, not /readyz.

Every replica sees the same endpoint, so taking replicas out of the load balancer while
it is unreachable would empty the whole fleet at the moment the fallback chains and
stale answers are there to keep pages full. Its health is reported instead: a gauge
(`personalize_subgraph_personalize_endpoint_up`, with the time of its last check) and a
log line each time it changes. The check is a TCP connect (`readiness.tcp_check`), never
a Personalize call (calls are billed), made every `interval` seconds while the app runs.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from observability.readiness import Check

log = logging.getLogger(__name__)

# The shortest pause between checks, whatever the configured interval (0 included).
MIN_INTERVAL = 0.1


class EndpointHealth:
    """The last check of the endpoint: up or not, why not, and when it was made."""

    def __init__(self, check: Check, interval: float) -> None:
        self._check = check
        self._interval = max(interval, MIN_INTERVAL)
        # None until the first check has answered.
        self.up: bool | None = None
        self.reason = ""
        # Unix time of the last check (0: none yet).
        self.checked_at = 0.0

    async def refresh(self) -> bool:
        """Check now; a change from the last state is logged."""
        verdict = await self._check()
        previous = self.up
        self.up, self.reason, self.checked_at = verdict.ready, verdict.reason, time.time()
        if previous is not verdict.ready:
            if verdict.ready:
                log.info("personalize endpoint reachable")
            else:
                log.warning("personalize endpoint down: %s", verdict.reason)
        return verdict.ready

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Check every `interval` seconds while the block runs (the first one after an
        interval: `refresh` first for a state at once)."""
        task = asyncio.create_task(self._watch(), name="personalize-endpoint-health")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except Exception:  # a bug in a check must not end the watch silently
                log.exception("personalize endpoint check failed")


class EndpointCollector(Collector):
    """The endpoint's last check, read at scrape time (nothing is checked by a scrape)."""

    def __init__(self, health: EndpointHealth) -> None:
        self._health = health

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        health = self._health
        if health.up is None:
            return
        yield GaugeMetricFamily(
            "personalize_subgraph_personalize_endpoint_up",
            "1 when the Personalize endpoint accepted a TCP connection at the last check, "
            "else 0. Not a readiness signal: fallbacks answer while it is down.",
            value=1.0 if health.up else 0.0,
        )
        yield GaugeMetricFamily(
            "personalize_subgraph_personalize_endpoint_checked_timestamp_seconds",
            "Unix time of the last check of the Personalize endpoint.",
            value=health.checked_at,
        )
