"""Baseline (a) for `make bench`: what a first Strawberry implementation of the schema looks like.

The same type, field and argument names as our subgraph for the part the benchmark
queries (User.recommendations / rankedItems, Item.related, Query.popularItems,
`_entities`), so the same documents run against both. Deliberately plain, not
sabotaged: Strawberry's stock `strawberry.asgi.GraphQL` view (json responses) on
uvicorn, one aioboto3 client with default settings for the process, and an async
resolver per Personalize field that awaits the client directly (no dataloader, no
dedupe, no cache). The endpoint comes from the standard
`AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME` variable, the region from `AWS_DEFAULT_REGION`.

`python -m bench.naive_subgraph --port 4002` (ARNs from config/demo.toml).
"""

import argparse
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import Enum
from typing import Any

import aioboto3
import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from settings import DEMO_CONFIG

_CONFIG = tomllib.loads(DEMO_CONFIG.read_text())
ARNS: dict[str, str] = {name: case["arn"] for name, case in _CONFIG["use_cases"].items()}
FILTER_ARNS: dict[str, str] = {name: spec["arn"] for name, spec in _CONFIG["filters"].items()}


@strawberry.enum
class UserUseCase(Enum):
    RECOMMENDED_FOR_YOU = "recommendedForYou"
    USER_PERSONALIZATION = "userPersonalization"


@strawberry.enum
class ItemUseCase(Enum):
    SIMILAR_ITEMS = "similarItems"
    CUSTOMERS_WHO_VIEWED = "customersWhoViewed"


@strawberry.enum
class PopularUseCase(Enum):
    BEST_SELLERS = "bestSellers"
    MOST_VIEWED = "mostViewed"
    POPULARITY = "popularity"


@strawberry.enum
class RankingUseCase(Enum):
    PERSONALIZED_RANKING = "personalizedRanking"


@strawberry.enum
class RecommendationSource(Enum):
    PERSONALIZE = "PERSONALIZE"
    LOCAL = "LOCAL"
    FALLBACK = "FALLBACK"


@strawberry.input
class ByCategoryFilter:
    category: list[str]


@strawberry.input
class MaxPriceFilter:
    max_price: float


@strawberry.input(one_of=True)
class RecommendationFilter:
    exclude_purchased: bool | None = strawberry.UNSET
    by_category: ByCategoryFilter | None = strawberry.UNSET
    max_price: MaxPriceFilter | None = strawberry.UNSET


@strawberry.type
class PredictedItem:
    item_id: strawberry.ID
    score: float | None

    @strawberry.field
    def item(self) -> "Item":
        return Item(id=self.item_id)


@strawberry.type
class Recommendations:
    recommendation_id: strawberry.ID | None
    items: list[PredictedItem]
    source: RecommendationSource


def _target(arn: str) -> dict[str, Any]:
    return {"recommenderArn": arn} if ":recommender/" in arn else {"campaignArn": arn}


def _filter(value: RecommendationFilter | None) -> dict[str, Any]:
    if not value:
        return {}
    if value.exclude_purchased:
        return {"filterArn": FILTER_ARNS["excludePurchased"]}
    if value.by_category:
        quoted = ",".join(f'"{c}"' for c in value.by_category.category)
        return {"filterArn": FILTER_ARNS["byCategory"], "filterValues": {"CATEGORY": quoted}}
    if value.max_price:
        price = f'"{value.max_price.max_price:g}"'
        return {"filterArn": FILTER_ARNS["maxPrice"], "filterValues": {"MAX_PRICE": price}}
    return {}


def _answer(response: dict[str, Any], key: str = "itemList") -> Recommendations:
    return Recommendations(
        recommendation_id=response.get("recommendationId"),
        items=[
            PredictedItem(item_id=entry["itemId"], score=entry.get("score"))
            for entry in response.get(key, [])
        ],
        source=RecommendationSource.PERSONALIZE,
    )


async def _get_recommendations(info: strawberry.Info, **params: Any) -> Recommendations:
    client = info.context["request"].app.state.personalize
    response = await client.get_recommendations(**params)
    return _answer(response)


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> "User":
        return cls(id=id)

    @strawberry.field
    async def recommendations(
        self,
        info: strawberry.Info,
        use_case: UserUseCase | None = None,
        num_results: int | None = 25,
        filter: RecommendationFilter | None = None,
    ) -> Recommendations | None:
        arn = ARNS[(use_case or UserUseCase.RECOMMENDED_FOR_YOU).value]
        return await _get_recommendations(
            info, **_target(arn), userId=self.id, numResults=num_results, **_filter(filter)
        )

    @strawberry.field
    async def ranked_items(
        self,
        info: strawberry.Info,
        item_ids: list[strawberry.ID],
        use_case: RankingUseCase | None = None,
        filter: RecommendationFilter | None = None,
    ) -> Recommendations | None:
        arn = ARNS[(use_case or RankingUseCase.PERSONALIZED_RANKING).value]
        client = info.context["request"].app.state.personalize
        response = await client.get_personalized_ranking(
            campaignArn=arn, userId=self.id, inputList=item_ids, **_filter(filter)
        )
        return _answer(response, "personalizedRanking")


@strawberry.federation.type(keys=["id"])
class Item:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> "Item":
        return cls(id=id)

    @strawberry.field
    async def related(
        self,
        info: strawberry.Info,
        use_case: ItemUseCase | None = None,
        num_results: int | None = 25,
        user_id: strawberry.ID | None = None,
        filter: RecommendationFilter | None = None,
    ) -> Recommendations | None:
        arn = ARNS[(use_case or ItemUseCase.SIMILAR_ITEMS).value]
        user = {"userId": user_id} if user_id else {}
        return await _get_recommendations(
            info, **_target(arn), itemId=self.id, numResults=num_results, **user, **_filter(filter)
        )


@strawberry.type
class Query:
    @strawberry.field
    async def popular_items(
        self,
        info: strawberry.Info,
        use_case: PopularUseCase | None = None,
        num_results: int | None = 25,
        user_id: strawberry.ID | None = None,
        filter: RecommendationFilter | None = None,
    ) -> Recommendations | None:
        arn = ARNS[(use_case or PopularUseCase.BEST_SELLERS).value]
        user = {"userId": user_id} if user_id else {}
        return await _get_recommendations(
            info, **_target(arn), numResults=num_results, **user, **_filter(filter)
        )


schema = strawberry.federation.Schema(query=Query, types=[User, Item], federation_version="2.9")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with aioboto3.Session().client("personalize-runtime") as client:
        app.state.personalize = client
        yield


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    return Starlette(
        routes=[Route("/graphql", GraphQL(schema)), Route("/healthz", healthz)],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4002)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
