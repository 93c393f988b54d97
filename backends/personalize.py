"""Amazon Personalize through one aioboto3 client held for the app's lifetime."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)

from backends.upstream import read_answer, upstream_error
from domain.errors import UpstreamRefused, UpstreamTimeout, UpstreamUnavailable
from domain.request import Operation, RecommendationRequest
from domain.result import RecommendationResult, Source
from settings import PersonalizeSettings

log = logging.getLogger(__name__)


def client_config(settings: PersonalizeSettings) -> AioConfig:
    """Short timeouts, no retries of its own and a pool as large as our concurrency.

    botocore's defaults (60 s timeouts, legacy retries, 10 connections) would hold a
    frontend's request for a minute and queue concurrent calls behind the pool. Retries
    happen in `backends.guard`, where they know the operation's deadline.
    """
    return AioConfig(
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=settings.max_concurrency,
        # resolvers/arguments.py checks every limit of the model (botocore checks only
        # required/type/min), so botocore's own validation would only spend CPU again.
        parameter_validation=False,
    )


@dataclass(frozen=True, slots=True)
class RuntimeTarget:
    """Where Personalize Runtime calls go, and with which credentials, as botocore resolves
    them (configured endpoint, `AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME`, or the region's)."""

    endpoint: str
    region: str
    signing_name: str
    # aiobotocore's credentials (refreshed when they expire), or None if none were found.
    credentials: Any


@asynccontextmanager
async def runtime_client(settings: PersonalizeSettings) -> AsyncIterator[tuple[RuntimeTarget, Any]]:
    """An aioboto3 personalize-runtime client and what it resolved; creating one sends nothing."""
    session = aioboto3.Session()
    async with session.client(
        "personalize-runtime",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=client_config(settings),
    ) as client:
        meta = client.meta
        # aiobotocore's get_credentials is a coroutine; its stubs say otherwise.
        credentials = await cast(Any, session.get_credentials())
        target = RuntimeTarget(
            meta.endpoint_url, meta.region_name, meta.service_model.signing_name, credentials
        )
        yield target, client


class PersonalizeBackend:
    """Sends each request as one Personalize Runtime call."""

    source = Source.PERSONALIZE

    def __init__(self, client: Any, target: RuntimeTarget) -> None:
        self._client = client
        self.target = target

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: PersonalizeSettings) -> AsyncIterator["PersonalizeBackend"]:
        """Create the client for the app's lifetime and close it on shutdown."""
        async with runtime_client(settings) as (target, client):
            yield cls(client, target)

    async def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        params = request.to_api_params()
        try:
            if request.operation is Operation.GET_PERSONALIZED_RANKING:
                body = await self._client.get_personalized_ranking(**params)
            else:
                body = await self._client.get_recommendations(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            log.warning(
                "personalize call failed",
                extra={"use_case": request.use_case, "code": error.get("Code"), "status": status},
            )
            raise upstream_error(
                str(error.get("Code", "")), int(status), str(error.get("Message", "")), request
            ) from exc
        except (TimeoutError, ReadTimeoutError, ConnectTimeoutError) as exc:
            raise UpstreamTimeout(
                f"Personalize did not answer in time for use case {request.use_case!r}"
            ) from exc
        except NoCredentialsError as exc:
            log.error("no AWS credentials found for Personalize")
            raise UpstreamRefused("Personalize credentials are not configured") from exc
        except BotoCoreError as exc:
            log.warning("personalize unreachable: %s", type(exc).__name__)
            raise UpstreamUnavailable(
                f"Personalize is unreachable for use case {request.use_case!r}"
            ) from exc
        return read_answer(request, body)
