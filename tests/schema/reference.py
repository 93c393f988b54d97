"""The reference the fast paths are compared with: the same settings, compiled path off."""

from settings import Settings


def graphql_core_only(settings: Settings) -> Settings:
    """`settings` with `server.compiled_path` off: graphql-core and Strawberry answer all."""
    server = settings.server.model_copy(update={"compiled_path": False})
    return settings.model_copy(update={"server": server})
