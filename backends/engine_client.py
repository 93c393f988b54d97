"""The embedded engine in a process of its own, called as Personalize is called.

With `WORKERS` > 1 each worker is a process: an engine built in each would keep its own
events, and a purchase recorded through one worker would still be recommended by the
others. The supervisor then starts one engine process (`web/engine_process.py`,
`python -m local_personalize serve`), and every worker calls it over loopback with the
direct Personalize client (`backends.personalize_direct`) and sends events to it with
the personalize-events client (`backends.personalize_events`): the same requests, ARNs,
filters and errors as with the engine in-process, and one engine that every worker's
events reach. Calls are signed with fixed credentials that the engine process checks
(`--verify-signatures`), so a signing mistake shows here as it would on AWS.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aioboto3
from aiobotocore.credentials import AioCredentials

from backends.personalize import RuntimeTarget
from backends.personalize_direct import DirectPersonalizeBackend
from backends.personalize_events import PersonalizeEvents
from domain.errors import ConfigurationError
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, Source
from settings import Settings

# The engine process is on loopback and started by us: these stand for AWS credentials
# only so that every call is signed and checked as on AWS.
ENGINE_ACCESS_KEY = "LOCALENGINE"
ENGINE_SECRET_KEY = "local-engine-process"
# What Personalize Runtime and Events sign as (their models' signingName).
_SIGNING_NAME = "personalize"


class EngineProcessBackend:
    """The direct client pointed at the engine process; answers say `source: LOCAL`."""

    source = Source.LOCAL

    def __init__(self, client: DirectPersonalizeBackend) -> None:
        self._client = client
        # For /readyz: ready while the engine process takes connections.
        self.target = client.target

    async def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        return await self._client.recommend(request)


def _engine_url(settings: Settings) -> str:
    url = settings.local.engine_url
    if url is None:
        raise ConfigurationError("local.engine_url is not set")
    return url


@asynccontextmanager
async def open_engine_process(settings: Settings) -> AsyncIterator[EngineProcessBackend]:
    """A connection pool to the engine process at `local.engine_url`."""
    target = RuntimeTarget(
        endpoint=_engine_url(settings),
        region=settings.personalize.region,
        signing_name=_SIGNING_NAME,
        credentials=AioCredentials(ENGINE_ACCESS_KEY, ENGINE_SECRET_KEY),
    )
    async with DirectPersonalizeBackend.open(settings.personalize, target) as client:
        yield EngineProcessBackend(client)


@asynccontextmanager
async def open_engine_events(settings: Settings) -> AsyncIterator[PersonalizeEvents]:
    """PutEvents into the engine process, whose next answers (any worker's) see them."""
    session = aioboto3.Session(
        aws_access_key_id=ENGINE_ACCESS_KEY, aws_secret_access_key=ENGINE_SECRET_KEY
    )
    events = settings.events.model_copy(update={"endpoint_url": _engine_url(settings)})
    async with PersonalizeEvents.open(settings.personalize, events, session, loopback=True) as sink:
        yield sink
