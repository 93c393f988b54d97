"""The cart workload: a cart of 5 items as one `cartRecommendations`, beside the same 5
items' `related` lists as 5 separate fields (what a frontend merges by hand) and the
bare server's home page.

The cart makes the same 5 calls as the fields, each over-fetched to 25 + 5 = 30 items
(`resolvers.cart`), then fuses them (reciprocal-rank fusion, cart items left out) into
25; the fields show 125 items, repeats and cart items included. No userId: the merge
is not re-ranked (that would be a sixth call). Measured as the page workload is
(`bench.page_workload.compare_page`: rounds taking turns, each side pooled), it prints
per side: Personalize calls per query, server CPU per query and p50/p99 over the delay.
The service keeps `related` answers (item use cases: `cache_ttl` 300 s by default), so
items drawn again are answered from its store, on both sides alike: calls per query
fall as the rounds go. The fields are compiled (`schema.compiled`); the cart is
graphql-core's, as a page is.
"""

import random
from collections.abc import Sequence
from typing import Any

from bench.page_workload import PageComparison, PageRound, pooled_cells, progress_line
from bench.workloads import _ITEMS, N_ITEMS, Carousel, Json, Workload, _recommendations, item_id

CART_SIZE = 5
SHOWN = 25

CART_QUERY = f"""query Cart($items: [ID!]!) {{
  cartRecommendations(itemIds: $items, numResults: {SHOWN}) {{ recommendationId {_ITEMS} }}
}}"""
FIELDS_QUERY = f"""query CartByHand($representations: [_Any!]!) {{
  _entities(representations: $representations) {{
    ... on Item {{ related(numResults: {SHOWN}) {{ {_ITEMS} }} }}
  }}
}}"""


def _cart(rng: random.Random) -> list[str]:
    return [item_id(n) for n in rng.sample(range(1, N_ITEMS + 1), CART_SIZE)]


def _build_cart(raw: Sequence[Carousel]) -> Json:
    (carousel,) = raw
    return {"data": {"cartRecommendations": _recommendations(carousel, True)}}


def _build_fields(raw: Sequence[Carousel]) -> Json:
    return {"data": {"_entities": [{"related": _recommendations(c, False)} for c in raw]}}


CART = Workload(
    name="cart",
    description=f"a cart of {CART_SIZE} items as one cartRecommendations of {SHOWN}",
    query=CART_QUERY,
    personalize_fields=CART_SIZE,
    make_variables=lambda rng: {"items": _cart(rng)},
    paths=lambda data: [("cartRecommendations",)],
    build=_build_cart,
)
CART_FIELDS = Workload(
    name="cart-fields",
    description=f"the same {CART_SIZE} items as {CART_SIZE} related fields of {SHOWN}",
    query=FIELDS_QUERY,
    personalize_fields=CART_SIZE,
    make_variables=lambda rng: {
        "representations": [{"__typename": "Item", "id": i} for i in _cart(rng)]
    },
    paths=lambda data: [("_entities", k, "related") for k in range(len(data["_entities"]))],
    build=_build_fields,
)


def _side(cell: Any) -> str:
    return (
        f"{cell.calls_per_query:.2f} calls/q, CPU {cell.cpu_ms_per_query:.2f} ms/q, "
        f"p50-d {cell.overhead_ms(0.5):.1f} ms, p99-d {cell.overhead_ms(0.99):.1f} ms"
        + (f", {sum(cell.errors.values())} errors" if cell.errors else "")
    )


def summary(comparison: PageComparison, c: int) -> list[str]:
    """The lines the bench prints for the cart workload (INFO: read, not gated on)."""
    cart = comparison.side("service", CART.name)
    fields = comparison.side("service", CART_FIELDS.name)
    bare = comparison.side("bare", "home")
    return [
        f"cart at c={c}, {len(comparison.rounds)} rotating rounds pooled, a cart of "
        f"{CART_SIZE} as one fused cartRecommendations of {SHOWN} vs {CART_SIZE} related "
        f"fields of {SHOWN} vs the bare server's home: cart {cart.queries:,} q: {_side(cart)} "
        f"| fields {fields.queries:,} q: {_side(fields)} | bare {bare.queries:,} q: "
        f"{_side(bare)}. Cart/fields CPU {cart.cpu_ms_per_query / fields.cpu_ms_per_query:.2f}x"
        f", p99 {cart.overhead_ms(0.99) - fields.overhead_ms(0.99):+.2f} ms"
    ]


def round_line(done: PageRound, c: int, rounds: int) -> str:
    return progress_line("cart", done, c, rounds, calls=True)


def cells_json(comparison: PageComparison | None) -> list[dict[str, Any]]:
    """Under `cart_cells`."""
    return pooled_cells(
        comparison, (("service", CART.name), ("service", CART_FIELDS.name), ("bare", "home"))
    )
