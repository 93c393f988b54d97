"""What a field answers when Personalize fails it: the use case's fallback chain.

Only failures that are not the client's (throttling, timeouts, outages, an open breaker,
a vanished campaign) fall back. The chain tries the configured use cases in order —
through the same loader, so fallbacks are deduplicated, budgeted and bounded by the
operation's deadline — then the static list (or, for rankings, the items as given).
An answer from the chain carries no recommendationId: it must not be attributed to
the use case the client asked for.
"""

import dataclasses
import logging

from domain.errors import SubgraphError
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, ResultItem
from loaders.recommendations import RecommendationLoader
from settings import Input, Settings, UseCaseSettings

log = logging.getLogger(__name__)


def _retarget(
    request: RecommendationRequest, name: str, case: UseCaseSettings
) -> RecommendationRequest:
    """The same question asked of another use case, with only the ids it takes."""
    user = request.user_id if case.input in (Input.USER, Input.USER_AND_ITEM) else None
    item = request.item_id if case.input in (Input.ITEM, Input.USER_AND_ITEM) else None
    num_results = request.num_results
    if case.metadata_columns and num_results is not None:
        num_results = min(num_results, 50)
    return dataclasses.replace(
        request,
        arn=case.arn,
        use_case=name,
        user_id=user,
        item_id=item,
        num_results=num_results,
        # A promotion belongs to the use case it was asked of.
        promotion=None,
        metadata_columns=case.metadata_columns,
    )


def _static(request: RecommendationRequest, case: UseCaseSettings) -> RecommendationResult | None:
    if case.fallback_to_input and request.input_list:
        return RecommendationResult(
            recommendation_id=None,
            items=tuple(ResultItem(item_id=i) for i in request.input_list),
        )
    if case.fallback_items:
        count = request.num_results or 25
        return RecommendationResult(
            recommendation_id=None,
            items=tuple(ResultItem(item_id=i) for i in case.fallback_items[:count]),
        )
    return None


async def fallback(
    settings: Settings,
    loader: RecommendationLoader,
    request: RecommendationRequest,
    failure: SubgraphError,
) -> RecommendationResult | None:
    """The chain's answer for a failed request, or None when nothing in it answers."""
    case = settings.use_cases[request.use_case]
    for name in case.fallback:
        other = settings.use_cases[name]
        try:
            answer = await loader.answer(_retarget(request, name, other))
        except SubgraphError as exc:
            if not exc.degradable:
                # Out of budget or rejected: later links would fare no better.
                break
            continue
        log.warning(
            "use case fell back",
            extra={"use_case": request.use_case, "to": name, "code": failure.code},
        )
        return RecommendationResult(recommendation_id=None, items=answer.result.items)
    static = _static(request, case)
    if static is not None:
        log.warning(
            "use case fell back to its static list",
            extra={"use_case": request.use_case, "code": failure.code},
        )
    return static
