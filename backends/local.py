"""The embedded engine in-process: the same wire-format requests, no network, no AWS."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from backends.upstream import events_error, read_answer, upstream_error
from domain.errors import ConfigurationError
from domain.request import Operation, RecommendationRequest
from domain.result import RecommendationResult, Source
from local_personalize.datasets import DatasetError, DatasetFileError, SchemaError
from local_personalize.engine import Engine
from local_personalize.errors import PersonalizeError
from local_personalize.filters import FilterSyntaxError, filter_parameters
from local_personalize.resources import (
    DEMO_RESOURCES,
    Resources,
    ResourcesFileError,
    load_resources,
)
from settings import FilterSettings, LocalSettings, ParamType, Settings

log = logging.getLogger(__name__)


def local_resources(settings: LocalSettings) -> Resources:
    """What the embedded engine will serve, read without fitting anything."""
    if settings.resources is None:
        return DEMO_RESOURCES
    try:
        return load_resources(settings.resources).resources
    except ResourcesFileError as exc:
        raise ConfigurationError(f"local.resources: {exc}") from None


def with_local_filters(settings: Settings, *, warn: bool = True) -> Settings:
    """Check the configuration against the engine's resources and type filters from them.

    With the embedded engine the filter expressions are known, so each filter's
    parameters (and so its GraphQL input) come from its expression; parameters written
    in the configuration must agree. An ARN the engine does not serve stops start-up,
    unless its use case has a fallback chain: then every call is refused as not found,
    as Personalize refuses a recommender not created yet, and the chain answers.
    """
    resources = local_resources(settings.local)
    deployed = {d.arn for d in resources.deployments}
    for name, case in settings.use_cases.items():
        if case.arn in deployed:
            continue
        if not (case.fallback or case.fallback_items):
            raise ConfigurationError(f"use_cases.{name}: the local engine serves no {case.arn}")
        if warn:
            log.warning(
                "use case %s: the local engine serves no %s; its fallback chain answers",
                name,
                case.arn,
            )
    expressions = {f.arn: f.expression for f in resources.filters}
    filters: dict[str, FilterSettings] = {}
    for name, spec in settings.filters.items():
        expression = expressions.get(spec.arn)
        if expression is None:
            raise ConfigurationError(f"filters.{name}: the local engine serves no {spec.arn}")
        try:
            derived = {p: ParamType(kind) for p, kind in filter_parameters(expression).items()}
        except FilterSyntaxError as exc:
            raise ConfigurationError(f"filters.{name}: {exc}") from None
        if spec.params and spec.params != derived:
            raise ConfigurationError(
                f"filters.{name}: params {dict(spec.params)} disagree with the expression's "
                f"{dict(derived)} ({expression})"
            )
        filters[name] = spec.model_copy(update={"params": derived})
    return settings.model_copy(update={"filters": filters})


# What a mistake in a resources file or its datasets raises; any other exception is a bug.
_FILE_ERRORS = (ResourcesFileError, SchemaError, DatasetFileError, DatasetError)


def build_engine(settings: LocalSettings) -> Engine:
    """Fit the embedded engine (seconds on the demo); a bad file is a ConfigurationError.

    Called while the app is made, before uvicorn starts serving, so that a bad dataset
    row stops start-up with one line naming file, row and column, not a traceback.
    """
    if settings.resources is None:
        return Engine.demo(seed=settings.seed)
    try:
        return Engine.from_resources(settings.resources)
    except _FILE_ERRORS as exc:
        # A strict load lists every rejected row; the first says what to fix.
        message = exc.summary if isinstance(exc, DatasetError) else str(exc)
        raise ConfigurationError(f"local.resources: {message}") from None


class LocalBackend:
    """Answers from `local_personalize`'s engine, validating exactly as the emulator does."""

    source = Source.LOCAL

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    @asynccontextmanager
    async def open(cls, engine: Engine) -> AsyncIterator["LocalBackend"]:
        """Serve from an engine built by `build_engine`."""
        yield cls(engine)

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
        return read_answer(request, body)

    async def put_events(self, params: dict[str, Any]) -> None:
        """PutEvents into the engine: the user's next recommendations see them at once."""
        try:
            self.engine.put_events(params)
        except PersonalizeError as exc:
            raise events_error(exc.code, exc.status, str(exc)) from exc
