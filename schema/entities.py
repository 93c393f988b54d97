"""The output types whose names and keys come from configuration.

`User` and `Item` are federation entities (`Product @key(fields: "sku")` is the same
code with other settings); `PredictedItem.item` is a key-only reference the gateway
completes from the subgraph that owns the item. Per-item fields resolve synchronously:
async resolvers on thousands of fields would double the executor's cost.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import strawberry

from domain.errors import InvalidArgument
from schema.types import ExperimentAssignment, MetadataEntry, PageInfo, RecommendationSource
from settings import FederationSettings

# The GraphQL name of MetadataEntry, for the fast paths that build it themselves.
METADATA_TYPE = "MetadataEntry"


@dataclass(frozen=True)
class Entities:
    """The generated entity and result types, for the schema and resolvers to share."""

    user: type
    item: type
    predicted_item: type
    recommendations: type


def _key_type(scalar: str) -> Any:
    return strawberry.ID if scalar == "ID" else str


def _blank(name: str, key: str, key_type: Any, external: tuple[str, ...] = ()) -> type:
    """An entity class with its key; `external` fields are owned elsewhere (for @requires)."""
    cls = type(name, (), {"__module__": __name__})
    cls.__annotations__ = {key: key_type} | dict.fromkeys(external, str | None)
    for field_name in external:
        setattr(cls, field_name, strawberry.federation.field(external=True, default=None))
    return cls


def _finish_entity(
    cls: type, key: str, fields: dict[str, Any], description: str, external: tuple[str, ...] = ()
) -> type:
    for field_name, field in fields.items():
        setattr(cls, field_name, field)

    def resolve_reference(cls: type, /, **representation: Any) -> Any:
        # A reference needs no I/O: the fields under it call Personalize through the
        # request's loader, which is where `_entities` batches are deduplicated.
        # External fields arrive here when a field @requires them.
        # Representations are raw JSON (`_Any`): check what a gateway would never send.
        value = representation.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise InvalidArgument(
                f"a {cls.__name__} representation needs its key {key!r} as a string"
            )
        fields: dict[str, Any] = {key: value}
        for name in external:
            extra = representation.get(name)
            if extra is not None and not isinstance(extra, str | int | float):
                raise InvalidArgument(f"{cls.__name__}.{name} must be a scalar")
            if name in representation:
                fields[name] = extra
        return cls(**fields)

    setattr(cls, "resolve_reference", classmethod(resolve_reference))  # noqa: B010
    return strawberry.federation.type(cls, name=cls.__name__, keys=[key], description=description)


def build_entities(
    federation: FederationSettings,
    user_fields: Callable[[type], dict[str, Any]],
    item_fields: Callable[[type], dict[str, Any]],
) -> Entities:
    """Build the entities; `*_fields(recommendations_type)` supply the resolver fields."""
    item_key = federation.item_key

    # Item is created empty first: PredictedItem points at it and Item.related returns
    # Recommendations, which lists PredictedItems.
    item_cls = _blank(federation.item_type, item_key, _key_type(federation.item_key_scalar))

    def item_reference(root: Any) -> item_cls:  # type: ignore[valid-type]
        return item(**{item_key: root.item_id})  # type: ignore[no-any-return]

    def metadata(root: Any) -> list[MetadataEntry] | None:
        if root.metadata is None:
            return None
        return [MetadataEntry(key=k, value=v) for k, v in root.metadata]

    predicted_cls = type("PredictedItem", (), {"__module__": __name__})
    predicted_cls.__annotations__ = {
        "item_id": strawberry.ID,
        "score": float | None,
        "promotion_name": str | None,
        "reasons": list[str],
    }
    predicted_cls.item_id = strawberry.field(description="The recommended item's id.")  # type: ignore[attr-defined]
    predicted_cls.score = strawberry.field(  # type: ignore[attr-defined]
        description="Personalize's score; absent for some recipes and recommenders."
    )
    predicted_cls.promotion_name = strawberry.field(  # type: ignore[attr-defined]
        description="The promotion that placed this item, if any."
    )
    predicted_cls.reasons = strawberry.field(  # type: ignore[attr-defined]
        description="Why Personalize included the item (for example a promotion)."
    )
    predicted_cls.item = strawberry.field(  # type: ignore[attr-defined]
        resolver=item_reference, description="The item itself, completed by its owning subgraph."
    )
    predicted_cls.metadata = strawberry.field(  # type: ignore[attr-defined]
        resolver=metadata,
        description="Item columns, when the use case is configured to return them.",
    )
    predicted = strawberry.type(predicted_cls, description="One recommended item, in rank order.")

    recommendations_cls = type("Recommendations", (), {"__module__": __name__})
    recommendations_cls.__annotations__ = {
        "recommendation_id": strawberry.ID | None,
        "items": list[predicted],  # type: ignore[valid-type]
        "source": RecommendationSource,
        "page_info": PageInfo | None,
        "experiment": ExperimentAssignment | None,
        "attribution_source": str | None,
    }
    recommendations_cls.recommendation_id = strawberry.field(  # type: ignore[attr-defined]
        description="Personalize's id for this answer; send it back with events for attribution."
    )
    recommendations_cls.page_info = strawberry.field(  # type: ignore[attr-defined]
        description=(
            "Where this list stands when it scrolls (after, or pageInfo selected); null for "
            "rankedItems, which does not scroll."
        )
    )
    recommendations_cls.experiment = strawberry.field(  # type: ignore[attr-defined]
        description="The experiment and variant that answered, when `experiment` was given."
    )
    recommendations_cls.attribution_source = strawberry.field(  # type: ignore[attr-defined]
        description=(
            "Send it as `attributionSource` with recordEvents for events on this list, so "
            "they count for the variant; null unless a running experiment answered."
        )
    )
    recommendations = strawberry.type(
        recommendations_cls, description="A ranked list of recommended items."
    )

    item = _finish_entity(
        item_cls,
        item_key,
        item_fields(recommendations),
        "An item, owned by the catalog; this subgraph adds recommendations to it.",
    )
    external = tuple(federation.user_context_fields)
    user = _finish_entity(
        _blank(
            federation.user_type,
            federation.user_key,
            _key_type(federation.user_key_scalar),
            external,
        ),
        federation.user_key,
        user_fields(recommendations),
        "A user, owned elsewhere; this subgraph adds recommendations to it.",
        external,
    )
    return Entities(user=user, item=item, predicted_item=predicted, recommendations=recommendations)
