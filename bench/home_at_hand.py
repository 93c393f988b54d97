"""The home query with every answer at hand, for comparisons of what surrounds execution.

The document cache, the token limit and the /graphql view each cost the same per
operation whatever the resolvers do, so the resolvers should do as little as the app
ever does: here every use case keeps its answers (`cache_ttl`) and the same home query,
same variables, is sent every time, so after the first one every Personalize field is
answered from the in-process cache (0 calls; the bench checks the emulator's counter).

The compiled path (`server.compiled_path`) is off: it answers a gateway's operations
without schema extensions or Strawberry's view, and would hide exactly what is compared.
Otherwise the settings are the app's: `settings.load_settings()` from the environment
(the bench names the emulator there) and config/demo.toml.
"""

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from bench.workloads import HOME
from loaders.recommendations import operation_loaders
from resolvers.context import Context
from settings import Settings, load_settings

CACHE_TTL = 300.0


def cached_settings() -> Settings:
    """The app's settings, every use case cached and the compiled path off."""
    settings = load_settings()
    cases = {
        name: case.model_copy(update={"cache_ttl": CACHE_TTL})
        for name, case in settings.use_cases.items()
    }
    server = settings.server.model_copy(update={"compiled_path": False})
    return settings.model_copy(update={"use_cases": cases, "server": server})


def home_variables() -> dict[str, Any]:
    """One home page's variables, the same every time (the answers are then cached)."""
    return HOME.make_variables(random.Random(7))


def home_body() -> bytes:
    """The POST body of that home page."""
    return HOME.payload(random.Random(7))


@asynccontextmanager
async def operation_contexts(settings: Settings) -> AsyncIterator[Callable[[], Context]]:
    """Fresh per-operation contexts over the app's own backend stack, for `schema.execute`.

    The app (`server.create_app`) is started in this process for its lifespan only: the
    backend it opens (cache, guard, Personalize client) is the one every context's
    loaders call, as its /graphql endpoint's contexts do.
    """
    import server  # the app's wiring; imported late, as the bench sets the environment first

    app = server.create_app(settings)
    async with app.router.lifespan_context(app):
        backend, events = app.state.backend, app.state.events

        def context() -> Context:
            loaders = operation_loaders(
                backend,
                max_calls=settings.limits.max_calls,
                deadline_s=settings.personalize.deadline,
            )
            return Context(loaders=loaders, settings=settings, events=events)

        yield context
