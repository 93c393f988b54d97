"""PutEvents through one aioboto3 `personalize-events` client held for the app's lifetime.

Events are not on a page's critical path, so the SDK's pipeline, costlier per call than
the direct client's (ARCHITECTURE.md), is kept here for up to ten events a call;
retries happen in `backends.events`, which retries throttling and server-side failures
until the batch goes through.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    NoCredentialsError,
    ReadTimeoutError,
)

from backends.upstream import events_error
from domain.errors import UpstreamRefused, UpstreamTimeout, UpstreamUnavailable
from settings import EventsSettings, PersonalizeSettings

log = logging.getLogger(__name__)


class PersonalizeEvents:
    """Sends each batch as one PutEvents call."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        personalize: PersonalizeSettings,
        events: EventsSettings,
        session: aioboto3.Session | None = None,
        *,
        loopback: bool = False,
    ) -> AsyncIterator["PersonalizeEvents"]:
        """`session`: where credentials come from; by default, the environment's.
        `loopback`: the endpoint is on this machine, so no proxy of the environment
        applies (an empty `proxies` stops botocore from reading them)."""
        session = session or aioboto3.Session()
        config = AioConfig(
            connect_timeout=personalize.connect_timeout,
            read_timeout=personalize.read_timeout,
            retries={"mode": "standard", "total_max_attempts": 1},
            parameter_validation=False,
            proxies={} if loopback else None,
            # A connection per sender: botocore's default pool of 10 held 16 senders
            # to 10 calls at a time.
            max_pool_connections=events.max_in_flight,
        )
        async with session.client(
            "personalize-events",
            region_name=personalize.region,
            endpoint_url=events.endpoint_url,
            config=config,
        ) as client:
            yield cls(client)

    async def put_events(self, params: dict[str, Any]) -> None:
        try:
            await self._client.put_events(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise events_error(
                str(error.get("Code", "")), int(status), str(error.get("Message", ""))
            ) from exc
        except (TimeoutError, ReadTimeoutError, ConnectTimeoutError) as exc:
            raise UpstreamTimeout("Personalize did not take the events in time") from exc
        except NoCredentialsError as exc:
            raise UpstreamRefused("Personalize credentials are not configured") from exc
        except BotoCoreError as exc:
            raise UpstreamUnavailable("Personalize Events is unreachable") from exc
