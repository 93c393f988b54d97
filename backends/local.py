"""The embedded engine in-process: the same wire-format requests, no network, no AWS."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from backends.request import Operation, RecommendationRequest, RecommendationResult
from backends.upstream import upstream_error
from local_personalize.engine import Engine
from local_personalize.errors import PersonalizeError
from settings import LocalSettings


class LocalBackend:
    """Answers from `local_personalize`'s engine, validating exactly as the emulator does."""

    source = "LOCAL"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: LocalSettings) -> AsyncIterator["LocalBackend"]:
        """Build the demo engine once at start-up (a few seconds), before serving."""
        yield cls(Engine.demo(seed=settings.seed))

    async def recommend(self, request: RecommendationRequest) -> RecommendationResult:
        params = request.to_api_params()
        try:
            # The engine answers in well under a millisecond or two: a thread hop would
            # cost more than it saves.
            if request.operation is Operation.GET_PERSONALIZED_RANKING:
                body = self.engine.get_personalized_ranking(params)
            else:
                body = self.engine.get_recommendations(params)
        except PersonalizeError as exc:
            raise upstream_error(exc.code, exc.status, str(exc), request) from exc
        return RecommendationResult.from_api_response(request.operation, body)
