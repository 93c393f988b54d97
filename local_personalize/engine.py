"""The embedded Personalize Runtime: wire-format requests in, wire-format responses out.

``Engine`` is the single entry point used in-process by the subgraph's local backend
and by the HTTP emulator, so request validation happens here, once. Requests and
responses are the camelCase JSON dicts botocore sends and receives. Besides the
Runtime's two operations it records PutEvents (the personalize-events API), so a
user's next recommendations see what they just did (see ``events``).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from .data import Dataset, UserHistory, generate_demo_dataset
from .domain_recipes import CO_VIEW_WINDOW, CustomersWhoViewed
from .errors import InvalidInputException, ResourceNotFoundException
from .events import EventStore
from .filters import CompiledFilter, FilterSyntaxError
from .recipes import (
    EASE_MAX_ITEMS,
    SIMS_DISCOUNT,
    Popularity,
    Ranked,
    Sims,
    TrendingNow,
    UserPersonalization,
    cooccurrence,
    user_item_matrix,
)
from .resources import (
    DEMO_RESOURCES,
    Deployment,
    Recipe,
    Resources,
    ResourcesFileError,
    load_resources,
)
from .validation import (
    Promotion,
    RankingRequest,
    RecommendationsRequest,
    parse_put_events_request,
    parse_ranking_request,
    parse_recommendations_request,
)

PROMOTED_REASON = "Promoted item"

Model = Popularity | Sims | UserPersonalization | TrendingNow | CustomersWhoViewed


@dataclass(frozen=True)
class BuildStats:
    """How long building an engine took (generation is 0 for a dataset passed in)."""

    generate_seconds: float
    fit_seconds: float


class Engine:
    """Fitted models plus resources, answering GetRecommendations and GetPersonalizedRanking,
    and recording PutEvents into the users' histories."""

    def __init__(self, dataset: Dataset, resources: Resources = DEMO_RESOURCES) -> None:
        started = time.perf_counter()
        self.dataset = dataset
        self.resources = resources
        n_items = len(dataset.items)
        inter = dataset.interactions
        gram = cooccurrence(user_item_matrix(inter, n_items))

        self._popularity: dict[tuple[str, ...] | None, Popularity] = {
            None: Popularity(inter, n_items)
        }
        # One model per distinct (recipe, event types, hyperparameters): deployments that
        # agree share a fit, like two campaigns on one solution version.
        cache: dict[tuple[Any, ...], Model] = {}
        self._models: dict[str, Model] = {}
        for d in resources.deployments:
            key = (d.recipe, d.event_types, d.hyperparameters)
            if d.recipe is Recipe.PERSONALIZED_RANKING:
                key = (Recipe.USER_PERSONALIZATION, None, d.hyperparameters)
            if key not in cache:
                cache[key] = self._fit(d, gram)
            self._models[d.arn] = cache[key]
        self._deployments = {d.arn: d for d in resources.deployments}
        self._filters = {
            f.arn: CompiledFilter(f.arn, f.expression, dataset) for f in resources.filters
        }
        # The domain use cases' automatic filters, e.g. recommended-for-you leaves out
        # what the user purchased; they read the live history like any filter.
        self._automatic = {
            d.arn: CompiledFilter(
                d.arn,
                "EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("
                + ", ".join(f'"{e}"' for e in d.excluded_event_types)
                + ")",
                dataset,
            )
            for d in resources.deployments
            if d.excluded_event_types
        }
        self._trackers = {t.tracking_id: t for t in resources.event_trackers}
        self.events = EventStore(dataset)
        self.build_stats = BuildStats(0.0, time.perf_counter() - started)

    def _fit(self, d: Deployment, gram: sp.csr_matrix) -> Model:
        inter, n_items = self.dataset.interactions, len(self.dataset.items)
        if d.recipe is Recipe.POPULARITY:
            if d.event_types not in self._popularity:
                self._popularity[d.event_types] = Popularity(inter, n_items, d.event_types)
            return self._popularity[d.event_types]
        if d.recipe is Recipe.TRENDING_NOW:
            return TrendingNow(inter, n_items, window_days=d.hyperparameter("window_days", 7.0))
        if d.recipe is Recipe.CUSTOMERS_WHO_VIEWED:
            return CustomersWhoViewed(
                inter,
                n_items,
                event_types=d.event_types or ("View",),
                window=int(d.hyperparameter("window", CO_VIEW_WINDOW)),
                k=int(d.hyperparameter("neighbours", 200)),
            )
        if d.recipe is Recipe.SIMS:
            return Sims(
                gram,
                self._popularity[None],
                shrinkage=d.hyperparameter("shrinkage", 10.0),
                k=int(d.hyperparameter("neighbours", 200)),
                popularity_discount=d.hyperparameter("popularity_discount", SIMS_DISCOUNT),
            )
        return UserPersonalization(
            gram,
            inter,
            self._popularity[None],
            l2=d.hyperparameter("l2", 300.0),
            ease_max_items=int(d.hyperparameter("ease_max_items", EASE_MAX_ITEMS)),
        )

    @classmethod
    def from_resources(cls, path: str | Path) -> Engine:
        """Load a resources file (see local_personalize/README.md) and fit what it declares."""
        started = time.perf_counter()
        spec = load_resources(path)
        dataset = spec.dataset.load()
        loaded = time.perf_counter() - started
        try:
            engine = cls(dataset, spec.resources)
        except FilterSyntaxError as exc:
            # A filter naming a field the dataset lacks: the file is what the reader edits.
            raise ResourcesFileError(f"{spec.path}: [[filters]]: {exc}") from None
        engine.build_stats = BuildStats(loaded, engine.build_stats.fit_seconds)
        return engine

    @classmethod
    def demo(cls, seed: int = 7) -> Engine:
        """Generate the demo shop from ``seed`` and fit every demo resource on it."""
        started = time.perf_counter()
        dataset = generate_demo_dataset(seed)
        generated = time.perf_counter() - started
        engine = cls(dataset)
        engine.build_stats = BuildStats(generated, engine.build_stats.fit_seconds)
        return engine

    # --- discovery ---------------------------------------------------------------------

    def arns(self) -> list[str]:
        """Every campaign, recommender and filter ARN this engine answers for."""
        return [*self._deployments, *self._filters]

    def describe(self) -> dict[str, Any]:
        """Resources with their recipe and required inputs, and dataset sizes."""
        return {
            "deployments": [
                {
                    "arn": d.arn,
                    "type": d.kind,
                    "recipe": str(d.recipe),
                    "requiresUserId": d.requires_user,
                    "requiresItemId": d.requires_item,
                }
                for d in self._deployments.values()
            ],
            "filters": [
                {"arn": f.arn, "expression": f.expression.text, "parameters": sorted(f.parameters)}
                for f in self._filters.values()
            ],
            "dataset": {
                "items": len(self.dataset.items),
                "users": len(self.dataset.users),
                "interactions": len(self.dataset.interactions),
                "itemColumns": sorted(self.dataset.items.columns),
            },
            "eventTrackers": [
                {"name": t.name, "trackingId": t.tracking_id} for t in self._trackers.values()
            ],
            "events": dict(self.events.counts),
        }

    # --- operations --------------------------------------------------------------------

    def get_recommendations(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """GetRecommendations: ``{"itemList": [...], "recommendationId": "RID-..."}``."""
        req = parse_recommendations_request(request)
        deployment = self._deployment(req.arn, req.arn_member)
        if deployment.recipe is Recipe.PERSONALIZED_RANKING:
            raise InvalidInputException(
                f"{deployment.arn} uses the personalized-ranking recipe; "
                "call GetPersonalizedRanking instead"
            )
        if deployment.requires_user and req.user_id is None:
            raise InvalidInputException(f"userId is required for {deployment.arn}")
        if deployment.requires_item and req.item_id is None:
            raise InvalidInputException(f"itemId is required for {deployment.arn}")
        self._check_columns(req.metadata_columns)
        user = self._user_index(req.user_id)
        who = _Subject(user, req.user_id, req.item_id, self.events.history(req.user_id))
        allowed = self._allowed(req.filter_arn, req.filter_values, who)
        automatic = self._automatic.get(deployment.arn)
        if automatic is not None:
            # Applied first in the service; as masks, the order does not matter.
            kept = automatic.allowed(
                who.user, {}, user_id=who.user_id, item_id=who.item_id, history=who.history
            )
            allowed = kept if allowed is None else allowed & kept
        promo_allowed = self._promotion_mask(req.promotion, who, allowed)

        n = req.num_results
        n_promoted = 0
        if req.promotion is not None and promo_allowed is not None:
            # Rounding up means a small list still shows the promotion the caller asked for.
            n_promoted = min(n, math.ceil(n * req.promotion.percent / 100))
            promoted = self._rank(deployment, req, who, n_promoted, promo_allowed)
            n_promoted = promoted[0].shape[0]
            rest_allowed = (
                np.ones(len(self.dataset.items), dtype=bool) if allowed is None else allowed.copy()
            )
            rest_allowed[promoted[0]] = False
            regular = self._rank(deployment, req, who, n - n_promoted, rest_allowed)
            items = self._interleave(regular, promoted, req.promotion.name, req.metadata_columns)
        else:
            regular = self._rank(deployment, req, who, n, allowed)
            items = self._entries(regular, req.metadata_columns)
        return {"itemList": items, "recommendationId": _recommendation_id()}

    def get_personalized_ranking(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """GetPersonalizedRanking: ``{"personalizedRanking": [...], "recommendationId": ...}``.

        Known items are ordered by the user model (scores: softmax over the known input
        items); items unknown to the model follow in input order with score 0.0;
        duplicates keep their first occurrence; filtered-out items are removed.
        """
        req: RankingRequest = parse_ranking_request(request)
        deployment = self._deployment(req.campaign_arn, "campaignArn")
        if deployment.recipe is not Recipe.PERSONALIZED_RANKING:
            raise InvalidInputException(
                f"{deployment.arn} does not use the personalized-ranking recipe; "
                "call GetRecommendations instead"
            )
        self._check_columns(req.metadata_columns)
        user = self._user_index(req.user_id)
        history = self.events.history(req.user_id)
        allowed = self._allowed(
            req.filter_arn, req.filter_values, _Subject(user, req.user_id, history=history)
        )

        index = self.dataset.items.index
        seen: set[str] = set()
        known: list[int] = []
        unknown: list[str] = []
        for item_id in req.input_list:
            if item_id in seen:
                continue
            seen.add(item_id)
            i = index.get(item_id)
            if i is None:
                unknown.append(item_id)
            elif allowed is None or allowed[i]:
                known.append(i)
        personal = self._models[deployment.arn]
        assert isinstance(personal, UserPersonalization)
        ranked = personal.rank(user, np.asarray(known, dtype=np.int64), sequence=_sequence(history))
        entries = self._entries(ranked, req.metadata_columns)
        entries.extend({"itemId": item_id, "score": 0.0} for item_id in unknown)
        return {"personalizedRanking": entries, "recommendationId": _recommendation_id()}

    def put_events(self, params: Mapping[str, Any]) -> None:
        """PutEvents (personalize-events): record a session's events for its user.

        ``params`` is the wire-format request (``trackingId``, ``sessionId``, optional
        ``userId``, ``eventList`` of 1..10 events). Every model limit is checked first
        (InvalidInputException naming the member), then the tracking id (an unknown one
        is ResourceNotFoundException). Events with a userId and an itemId join that
        user's history at once: the next GetRecommendations / GetPersonalizedRanking
        for the user filters on them (``Interactions.EVENT_TYPE``, the automatic
        filters of recommended-for-you and customers-who-viewed included) and scores
        from them (user personalization); popularity, trending, SIMS and co-views keep
        their trained counts, as in the service until retraining. Semantics in ``events``.
        """
        req = parse_put_events_request(params)
        if req.tracking_id not in self._trackers:
            raise ResourceNotFoundException(
                f"Event tracker not found: no tracker has trackingId {req.tracking_id}"
            )
        self.events.record(req)

    # --- helpers -----------------------------------------------------------------------

    def _deployment(self, arn: str, member: str) -> Deployment:
        deployment = self._deployments.get(arn)
        if deployment is None:
            kind = "Campaign" if member == "campaignArn" else "Recommender"
            raise ResourceNotFoundException(f"{kind} not found: {arn}")
        expected = "campaign" if member == "campaignArn" else "recommender"
        if deployment.kind != expected:
            raise InvalidInputException(
                f"{arn} is a {deployment.kind}; send it as {deployment.kind}Arn"
            )
        return deployment

    def _user_index(self, user_id: str | None) -> int | None:
        if user_id is None:
            return None
        return self.dataset.interactions.user_index.get(user_id)

    def _filter(self, arn: str) -> CompiledFilter:
        compiled = self._filters.get(arn)
        if compiled is None:
            raise ResourceNotFoundException(f"Filter not found: {arn}")
        return compiled

    def _allowed(
        self, filter_arn: str | None, values: Mapping[str, str], who: _Subject
    ) -> NDArray[np.bool_] | None:
        if filter_arn is None:
            return None
        return self._filter(filter_arn).allowed(
            who.user, values, user_id=who.user_id, item_id=who.item_id, history=who.history
        )

    def _promotion_mask(
        self, promotion: Promotion | None, who: _Subject, allowed: NDArray[np.bool_] | None
    ) -> NDArray[np.bool_] | None:
        if promotion is None:
            return None
        mask = self._filter(promotion.filter_arn).allowed(
            who.user,
            promotion.filter_values,
            user_id=who.user_id,
            item_id=who.item_id,
            history=who.history,
        )
        # Promoted items still obey the request's own filter.
        return mask if allowed is None else mask & allowed

    def _check_columns(self, columns: tuple[str, ...] | None) -> None:
        if columns is None:
            return
        unknown = [c for c in columns if c not in self.dataset.items.columns]
        if unknown:
            raise InvalidInputException(
                f"metadataColumns names columns not in the Items dataset: {', '.join(unknown)}"
            )

    def _rank(
        self,
        deployment: Deployment,
        req: RecommendationsRequest,
        who: _Subject,
        n: int,
        allowed: NDArray[np.bool_] | None,
    ) -> Ranked:
        if n <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        model = self._models[deployment.arn]
        if isinstance(model, Popularity | TrendingNow):
            return model.recommend(n, allowed)
        if isinstance(model, Sims | CustomersWhoViewed):
            assert req.item_id is not None
            item = self.dataset.items.index.get(req.item_id)
            if item is None:  # a cold item: fall back to popular items, like SIMS does
                return model.popularity.recommend(n, allowed)
            return model.related(item, n, allowed)
        return model.recommend(who.user, n, allowed, sequence=_sequence(who.history))

    def _entries(self, ranked: Ranked, columns: tuple[str, ...] | None) -> list[dict[str, Any]]:
        ids = self.dataset.items.ids
        cols = [self.dataset.items.columns[c] for c in columns] if columns else []
        entries: list[dict[str, Any]] = []
        for i, score in zip(ranked[0].tolist(), ranked[1].tolist(), strict=True):
            entry: dict[str, Any] = {"itemId": ids[i], "score": score}
            if columns is not None:
                entry["metadata"] = {c.name: c.strings[i] for c in cols}
            entries.append(entry)
        return entries

    def _interleave(
        self,
        regular: Ranked,
        promoted: Ranked,
        name: str,
        columns: tuple[str, ...] | None,
    ) -> list[dict[str, Any]]:
        plain = self._entries(regular, columns)
        promos = self._entries(promoted, columns)
        for entry in promos:
            entry["promotionName"] = name
            entry["reason"] = [PROMOTED_REASON]
        total = len(plain) + len(promos)
        if not promos:
            return plain
        # Spread promoted items evenly (first slot included) so they are seen without
        # taking over the top of the list.
        slots = {(k * total) // len(promos) for k in range(len(promos))}
        out: list[dict[str, Any]] = []
        p_iter, r_iter = iter(promos), iter(plain)
        for pos in range(total):
            out.append(next(p_iter) if pos in slots else next(r_iter))
        return out


@dataclass(frozen=True)
class _Subject:
    """The request's user (Interactions index and id) and current item, as filters need
    them; ``history`` is the user's history with real-time events, when there are any."""

    user: int | None
    user_id: str | None
    item_id: str | None = None
    history: UserHistory | None = None


def _sequence(history: UserHistory | None) -> NDArray[np.int64] | None:
    return None if history is None else history.items


def _recommendation_id() -> str:
    return f"RID-{uuid.uuid4()}"
