"""The fields that call Personalize: User.recommendations, User.rankedItems, Item.related,
Query.popularItems.

Each one picks its use case, checks its arguments, builds one frozen request and awaits
the request's loader; nothing here talks to a backend directly.
"""

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import strawberry

from domain.errors import InvalidArgument, NotConfigured, SubgraphError
from domain.request import Operation, RecommendationRequest
from domain.result import RecommendationResult, ResultItem, Source
from loaders.recommendations import Answer
from resolvers.arguments import (
    check_context,
    check_id,
    check_input_list,
    check_num_results,
    given,
    resolve_filter,
    resolve_promotion,
)
from resolvers.context import Context
from resolvers.experiments import (
    ExperimentView,
    assignment,
    experiment_name,
    unit_of,
    variant_arguments,
)
from resolvers.fallback import fallback
from resolvers.scroll import (
    PageInfoView,
    distinct,
    first_page,
    later_page,
    scrolls,
    shows,
    window_size,
)
from settings import Input, ServedField, Settings, UseCaseSettings


@dataclass(frozen=True, slots=True)
class RecommendationsView:
    """What the `Recommendations` type reads its fields from."""

    recommendation_id: str | None
    items: tuple[ResultItem, ...]
    source: Source
    # Set when the list scrolls (`resolvers.scroll`): its cursor and whether more follow.
    page_info: PageInfoView | None = None
    # Set when the field asked for an experiment (`resolvers.experiments`).
    experiment: ExperimentView | None = None
    attribution_source: str | None = None


def _use_case(settings: Settings, field: ServedField, chosen: Any) -> tuple[str, UseCaseSettings]:
    if isinstance(chosen, Enum):
        name: str | None = chosen.value
    else:
        # A variant's use case (resolvers.experiments) arrives by name.
        name = chosen if isinstance(chosen, str) else settings.default_use_case(field)
    if name is None:
        raise NotConfigured(f"no use case is configured for {field.value}")
    return name, settings.use_cases[name]


def answered(answer: Answer) -> RecommendationsView:
    """What a field shows of its call's answer."""
    return RecommendationsView(
        recommendation_id=answer.result.recommendation_id,
        items=answer.result.items,
        source=answer.source,
    )


async def recovered(
    context: Context, request: RecommendationRequest, failure: SubgraphError
) -> RecommendationsView:
    """The use case's fallback for a failed call; `failure` itself when it has none."""
    if not failure.degradable:
        raise failure
    result = await fallback(context.settings, context.loaders.recommendations, request, failure)
    if result is None:
        raise failure
    return RecommendationsView(recommendation_id=None, items=result.items, source=Source.FALLBACK)


async def _load(info: strawberry.Info, request: RecommendationRequest) -> RecommendationsView:
    context: Context = info.context
    try:
        answer = await context.loaders.recommendations.answer(request)
    except SubgraphError as exc:
        return await recovered(context, request, exc)
    return answered(answer)


def _request(
    settings: Settings,
    field: ServedField,
    *,
    use_case: Any,
    user_id: str | None,
    item_id: str | None,
    num_results: Any,
    filter: Any,
    context: Any,
    promotion: Any,
    from_graph: dict[str, str] | None = None,
) -> RecommendationRequest:
    name, case = _use_case(settings, field, use_case)
    if case.input in (Input.USER, Input.USER_AND_ITEM) and user_id is None:
        raise InvalidArgument(f"use case {name} needs userId")
    filter_arn, filter_values = resolve_filter(settings, filter)
    return RecommendationRequest(
        operation=Operation.GET_RECOMMENDATIONS,
        arn=case.arn,
        use_case=name,
        user_id=user_id,
        item_id=item_id,
        num_results=check_num_results(num_results, with_metadata=bool(case.metadata_columns)),
        filter_arn=filter_arn,
        filter_values=filter_values,
        context=check_context(context, from_graph),
        promotion=resolve_promotion(settings, promotion),
        metadata_columns=case.metadata_columns,
    )


def user_recommendations_request(
    root: Any, settings: Settings, args: dict[str, Any]
) -> RecommendationRequest:
    user_id = check_id(getattr(root, settings.federation.user_key), "userId")
    return _request(
        settings,
        ServedField.RECOMMENDATIONS,
        user_id=user_id,
        item_id=None,
        from_graph=_graph_context(settings, root),
        **_common(args),
    )


def item_related_request(
    root: Any, settings: Settings, args: dict[str, Any]
) -> RecommendationRequest:
    item_id = check_id(getattr(root, settings.federation.item_key), "itemId")
    user_id = check_id(args["user_id"], "userId") if given(args.get("user_id")) else None
    return _request(
        settings, ServedField.RELATED, user_id=user_id, item_id=item_id, **_common(args)
    )


def popular_items_request(
    root: Any, settings: Settings, args: dict[str, Any]
) -> RecommendationRequest:
    user_id = check_id(args["user_id"], "userId") if given(args.get("user_id")) else None
    return _request(
        settings, ServedField.POPULAR_ITEMS, user_id=user_id, item_id=None, **_common(args)
    )


def user_ranked_items_request(
    root: Any, settings: Settings, args: dict[str, Any]
) -> RecommendationRequest:
    user_id = check_id(getattr(root, settings.federation.user_key), "userId")
    name, case = _use_case(settings, ServedField.RANKED_ITEMS, args.get("use_case"))
    filter_arn, filter_values = resolve_filter(settings, args.get("filter"))
    return RecommendationRequest(
        operation=Operation.GET_PERSONALIZED_RANKING,
        arn=case.arn,
        use_case=name,
        user_id=user_id,
        input_list=check_input_list(args["item_ids"]),
        filter_arn=filter_arn,
        filter_values=filter_values,
        context=check_context(args.get("context"), _graph_context(settings, root)),
        metadata_columns=case.metadata_columns,
    )


# Builds a field's request from its parent object, the settings and its converted
# arguments, without awaiting anything.
RequestBuilder = Callable[[Any, Settings, dict[str, Any]], RecommendationRequest]
# The id an experiment buckets on (user, else sessionId), from parent, settings and args.
UnitReader = Callable[[Any, Settings, dict[str, Any]], str | None]


def _no_unit(root: Any, settings: Settings, args: dict[str, Any]) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class PersonalizeResolver:
    """The resolver of a field that asks Personalize: its request, made by `build`,
    through the operation's loader.

    `build` is exposed for the compiled path (`schema.compiled`), which builds every
    request of an operation first and starts all its calls at once.
    """

    build: RequestBuilder
    unit: UnitReader = _no_unit

    async def __call__(self, root: Any, info: strawberry.Info, **args: Any) -> RecommendationsView:
        context: Context = info.context
        settings = context.settings
        experiment = experiment_name(args)
        if experiment is None:
            return await _answer(info, self.build(root, settings, args), args.get("after"))
        chosen = assignment(settings, experiment, self.unit(root, settings, args))
        args = variant_arguments(settings, args, chosen)
        request = self.build(root, settings, args)
        # A later page (`after`) scrolls the list already counted; a refused cursor
        # shows nothing. Either way, no exposure.
        first_page = not given(args.get("after"))
        if first_page and chosen.attribution_source is not None and context.experiments is not None:
            context.experiments.exposed(experiment, chosen.view.variant)
        view = await _answer(info, request, args.get("after"))
        return dataclasses.replace(
            view, experiment=chosen.view, attribution_source=chosen.attribution_source
        )


async def _answer(
    info: strawberry.Info, request: RecommendationRequest, after: Any
) -> RecommendationsView:
    """A page of the list when the client scrolls it, else the whole answer."""
    if request.operation is Operation.GET_RECOMMENDATIONS and scrolls(info, after):
        return await _scroll(info, request, after)
    return await _load(info, request)


async def _scroll(
    info: strawberry.Info, request: RecommendationRequest, after: Any
) -> RecommendationsView:
    """A page of a scrolled list (`resolvers.scroll`): the first fetches the window."""
    context: Context = info.context
    scrolling = context.scrolling
    if scrolling is None:
        raise NotConfigured("this service does not scroll lists (no pagination store)")
    page_size = shows(request)
    if given(after):
        window, source, page = await later_page(scrolling, request, str(after), page_size)
        return RecommendationsView(window.recommendation_id, page.items, source, page.page_info)
    asked = dataclasses.replace(
        request, num_results=window_size(context.settings, request, page_size)
    )
    view = await _load(info, asked)
    window = RecommendationResult(view.recommendation_id, distinct(view.items))
    page = first_page(scrolling, request, window, view.source, page_size)
    return RecommendationsView(view.recommendation_id, page.items, view.source, page.page_info)


def _user_unit(root: Any, settings: Settings, args: dict[str, Any]) -> str | None:
    return unit_of(getattr(root, settings.federation.user_key), args)


def _argument_unit(root: Any, settings: Settings, args: dict[str, Any]) -> str | None:
    return unit_of(args.get("user_id"), args)


user_recommendations = PersonalizeResolver(user_recommendations_request, _user_unit)
item_related = PersonalizeResolver(item_related_request, _argument_unit)
popular_items = PersonalizeResolver(popular_items_request, _argument_unit)
user_ranked_items = PersonalizeResolver(user_ranked_items_request)


def _graph_context(settings: Settings, root: Any) -> dict[str, str]:
    """Context the gateway supplied through @requires: configured user fields."""
    pairs = {}
    for field, key in settings.federation.user_context_fields.items():
        value = getattr(root, field, None)
        if value is not None and value is not strawberry.UNSET:
            pairs[key] = str(value)
    return pairs


def _common(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "use_case": args.get("use_case"),
        "num_results": args.get("num_results"),
        "filter": args.get("filter"),
        "context": args.get("context"),
        "promotion": args.get("promotion"),
    }


# For `resolvers.page`: a page's section builds its request as its use case's own field
# does, with the context the gateway supplied for the user.
field_request = _request
graph_context = _graph_context
