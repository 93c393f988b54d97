"""recommendationPage: the carousels of one page, each a use case, no item shown twice.

A page is a list of sections in priority order. Each section is one Personalize call,
built and checked as the single field of its use case builds it (`recommendations`,
`related`, `popularItems`, `rankedItems`). All the calls start together through the
operation's loader, so caching, coalescing, breakers, the deadline and
`limits.max_calls` apply as to any field; once every call has settled, the sections are
deduplicated in order: an item stays in the first section that has it.

The over-fetch rule. A section that shows `n` items after `k` items may already be
shown by the sections before it asks Personalize for `min(n + k, cap)`, where `cap` is
500, or 50 for a use case returning item metadata: at most `k` of its items can be
repeats, so it is full whenever the engine has `n` items for it that no earlier section
shows, unless the cap binds. A ranking section ranks the ids it is given, all of them.

A section refused (a bad argument) or failed upstream without a fallback is null with
its coded error; it shows nothing, so it takes nothing from the sections after it. A
fallback's answer is deduplicated like any other.

A section scrolls (`resolvers.scroll`) when the page selects `pageInfo` or the section
passes `after`. Its first page asks for its window (or more, by the over-fetch rule),
keeps the window less what the earlier sections show, and shows its head; a later page
(`after`) makes no call: it goes on from the cursor in that window, skipping what the
earlier sections of the page it is on show. Its cursor is bound to the section's own
question, not to the rest of the page.
"""

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import strawberry

from domain.errors import InvalidArgument, NotConfigured, SubgraphError
from domain.request import Operation, RecommendationRequest
from domain.result import RecommendationResult, ResultItem, Source
from resolvers.arguments import (
    check_context,
    check_id,
    check_input_list,
    check_num_results,
    given,
    max_results,
    resolve_filter,
)
from resolvers.context import Context
from resolvers.cursors import Cursor
from resolvers.experiments import Assignment, assignment, variant_arguments
from resolvers.recommendations import (
    RecommendationsView,
    answered,
    field_request,
    graph_context,
    recovered,
)
from resolvers.scroll import (
    PAGE_INFO,
    Scrolling,
    distinct,
    first_page,
    page_from,
    read,
    selects,
    window_size,
)
from settings import Input, ServedField, Settings

# Items a section shows when it does not say (the single fields' default).
DEFAULT_SHOWN = 25


@dataclass(frozen=True, slots=True)
class PlannedSection:
    """One section's call (over-fetched) and how many items it shows at most."""

    request: RecommendationRequest
    shows: int
    # Set when the section scrolls: the question its cursors are bound to (its field's
    # request before the window) and, on a later page, the cursor it goes on from.
    question: RecommendationRequest | None = None
    after: str | None = None
    # Set when the section asked for an experiment: its variant.
    variant: Assignment | None = None


def _needs_item(case_input: Input) -> bool:
    return case_input in (Input.ITEM, Input.USER_AND_ITEM)


def _ranking(
    settings: Settings, name: str, section: Any, user_id: str | None, graph: dict[str, str]
) -> PlannedSection:
    case = settings.use_cases[name]
    if not given(section.item_ids):
        raise InvalidArgument(f"use case {name} ranks the items it is given: give itemIds")
    if given(section.item_id):
        raise InvalidArgument(f"use case {name} ranks itemIds and takes no itemId")
    if given(section.promotion):
        raise InvalidArgument(f"use case {name} is a ranking and takes no promotion")
    if given(getattr(section, "after", None)):
        raise InvalidArgument(f"use case {name} is a ranking and does not scroll: no after")
    if user_id is None:
        raise InvalidArgument(f"use case {name} needs userId")
    input_list = check_input_list(section.item_ids)
    shows = check_num_results(section.num_results, with_metadata=False) or len(set(input_list))
    filter_arn, filter_values = resolve_filter(settings, section.filter)
    request = RecommendationRequest(
        operation=Operation.GET_PERSONALIZED_RANKING,
        arn=case.arn,
        use_case=name,
        user_id=user_id,
        input_list=input_list,
        filter_arn=filter_arn,
        filter_values=filter_values,
        context=check_context(section.context, graph),
        metadata_columns=case.metadata_columns,
    )
    return PlannedSection(request, shows)


def _section(
    settings: Settings,
    section: Any,
    *,
    user_id: str | None,
    item_id: str | None,
    graph: dict[str, str],
    earlier: int,
    scrolling: bool = False,
    unit: str | None = None,
) -> PlannedSection:
    """A section's request, asking for what it shows plus the `earlier` sections' items."""
    experiment: Any = getattr(section, "experiment", None)
    variant = None
    chosen: Any
    filter, promotion = section.filter, section.promotion
    if given(experiment):
        if given(section.use_case):
            raise InvalidArgument("give useCase or experiment, not both")
        variant = assignment(settings, str(experiment.value), unit)
        chosen = variant.use_case
        args = variant_arguments(settings, {"filter": filter, "promotion": promotion}, variant)
        filter, promotion = args["filter"], args["promotion"]
    elif not given(section.use_case):
        raise InvalidArgument("give useCase or experiment")
    else:
        chosen = section.use_case
    name = chosen if isinstance(chosen, str) else str(chosen.value)
    case = settings.use_cases[name]
    if case.field is ServedField.RANKED_ITEMS:
        return _ranking(settings, name, section, user_id, graph)
    if given(section.item_ids):
        raise InvalidArgument(f"itemIds is for ranking use cases; {name} takes none")
    if given(section.item_id):
        if not _needs_item(case.input):
            raise InvalidArgument(f"use case {name} takes no itemId")
        item_id = check_id(section.item_id, "itemId")
    elif not _needs_item(case.input):
        item_id = None
    elif item_id is None:
        raise InvalidArgument(f"use case {name} needs itemId")
    shown = section.num_results if given(section.num_results) else DEFAULT_SHOWN
    request = field_request(
        settings,
        case.field,
        use_case=chosen,
        user_id=user_id,
        item_id=item_id,
        num_results=shown,
        filter=filter,
        context=section.context,
        promotion=promotion,
        from_graph=graph,
    )
    cap = max_results(with_metadata=bool(case.metadata_columns))
    after = getattr(section, "after", None)
    if given(after) or scrolling:
        window = window_size(settings, request, shown)
        asked = min(max(window, shown + earlier), cap)
        return PlannedSection(
            dataclasses.replace(request, num_results=asked),
            shown,
            question=request,
            after=str(after) if given(after) else None,
            variant=variant,
        )
    asked = min(shown + earlier, cap)
    return PlannedSection(dataclasses.replace(request, num_results=asked), shown, variant=variant)


def plan_page(
    settings: Settings,
    sections: Sequence[Any],
    *,
    user_id: str | None,
    item_id: str | None,
    graph: dict[str, str] | None = None,
    scrolling: bool = False,
    session_id: str | None = None,
) -> list[PlannedSection | InvalidArgument]:
    """Every section's call, or why it is refused (the whole page is refused when the
    number of sections is out of bounds)."""
    limit = settings.limits.max_page_sections
    if not 1 <= len(sections) <= limit:
        raise InvalidArgument(
            f"sections takes 1..{limit} sections (limits.max_page_sections), got {len(sections)}"
        )
    planned: list[PlannedSection | InvalidArgument] = []
    earlier = 0
    for index, section in enumerate(sections):
        try:
            found = _section(
                settings,
                section,
                user_id=user_id,
                item_id=item_id,
                graph=graph or {},
                earlier=earlier,
                scrolling=scrolling,
                unit=user_id if user_id is not None else session_id,
            )
        except InvalidArgument as exc:
            planned.append(InvalidArgument(f"sections[{index}]: {exc}"))
            continue
        planned.append(found)
        earlier += found.shows
    return planned


async def _view(context: Context, request: RecommendationRequest) -> RecommendationsView:
    try:
        answer = await context.loaders.recommendations.answer(request)
    except SubgraphError as exc:
        return await recovered(context, request, exc)
    return answered(answer)


# A later page of a scrolling section, read from the store: its cursor and window.
Window = tuple[Cursor, RecommendationResult]


def deduplicated(
    planned: Sequence[PlannedSection | Exception],
    outcomes: Sequence[RecommendationsView | Window | BaseException],
    scrolling: Scrolling | None = None,
) -> list[RecommendationsView | Exception]:
    """Each section's items less those shown by an earlier section (or earlier in the
    same one), cut to what it shows; a failed section stays its error. A scrolling
    section keeps its window (`scrolling`) and shows a page of it."""
    shown: set[str] = set()
    page: list[RecommendationsView | Exception] = []
    for plan, outcome in zip(planned, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            if not isinstance(outcome, Exception):
                raise outcome
            page.append(outcome)
            continue
        assert isinstance(plan, PlannedSection)
        if isinstance(outcome, tuple):
            assert scrolling is not None
            cursor, window = outcome
            part = page_from(scrolling, cursor, window.items, plan.shows, shown)
            view = RecommendationsView(
                window.recommendation_id, part.items, Source(cursor.source), part.page_info
            )
        elif plan.question is not None:
            assert scrolling is not None
            kept = RecommendationResult(outcome.recommendation_id, distinct(outcome.items, shown))
            part = first_page(scrolling, plan.question, kept, outcome.source, plan.shows)
            view = dataclasses.replace(outcome, items=part.items, page_info=part.page_info)
        else:
            view = dataclasses.replace(outcome, items=_unseen(outcome.items, shown, plan.shows))
        shown.update(item.item_id for item in view.items)
        page.append(view)
    return page


def _unseen(items: Sequence[ResultItem], shown: set[str], shows: int) -> tuple[ResultItem, ...]:
    kept: list[ResultItem] = []
    seen = set(shown)
    for item in items:
        if len(kept) == shows:
            break
        if item.item_id not in seen:
            seen.add(item.item_id)
            kept.append(item)
    return tuple(kept)


async def _window(scrolling: Scrolling, plan: PlannedSection) -> Window:
    assert plan.question is not None
    assert plan.after is not None
    return await read(scrolling, plan.question, plan.after)


async def answer_page(
    context: Context, planned: Sequence[PlannedSection | InvalidArgument]
) -> list[RecommendationsView | Exception]:
    """Every section's call in one concurrent round, then the page deduplicated.

    graphql-core shows an exception in the list as that entry's error, at its index.
    """
    sections = [p for p in planned if isinstance(p, PlannedSection)]
    scrolling = context.scrolling
    if scrolling is None and any(p.question is not None for p in sections):
        raise NotConfigured("this service does not scroll lists (no pagination store)")
    calls = [
        _window(scrolling, p) if p.after is not None and scrolling else _view(context, p.request)
        for p in sections
    ]
    settled: list[RecommendationsView | Window | BaseException] = list(
        await asyncio.gather(*calls, return_exceptions=True)
    )
    outcomes = [p if isinstance(p, InvalidArgument) else settled.pop(0) for p in planned]
    return _with_variants(context, planned, deduplicated(planned, outcomes, scrolling))


def _with_variants(
    context: Context,
    planned: Sequence[PlannedSection | InvalidArgument],
    page: list[RecommendationsView | Exception],
) -> list[RecommendationsView | Exception]:
    """Sections that asked for an experiment: counted as exposures, and say which variant."""
    out: list[RecommendationsView | Exception] = []
    for plan, view in zip(planned, page, strict=True):
        chosen = plan.variant if isinstance(plan, PlannedSection) else None
        if isinstance(plan, PlannedSection) and chosen is not None:
            # A later page of a scrolled section is the same list: counted once.
            counted = chosen.attribution_source is not None and plan.after is None
            if counted and context.experiments is not None:
                context.experiments.exposed(chosen.view.name, chosen.view.variant)
            if isinstance(view, RecommendationsView):
                view = dataclasses.replace(
                    view, experiment=chosen.view, attribution_source=chosen.attribution_source
                )
        out.append(view)
    return out


def _user(value: Any) -> str | None:
    return check_id(value, "userId") if given(value) else None


def _session(value: Any) -> str | None:
    return check_id(value, "sessionId") if given(value) else None


async def user_page(
    root: Any, info: strawberry.Info, *, sections: Sequence[Any]
) -> list[RecommendationsView | Exception]:
    """User.recommendationPage: the user's page."""
    context: Context = info.context
    settings = context.settings
    user_id = check_id(getattr(root, settings.federation.user_key), "userId")
    planned = plan_page(
        settings,
        sections,
        user_id=user_id,
        item_id=None,
        graph=graph_context(settings, root),
        scrolling=selects(info, PAGE_INFO),
    )
    return await answer_page(context, planned)


async def item_page(
    root: Any,
    info: strawberry.Info,
    *,
    sections: Sequence[Any],
    user_id: Any = None,
    session_id: Any = None,
) -> list[RecommendationsView | Exception]:
    """Item.recommendationPage: a product page, its item seeding item use cases."""
    context: Context = info.context
    settings = context.settings
    item_id = check_id(getattr(root, settings.federation.item_key), "itemId")
    planned = plan_page(
        settings,
        sections,
        user_id=_user(user_id),
        item_id=item_id,
        scrolling=selects(info, PAGE_INFO),
        session_id=_session(session_id),
    )
    return await answer_page(context, planned)


async def query_page(
    root: Any,
    info: strawberry.Info,
    *,
    sections: Sequence[Any],
    user_id: Any = None,
    session_id: Any = None,
) -> list[RecommendationsView | Exception]:
    """Query.recommendationPage: an anonymous page, or a user's by userId."""
    context: Context = info.context
    planned = plan_page(
        context.settings,
        sections,
        user_id=_user(user_id),
        item_id=None,
        scrolling=selects(info, PAGE_INFO),
        session_id=_session(session_id),
    )
    return await answer_page(context, planned)
