"""The page-shaped operations `make bench` drives, and the orjson floor for each one.

Every workload is one GraphQL document plus a variables generator (random users and
items of the demo shop: `user-0001`..`user-5000`, `item-0001`..`item-2000`; batch-warm
repeats a fixed set of batches so that a cache can hold every answer), the number
of fields in one query that ask Personalize, and the floor: the same response built
as plain dicts from the raw (itemId, score) lists of a real answer and serialised
with orjson, which is as cheap as producing that JSON can get in Python.
"""

import bisect
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

N_USERS = 5_000
N_ITEMS = 2_000
ZIPF_S = 1.1

Json = dict[str, Any]
# One Recommendations object reduced to what Personalize returned: id and (itemId, score).
Carousel = tuple[str | None, list[tuple[str, float | None]]]
Path = tuple[str | int, ...]

_ITEMS = "items { itemId score item { __typename id } }"


def user_id(n: int) -> str:
    return f"user-{n:04d}"


def item_id(n: int) -> str:
    return f"item-{n:04d}"


def _ranking_candidates(item: int, count: int) -> list[str]:
    """A product page's ids to rank: a fixed spread of other items, the same for one item."""
    return [item_id((item + 7 * k) % N_ITEMS + 1) for k in range(1, count + 1)]


class Zipf:
    """Ranks 1..n drawn with probability proportional to 1/rank^s, ranks shuffled onto ids.

    The shuffle (seeded) keeps the popular ids from being item-0001, item-0002...
    """

    def __init__(self, n: int, s: float, seed: int) -> None:
        self._cumulative = list(itertools.accumulate(1.0 / (k**s) for k in range(1, n + 1)))
        self._ids = list(range(1, n + 1))
        random.Random(seed).shuffle(self._ids)

    def draw(self, rng: random.Random) -> int:
        rank = bisect.bisect_left(self._cumulative, rng.random() * self._cumulative[-1])
        return self._ids[min(rank, len(self._ids) - 1)]


_ZIPF_ITEMS = Zipf(N_ITEMS, ZIPF_S, seed=11)
_ZIPF_USERS = Zipf(N_USERS, ZIPF_S, seed=12)


def _recommendations(carousel: Carousel, with_id: bool) -> Json:
    rid, items = carousel
    built: Json = {
        "items": [
            {"itemId": i, "score": s, "item": {"__typename": "Item", "id": i}} for i, s in items
        ]
    }
    if with_id:
        built = {"recommendationId": rid, **built}
    return built


@dataclass(frozen=True)
class Workload:
    """One page-shaped operation."""

    name: str
    description: str
    query: str
    # Fields in one query that ask Personalize (the "requests" of the caching check).
    personalize_fields: int
    make_variables: Callable[[random.Random], Json]
    # Where the Recommendations objects sit in `data`, in the order `build` takes them.
    paths: Callable[[Json], list[Path]]
    # The response built from raw carousels: the floor's whole job.
    build: Callable[[Sequence[Carousel]], Json]
    # When set, the stream repeats these variables (make_variables draws from them) and
    # the bench sends each once before measuring, so a cache can hold every answer.
    repeating: tuple[Json, ...] = ()
    # When set, told each measured answer's body, by the client's rng: a workload whose
    # next query depends on the last answer (a scroll's cursor) keeps it here.
    on_answer: Callable[[random.Random, bytes], None] | None = None

    def payload(self, rng: random.Random) -> bytes:
        return orjson.dumps({"query": self.query, "variables": self.make_variables(rng)})

    def carousels(self, data: Json) -> list[Carousel]:
        """The raw (recommendationId, [(itemId, score)]) of each Recommendations in `data`."""
        found: list[Carousel] = []
        for path in self.paths(data):
            node: Any = data
            for step in path:
                node = node[step]
            if node is None:
                raise ValueError(f"{self.name}: no recommendations at {path}")
            found.append(
                (node.get("recommendationId"), [(i["itemId"], i["score"]) for i in node["items"]])
            )
        return found

    def floor(self, data: Json) -> Callable[[], bytes]:
        """The floor for this answer: build the same JSON from its raw lists, orjson it.

        Raises ValueError when the built JSON is not the answer (the floor would be
        measuring a different shape).
        """
        raw = self.carousels(data)

        def run() -> bytes:
            return orjson.dumps(self.build(raw))

        if orjson.loads(run()) != {"data": data}:
            raise ValueError(f"{self.name}: the floor does not rebuild the real answer")
        return run


# --- home: one user, four carousels --------------------------------------------------------

HOME_CAROUSELS = ("forYou", "picks", "notBought", "ranked")
HOME_QUERY = f"""query Home($representations: [_Any!]!, $candidates: [ID!]!) {{
  _entities(representations: $representations) {{
    ... on User {{
      forYou: recommendations {{ {_ITEMS} }}
      picks: recommendations(useCase: USER_PERSONALIZATION) {{ {_ITEMS} }}
      notBought: recommendations(filter: {{excludePurchased: true}}) {{ {_ITEMS} }}
      ranked: rankedItems(itemIds: $candidates) {{ {_ITEMS} }}
    }}
  }}
}}"""


def _home_variables(rng: random.Random) -> Json:
    return {
        "representations": [{"__typename": "User", "id": user_id(rng.randint(1, N_USERS))}],
        "candidates": [item_id(n) for n in rng.sample(range(1, N_ITEMS + 1), 10)],
    }


def _home_build(raw: Sequence[Carousel]) -> Json:
    user = {name: _recommendations(c, False) for name, c in zip(HOME_CAROUSELS, raw, strict=True)}
    return {"data": {"_entities": [user]}}


HOME = Workload(
    name="home",
    description="1 user, 4 carousels: recommendations x3 (default, USER_PERSONALIZATION, "
    "excludePurchased) of 25 + rankedItems of 10",
    query=HOME_QUERY,
    personalize_fields=4,
    make_variables=_home_variables,
    paths=lambda data: [("_entities", 0, name) for name in HOME_CAROUSELS],
    build=_home_build,
)

# --- product: an item's related items and the user's ranking of 25 -----------------------

PRODUCT_SELECTION = f"""_entities(representations: $representations) {{
    ... on Item {{ related(numResults: 25) {{ {_ITEMS} }} }}
    ... on User {{ rankedItems(itemIds: $candidates) {{ {_ITEMS} }} }}
  }}"""
PRODUCT_QUERY = f"""query Product($representations: [_Any!]!, $candidates: [ID!]!) {{
  {PRODUCT_SELECTION}
}}"""


def _product_variables(item: int, user: int) -> Json:
    return {
        "representations": [
            {"__typename": "Item", "id": item_id(item)},
            {"__typename": "User", "id": user_id(user)},
        ],
        "candidates": _ranking_candidates(item, 25),
    }


def _product_entities(raw: Sequence[Carousel]) -> list[Json]:
    related, ranked = raw
    return [
        {"related": _recommendations(related, False)},
        {"rankedItems": _recommendations(ranked, False)},
    ]


PRODUCT = Workload(
    name="product",
    description="Item.related (25) + User.rankedItems (25 ids) in one _entities",
    query=PRODUCT_QUERY,
    personalize_fields=2,
    make_variables=lambda rng: _product_variables(rng.randint(1, N_ITEMS), rng.randint(1, N_USERS)),
    paths=lambda data: [("_entities", 0, "related"), ("_entities", 1, "rankedItems")],
    build=lambda raw: {"data": {"_entities": _product_entities(raw)}},
)

# --- batch: what a gateway sends for a list of 50 users ----------------------------------

BATCH_USERS = 50
BATCH_QUERY = f"""query Batch($representations: [_Any!]!) {{
  _entities(representations: $representations) {{
    ... on User {{ recommendations(numResults: 25) {{ recommendationId {_ITEMS} }} }}
  }}
}}"""

BATCH = Workload(
    name="batch",
    description=f"_entities of {BATCH_USERS} distinct users x recommendations(numResults: 25) "
    "with recommendationId",
    query=BATCH_QUERY,
    personalize_fields=BATCH_USERS,
    make_variables=lambda rng: {
        "representations": [
            {"__typename": "User", "id": user_id(n)}
            for n in rng.sample(range(1, N_USERS + 1), BATCH_USERS)
        ]
    },
    paths=lambda data: [("_entities", k, "recommendations") for k in range(len(data["_entities"]))],
    build=lambda raw: {
        "data": {"_entities": [{"recommendations": _recommendations(c, True)} for c in raw]}
    },
)

# --- batch-warm: the same batch, answered from a warm cache ------------------------------

# 20 fixed batches of 50 users (1,000 distinct users, none in two batches): the stream
# repeats them, so once each has been asked a per-user cache answers every field.
BATCH_WARM_SET = 20
_WARM_USERS = random.Random(50).sample(range(1, N_USERS + 1), BATCH_WARM_SET * BATCH_USERS)
BATCH_WARM_VARIABLES: tuple[Json, ...] = tuple(
    {
        "representations": [
            {"__typename": "User", "id": user_id(n)}
            for n in _WARM_USERS[k * BATCH_USERS : (k + 1) * BATCH_USERS]
        ]
    }
    for k in range(BATCH_WARM_SET)
)

BATCH_WARM = Workload(
    name="batch-warm",
    description=f"batch's query over a fixed set of {BATCH_WARM_SET} batches of "
    f"{BATCH_USERS} users, every answer already cached (0 Personalize calls)",
    query=BATCH_QUERY,
    personalize_fields=BATCH_USERS,
    make_variables=lambda rng: rng.choice(BATCH_WARM_VARIABLES),
    paths=BATCH.paths,
    build=BATCH.build,
    repeating=BATCH_WARM_VARIABLES,
)

# --- zipf: product pages with a best-sellers carousel, popular items and users ------------

ZIPF_QUERY = f"""query ProductWithBestSellers($representations: [_Any!]!, $candidates: [ID!]!) {{
  popularItems(numResults: 25) {{ {_ITEMS} }}
  {PRODUCT_SELECTION}
}}"""


def _zipf_build(raw: Sequence[Carousel]) -> Json:
    popular, *product = raw
    return {
        "data": {
            "popularItems": _recommendations(popular, False),
            "_entities": _product_entities(product),
        }
    }


ZIPF = Workload(
    name="zipf",
    description=f"product page + popularItems (25); items and users Zipf(s={ZIPF_S}) "
    f"over {N_ITEMS:,} items / {N_USERS:,} users",
    query=ZIPF_QUERY,
    personalize_fields=3,
    make_variables=lambda rng: _product_variables(_ZIPF_ITEMS.draw(rng), _ZIPF_USERS.draw(rng)),
    paths=lambda data: [
        ("popularItems",),
        ("_entities", 0, "related"),
        ("_entities", 1, "rankedItems"),
    ],
    build=_zipf_build,
)

WORKLOADS: dict[str, Workload] = {w.name: w for w in (HOME, PRODUCT, BATCH, BATCH_WARM, ZIPF)}
