"""Amazon Personalize Runtime over keep-alive HTTP (backends.http1), signed with SigV4.

A stock aioboto3 call spends several times this backend's CPU on parameter handling,
user-agent assembly, event hooks and response parsing (`python -m bench.libraries`,
ARCHITECTURE.md). Both operations are one JSON POST, so this backend sends them itself,
and keeps what matters from the SDK: an aioboto3 session resolves credentials (refreshed
when they expire), region and endpoint exactly as for any SDK call, including
`AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME`; `backends.signing` signs (checked against
botocore's SigV4Auth in the tests). The emulator can check every signature
(`--verify-signatures`), and `personalize.client = "aioboto3"` keeps the SDK path.
"""

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import orjson

from backends.http1 import ConnectionFailed, Pool
from backends.personalize import RuntimeTarget, runtime_client
from backends.signing import Credentials, Signer, host_header
from backends.upstream import read_answer, upstream_error
from domain.errors import ConfigurationError, UpstreamRefused, UpstreamTimeout, UpstreamUnavailable
from domain.request import Operation, RecommendationRequest
from domain.result import RecommendationResult, Source
from settings import PersonalizeSettings

log = logging.getLogger(__name__)

# A path segment SigV4 signs exactly as it is sent: no escapes, no dot segments.
_PLAIN_SEGMENT = re.compile(r"(?!\.\.?$)[A-Za-z0-9._~-]+", re.ASCII)

_PATHS = {
    Operation.GET_RECOMMENDATIONS: "/recommendations",
    Operation.GET_PERSONALIZED_RANKING: "/personalize-ranking",
}


def error_code(header: str | None, body: Any) -> tuple[str, str]:
    """(code, message) of an AWS rest-json error, as botocore reads them."""
    code = (header or "").split(":", 1)[0]
    message = ""
    if isinstance(body, dict):
        if not code:
            code = str(body.get("code") or body.get("__type") or "").rsplit("#", 1)[-1]
        message = str(body.get("message") or body.get("Message") or "")
    return code, message


class DirectPersonalizeBackend:
    """Sends each request as one signed HTTP call; one connection pool for the app."""

    source = Source.PERSONALIZE

    def __init__(self, http: Pool, target: RuntimeTarget) -> None:
        self._http = http
        self.target = target
        endpoint = target.endpoint.rstrip("/")
        # An endpoint may carry a path prefix (a proxy's, say): what is signed is the
        # whole path sent. Plain segments only, which SigV4 signs as they are sent.
        prefix = urlsplit(endpoint).path
        if not all(_PLAIN_SEGMENT.fullmatch(part) for part in prefix.split("/")[1:]):
            raise ConfigurationError(
                f"the Personalize endpoint's path {prefix!r} must be plain segments of "
                "letters, digits and -._~"
            )
        self._paths = {op: prefix + path for op, path in _PATHS.items()}
        self._signer = Signer(host_header(endpoint), target.signing_name, target.region)
        self._credentials = target.credentials

    @classmethod
    @asynccontextmanager
    async def open(
        cls, settings: PersonalizeSettings, target: RuntimeTarget | None = None
    ) -> AsyncIterator["DirectPersonalizeBackend"]:
        """Hold the pool for the app; endpoint, region and credentials are resolved once,
        here, unless the caller has resolved them already (`target`)."""
        if target is None:
            # The SDK client resolves; it is not kept, nothing is sent through it.
            async with runtime_client(settings) as (target, _):
                pass
        if target.credentials is None:
            log.error("no AWS credentials found for Personalize")
        # The guard's semaphore bounds the connections in use to max_concurrency.
        http = Pool(
            target.endpoint,
            max_idle=settings.max_concurrency,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )
        try:
            yield cls(http, target)
        finally:
            await http.aclose()

    async def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        path = self._paths[request.operation]
        body = orjson.dumps(request.to_api_params())
        headers = await self._signed_headers(path, body)
        try:
            response = await self._http.post(path, headers, body)
        except TimeoutError as exc:  # the pool's connect and read timeouts
            raise UpstreamTimeout(
                f"Personalize did not answer in time for use case {request.use_case!r}"
            ) from exc
        except ConnectionFailed as exc:
            log.warning("personalize unreachable: %s", exc)
            raise UpstreamUnavailable(
                f"Personalize is unreachable for use case {request.use_case!r}"
            ) from exc
        status, raw = response.status, response.body
        if status >= 300:
            code, message = error_code(response.headers.get("x-amzn-errortype"), _json_or_none(raw))
            log.warning(
                "personalize call failed",
                extra={"use_case": request.use_case, "code": code, "status": status},
            )
            raise upstream_error(code, status, message, request)
        return read_answer(request, _json_or_none(raw))

    async def _signed_headers(self, path: str, body: bytes) -> dict[str, str]:
        if self._credentials is None:
            raise UpstreamRefused("Personalize credentials are not configured")
        # Refreshable credentials renew themselves here when they are about to expire.
        frozen = await self._credentials.get_frozen_credentials()
        credentials = Credentials(frozen.access_key, frozen.secret_key, frozen.token)
        return self._signer.headers(credentials, path, body)


def _json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
