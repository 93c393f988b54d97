"""Enums and inputs generated from configuration: use cases, filters and promotions.

Frontends name a use case by enum value and a filter by a typed `@oneOf` field; the
ARNs behind them stay on the server.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Any

import strawberry

from resolvers.naming import enum_member, param_attr, param_field, type_name
from settings import ParamType, ServedField, Settings

_PARAM_TYPES: dict[ParamType, Any] = {
    ParamType.STRINGS: list[str],
    ParamType.STRING: str,
    ParamType.NUMBER: float,
}

_ENUM_NAMES = {
    ServedField.RECOMMENDATIONS: "UserUseCase",
    ServedField.RELATED: "ItemUseCase",
    ServedField.POPULAR_ITEMS: "PopularUseCase",
    ServedField.RANKED_ITEMS: "RankingUseCase",
}


@dataclass(frozen=True)
class Inputs:
    """The generated input types; `None` where configuration declares nothing."""

    use_case_enums: dict[ServedField, type[Enum] | None]
    # The experiments a field can ask for in place of a use case.
    experiment_enums: dict[ServedField, type[Enum] | None]
    recommendation_filter: type | None
    promotion: type | None


def _use_case_enum(settings: Settings, field: ServedField) -> type[Enum] | None:
    cases = settings.use_cases_for(field)
    if not cases:
        return None
    # Member value = use case name, so resolvers look the configuration up directly.
    values = {
        enum_member(name): strawberry.enum_value(name, description=case.description)
        for name, case in cases.items()
    }
    enum = Enum(_ENUM_NAMES[field], values)  # type: ignore[misc]
    return strawberry.enum(enum, description=f"The use cases serving `{field.value}`.")


_EXPERIMENT_ENUMS = {
    ServedField.RECOMMENDATIONS: "UserExperiment",
    ServedField.RELATED: "ItemExperiment",
    ServedField.POPULAR_ITEMS: "PopularExperiment",
}


def _experiment_enum(settings: Settings, field: ServedField) -> type[Enum] | None:
    names = settings.experiments_for(field)
    if not names or field not in _EXPERIMENT_ENUMS:
        return None
    values = {enum_member(name): strawberry.enum_value(name) for name in names}
    enum = Enum(_EXPERIMENT_ENUMS[field], values)  # type: ignore[misc]
    return strawberry.enum(enum, description=f"The experiments serving `{field.value}`.")


def _filter_params_input(name: str, params: dict[str, ParamType], description: str | None) -> type:
    cls = type(f"{type_name(name)}Filter", (), {"__module__": __name__})
    cls.__annotations__ = {param_attr(p): _PARAM_TYPES[t] for p, t in params.items()}
    for param in params:
        setattr(cls, param_attr(param), strawberry.field(name=param_field(param)))
    return strawberry.input(cls, description=description or f"Values for filter {name}.")


def _recommendation_filter(settings: Settings) -> type | None:
    if not settings.filters:
        return None
    cls = type("RecommendationFilter", (), {"__module__": __name__})
    annotations: dict[str, Any] = {}
    for name, spec in settings.filters.items():
        if spec.params:
            annotations[name] = _filter_params_input(name, spec.params, spec.description) | None
        else:
            # A filter without placeholders has nothing to fill in: `excludePurchased: true`.
            annotations[name] = bool | None
        setattr(
            cls,
            name,
            strawberry.field(default=strawberry.UNSET, name=name, description=spec.description),
        )
    cls.__annotations__ = annotations
    return strawberry.input(
        cls,
        one_of=True,
        description="Exactly one configured Personalize filter, with its parameter values.",
    )


def _promotion(filter_type: type) -> type:
    cls = type("PromotionInput", (), {"__module__": __name__})
    cls.__annotations__ = {"name": str, "percent_promoted_items": int, "filter": filter_type}
    fields = {
        "name": "1-63 characters: [a-zA-Z0-9][a-zA-Z0-9_-]*.",
        "percent_promoted_items": "Share of the list given to promoted items, 1..100.",
        "filter": "The filter promoted items are drawn from.",
    }
    for name, description in fields.items():
        setattr(cls, name, strawberry.field(description=description))
    return strawberry.input(cls, description="Promote items matching a filter in part of the list.")


def build_inputs(settings: Settings) -> Inputs:
    """Generate every configuration-dependent enum and input type."""
    recommendation_filter = _recommendation_filter(settings)
    return Inputs(
        use_case_enums={field: _use_case_enum(settings, field) for field in ServedField},
        experiment_enums={field: _experiment_enum(settings, field) for field in ServedField},
        recommendation_filter=recommendation_filter,
        promotion=_promotion(recommendation_filter) if recommendation_filter else None,
    )
