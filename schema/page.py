"""`recommendationPage` on User, Item and Query: its section input and its fields.

A section names any configured use case by one enum, `PageUseCase`, and takes the
arguments that use case's single field takes; `resolvers.page` checks each section
against its use case (an item use case without an item, itemIds on a non-ranking use
case...) and answers the page.
"""

from enum import Enum
from typing import Any

import strawberry
from strawberry.types.field import StrawberryField

from resolvers.naming import enum_member
from resolvers.page import item_page, query_page, user_page
from schema.fields import Arg, ResolverFields
from schema.inputs import Inputs
from schema.types import ContextEntry
from settings import Settings

UNSET: Any = strawberry.UNSET

_DESCRIPTION = (
    "Several lists for one page, in priority order, with no item twice: an item stays in "
    "the first section that has it. Each section is one call, all made at once; a section "
    "asks for more than it shows so that it stays full (README: the over-fetch rule). "
    "A section that fails is null with its error."
)
_SESSION = "An anonymous visitor's session: experiments bucket it when there is no userId."
_SECTIONS = "1..limits.max_page_sections sections (10 by default), in priority order."


def _section_fields(inputs: Inputs) -> dict[str, tuple[Any, str]]:
    fields: dict[str, tuple[Any, str]] = {
        "item_id": (
            strawberry.ID | None,
            "The seed item, for item use cases (on Item, the item itself if left out).",
        ),
        "item_ids": (
            list[strawberry.ID] | None,
            "1..500 item ids, for ranking use cases (and only for them).",
        ),
        "num_results": (
            int | None,
            "Items shown, 1..500 (at most 50 when the use case returns item metadata); "
            "left out, 25 (a ranking: every given item).",
        ),
    }
    if inputs.recommendation_filter is not None:
        fields["filter"] = (inputs.recommendation_filter | None, "A configured filter.")
    fields["context"] = (list[ContextEntry] | None, "Contextual metadata for this request.")
    fields["after"] = (
        str | None,
        "This section's previous pageInfo.endCursor: its next items, with no new call "
        "(not for ranking use cases).",
    )
    if inputs.promotion is not None:
        fields["promotion"] = (inputs.promotion | None, "Promote items from a filter.")
    return fields


def _section_input(settings: Settings, inputs: Inputs) -> type | None:
    if not settings.use_cases:
        return None
    values = {
        enum_member(name): strawberry.enum_value(name, description=case.description)
        for name, case in settings.use_cases.items()
    }
    members = Enum("PageUseCase", values)  # type: ignore[misc]
    use_case = strawberry.enum(
        members, description="Every configured use case, for a section of `recommendationPage`."
    )
    cls = type("PageSection", (), {"__module__": __name__})
    annotations: dict[str, Any] = {"use_case": use_case}
    cls.use_case = strawberry.field(  # type: ignore[attr-defined]
        description="What the section shows: any configured use case."
    )
    if settings.experiments:
        # A section names a use case or an experiment (README: Experiments).
        experiments = Enum(  # type: ignore[misc]
            "PageExperiment",
            {enum_member(n): strawberry.enum_value(n) for n in settings.experiments},
        )
        annotations["use_case"] = use_case | None
        cls.use_case = strawberry.field(  # type: ignore[attr-defined]
            default=UNSET, description="What the section shows: any configured use case."
        )
        annotations["experiment"] = (
            strawberry.enum(experiments, description="Every configured experiment.") | None
        )
        cls.experiment = strawberry.field(  # type: ignore[attr-defined]
            default=UNSET,
            description=(
                "An experiment in place of useCase: the page's user (or sessionId) is "
                "bucketed into one of its variants."
            ),
        )
    for name, (annotation, description) in _section_fields(inputs).items():
        annotations[name] = annotation
        setattr(cls, name, strawberry.field(default=UNSET, description=description))
    cls.__annotations__ = annotations
    return strawberry.input(
        cls,
        description=(
            "One section of a page: a use case and the arguments its own field takes. "
            "Item use cases need itemId (on Item, the item by default); ranking use cases "
            "need itemIds; use cases that need a user take the page's user."
        ),
    )


class PageFields:
    """The `recommendationPage` field of each host, or None when nothing is configured."""

    def __init__(self, settings: Settings, inputs: Inputs, fields: ResolverFields) -> None:
        self._section = _section_input(settings, inputs)
        self._fields = fields
        self._sessions = bool(settings.experiments)

    def _field(
        self, impl: Any, recommendations: type, *, user_id: bool, requires: list[str] | None
    ) -> StrawberryField | None:
        if self._section is None:
            return None
        args = [Arg("sections", list[self._section], description=_SECTIONS)]  # type: ignore[name-defined]
        if user_id:
            args.append(
                Arg("user_id", strawberry.ID | None, UNSET, "The user, for use cases needing one.")
            )
            if self._sessions:
                args.append(Arg("session_id", strawberry.ID | None, UNSET, _SESSION))
        return self._fields.field(
            impl,
            name="recommendation_page",
            args=args,
            returns=list[recommendations | None] | None,  # type: ignore[valid-type]
            description=_DESCRIPTION,
            requires=requires,
        )

    def user(self, recommendations: type, requires: list[str] | None) -> dict[str, Any]:
        found = self._field(user_page, recommendations, user_id=False, requires=requires)
        return {} if found is None else {"recommendation_page": found}

    def item(self, recommendations: type) -> dict[str, Any]:
        found = self._field(item_page, recommendations, user_id=True, requires=None)
        return {} if found is None else {"recommendation_page": found}

    def query(self, recommendations: type) -> StrawberryField | None:
        return self._field(query_page, recommendations, user_id=True, requires=None)
