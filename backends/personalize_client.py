"""The Personalize Runtime client the settings ask for, or the one that can reach it.

`personalize.client = "direct"` is the default; it cannot go through an HTTP proxy, so
when the environment names one for the resolved endpoint (`backends.proxies`) the
aioboto3 client is opened instead and a warning says why.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backends.base import RecommendationBackend
from backends.personalize import PersonalizeBackend, runtime_client
from backends.personalize_direct import DirectPersonalizeBackend
from backends.proxies import proxy_for
from settings import PersonalizeSettings

log = logging.getLogger(__name__)


@asynccontextmanager
async def open_personalize(settings: PersonalizeSettings) -> AsyncIterator[RecommendationBackend]:
    """The configured client; the aioboto3 one where a proxy applies to the direct one."""
    if settings.client == "direct":
        async with runtime_client(settings) as (target, _):
            pass
        proxy = proxy_for(target.endpoint)
        if proxy is None:
            async with DirectPersonalizeBackend.open(settings, target) as direct:
                yield direct
            return
        log.warning(
            "a proxy applies to the Personalize endpoint: calls go through the aioboto3 "
            "client, which honours it (the direct client does not)",
            extra={"endpoint": target.endpoint, "proxy": proxy},
        )
    async with PersonalizeBackend.open(settings) as personalize:
        yield personalize
