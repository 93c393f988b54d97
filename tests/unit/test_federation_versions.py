"""The federation versions settings accept are the ones the installed Strawberry links."""

from typing import Any, cast

import pytest
import strawberry

from settings import strawberry_federation_versions

ACCESS = "strawberry.federation.versions.FEDERATION_VERSIONS"


@strawberry.federation.type(keys=["id"])
class Item:
    """An entity, so that the schema links the federation spec."""

    id: strawberry.ID


@strawberry.type
class Query:
    """A one-field root, just enough for a schema."""

    ok: bool = True


def test_strawberry_still_lists_its_federation_versions_where_we_read_them() -> None:
    try:
        versions = strawberry_federation_versions()
    except ImportError as exc:
        pytest.fail(f"Strawberry moved {ACCESS} (settings.strawberry_federation_versions): {exc}")
    assert versions, f"{ACCESS} is empty"
    assert all(isinstance(v, str) for v in versions), f"{ACCESS} no longer maps str versions"
    assert "2.9" in versions, f"{ACCESS} lacks 2.9, settings' default federation.version"
    for version in versions:
        # Strawberry types the parameter as a Literal of its own (settings.FederationVersion).
        schema = strawberry.federation.Schema(
            query=Query, types=[Item], federation_version=cast(Any, version)
        )
        link = f'"https://specs.apollo.dev/federation/v{version}"'
        assert link in schema.as_str(), f"{ACCESS} lists {version}, which Strawberry does not link"
