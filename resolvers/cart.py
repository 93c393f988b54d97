"""cartRecommendations: what goes with several items at once, merged into one list.

Personalize's item use cases take one `itemId`. A cart of 1..20 items (a repeated id
counts once) makes one call per item, built and checked as `related` builds its own,
and all of them start together through the operation's loader: caching, coalescing,
breakers, fallbacks, the deadline and `limits.max_calls` apply as to any field, each
seed being one call.

The fusion rule (reciprocal-rank fusion). Each seed's answer ranks its items 1, 2, ...
in the order Personalize returned them; an item scores the sum, over the seeds whose
answer holds it, of 1 / (k + rank), with k = `FUSION_K` (60). The merged list is the
items by score, highest first, ties broken by the item's best rank, then its id; the
cart's own items are left out and no item appears twice. An item keeps the metadata and
reasons of its best-ranked occurrence, and shows its fused score as `score`.

The over-fetch rule. A cart of `s` items showing `n` asks each seed for `min(n + s, cap)`
(cap 500, or 50 for a use case returning metadata): at most `s` of a seed's items are
cart items, so any one seed with `n` other items fills the list on its own.

Re-ranking. With a user and `cart.rerank` naming a ranking use case, the merged list
(cut to `n`) is re-ranked for that user by GetPersonalizedRanking, one more call; the
answer is the ranking's order and scores. The filter and context go with the seeds'
calls; the re-ranking gets the context only (its items are already filtered).

What the answer carries. `recommendationId`: the ranking's when re-ranked, else null
(a fusion of several recommendations has no one id to attribute events to). `source`:
the ranking's when re-ranked, else FALLBACK when any seed's answer came from a fallback,
else the seeds' own.

A seed whose call fails (with no fallback answering) leaves the others' merge standing:
the field answers with the merge and, at the field's path, one error per failed seed
with its `extensions.code`. A re-ranking that fails leaves the merged order, with its
error the same way. When every seed fails, the field is null with the first seed's
error (and the others' beside it).
"""

import asyncio
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLError

from domain.errors import ErrorCode, InvalidArgument, NotConfigured, SubgraphError
from domain.request import Operation, RecommendationRequest
from domain.result import ResultItem, Source
from resolvers.arguments import (
    check_context,
    check_id,
    check_num_results,
    given,
    max_results,
)
from resolvers.context import Context
from resolvers.recommendations import RecommendationsView, answered, field_request, recovered
from settings import ServedField, Settings

# Reciprocal-rank fusion's constant: large enough that one list's first places do not
# outweigh an item several seeds agree on (the value of Cormack et al., 2009).
FUSION_K = 60
MAX_SEEDS = 20
DEFAULT_SHOWN = 25


class SeedFailed(SubgraphError):
    """One seed's (or the re-ranking's) failure, named, with its original code."""

    def __init__(self, message: str, code: ErrorCode) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class PlannedCart:
    """A cart's calls: one per distinct seed, and what re-ranks the merge, if anything."""

    seeds: tuple[str, ...]
    requests: tuple[RecommendationRequest, ...]
    shows: int
    # Set when the merge is re-ranked: the ranking request without its input list.
    rerank: RecommendationRequest | None = None
    # Each seed's first index in `itemIds`, which its error names.
    positions: tuple[int, ...] = ()


def plan_cart(
    settings: Settings,
    *,
    item_ids: Sequence[Any],
    user_id: Any,
    use_case: Any,
    num_results: Any,
    filter: Any,
    context: Any,
) -> PlannedCart:
    """Every seed's over-fetched request; raises InvalidArgument for a bad argument."""
    if not 1 <= len(item_ids) <= MAX_SEEDS:
        raise InvalidArgument(f"itemIds takes 1..{MAX_SEEDS} item ids, got {len(item_ids)}")
    first: dict[str, int] = {}
    for index, given_id in enumerate(item_ids):
        first.setdefault(check_id(given_id, "itemIds"), index)
    seeds = tuple(first)
    user = check_id(user_id, "userId") if given(user_id) else None
    name = use_case.value if isinstance(use_case, Enum) else None
    name = name or settings.default_use_case(ServedField.RELATED)
    if name is None:
        raise NotConfigured("no use case is configured for related")
    case = settings.use_cases[name]
    shows = num_results if given(num_results) and num_results is not None else DEFAULT_SHOWN
    check_num_results(shows, with_metadata=bool(case.metadata_columns))
    cap = max_results(with_metadata=bool(case.metadata_columns))
    asked = min(shows + len(seeds), cap)
    requests = tuple(
        field_request(
            settings,
            ServedField.RELATED,
            use_case=use_case,
            user_id=user,
            item_id=seed,
            num_results=asked,
            filter=filter,
            context=context,
            promotion=None,
        )
        for seed in seeds
    )
    rerank = _rerank(settings, user, context)
    return PlannedCart(seeds, requests, shows, rerank, tuple(first.values()))


def _rerank(settings: Settings, user: str | None, context: Any) -> RecommendationRequest | None:
    name = settings.cart.rerank
    if user is None or name is None:
        return None
    case = settings.use_cases[name]
    return RecommendationRequest(
        operation=Operation.GET_PERSONALIZED_RANKING,
        arn=case.arn,
        use_case=name,
        user_id=user,
        context=check_context(context, None),
        metadata_columns=case.metadata_columns,
    )


def fuse(
    seeds: Sequence[str], lists: Sequence[Sequence[ResultItem]], shows: int, k: int = FUSION_K
) -> tuple[ResultItem, ...]:
    """The seeds' lists merged by reciprocal-rank fusion (module docstring), seeds left
    out, cut to `shows`."""
    cart = set(seeds)
    ranks: dict[str, list[int]] = {}
    best: dict[str, ResultItem] = {}
    for items in lists:
        seen: set[str] = set()
        for rank, item in enumerate(items, start=1):
            if item.item_id in cart or item.item_id in seen:
                continue
            seen.add(item.item_id)
            found = ranks.setdefault(item.item_id, [])
            if not found or rank < min(found):
                best[item.item_id] = item
            found.append(rank)
    # fsum is exactly rounded: the score does not depend on the order of the seeds.
    scores = {i: math.fsum(1 / (k + r) for r in found) for i, found in ranks.items()}
    order = sorted(scores, key=lambda i: (-scores[i], min(ranks[i]), i))
    return tuple(best[i]._replace(score=scores[i]) for i in order[:shows])


async def _seed(context: Context, request: RecommendationRequest) -> RecommendationsView:
    try:
        answer = await context.loaders.recommendations.answer(request)
    except SubgraphError as exc:
        return await recovered(context, request, exc)
    return answered(answer)


def _failure(where: str, exc: BaseException) -> SeedFailed:
    if not isinstance(exc, Exception):
        raise exc
    if not isinstance(exc, SubgraphError):
        raise exc
    return SeedFailed(f"{where}: {exc}", exc.code)


async def answer_cart(
    context: Context, planned: PlannedCart, info: strawberry.Info | None = None
) -> RecommendationsView:
    """Every seed's call in one concurrent round, the merge, and its re-ranking."""
    settled = await asyncio.gather(
        *(_seed(context, r) for r in planned.requests), return_exceptions=True
    )
    views: list[RecommendationsView] = []
    failures: list[SeedFailed] = []
    for index, seed, outcome in zip(planned.positions, planned.seeds, settled, strict=True):
        if isinstance(outcome, BaseException):
            failures.append(_failure(f"itemIds[{index}] ({seed})", outcome))
        else:
            views.append(outcome)
    if not views:
        _report(info, context, failures[1:])
        raise failures[0]
    merged = fuse(planned.seeds, [v.items for v in views], planned.shows)
    fallback = any(v.source is Source.FALLBACK for v in views)
    view = RecommendationsView(None, merged, Source.FALLBACK if fallback else views[0].source)
    if planned.rerank is not None and merged:
        ranking = dataclasses.replace(
            planned.rerank, input_list=tuple(item.item_id for item in merged)
        )
        try:
            view = answered(await context.loaders.recommendations.answer(ranking))
        except SubgraphError as exc:
            failures.append(_failure(f"re-ranking ({ranking.use_case})", exc))
    _report(info, context, failures)
    return view


def _report(info: strawberry.Info | None, context: Context, failures: list[SeedFailed]) -> None:
    """Errors beside the field's data, at its path (`schema.error_codes` adds them)."""
    if info is None or not failures:
        return
    path = info.path.as_list()
    for failure in failures:
        context.errors.append(GraphQLError(str(failure), path=path, original_error=failure))


async def cart_recommendations(
    root: Any,
    info: strawberry.Info,
    *,
    item_ids: Sequence[Any],
    user_id: Any = None,
    use_case: Any = None,
    num_results: Any = DEFAULT_SHOWN,
    filter: Any = None,
    context: Any = None,
) -> RecommendationsView:
    """Query.cartRecommendations."""
    ctx: Context = info.context
    planned = plan_cart(
        ctx.settings,
        item_ids=item_ids,
        user_id=user_id,
        use_case=use_case,
        num_results=num_results,
        filter=filter,
        context=context,
    )
    return await answer_cart(ctx, planned, info)
