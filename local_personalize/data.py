"""Personalize-shaped datasets and a seeded generator for the demo shop.

The containers mirror Personalize's three dataset types: an Items table and a Users
table with typed columns, and an Interactions dataset (USER_ID, ITEM_ID, TIMESTAMP,
EVENT_TYPE) held as parallel numpy arrays sorted by user then time, so a user's
history is one contiguous slice.

The generator draws interactions from latent tastes (category preferences, favourite
brands, a latent factor vector) plus a browsing chain in which the next view is often
a neighbour of the previous one. That gives the data the two signals real shops have
— who the user is and what they just looked at — so a personalised model measurably
beats popularity, while popularity still matters (item appeal is long-tailed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

ColumnKind = Literal["categorical", "numeric", "text"]

EVENT_TYPES: tuple[str, ...] = ("View", "AddToCart", "Purchase")

# A fixed "now" keeps generated timestamps identical across runs and machines.
_DEMO_EPOCH_END = 1_780_000_000
_DAY = 86_400


@dataclass(frozen=True, eq=False)
class Column:
    """One typed column of a metadata table.

    ``strings`` is the value as Personalize would return it in ``metadata``; categorical
    columns also carry integer ``codes`` into ``vocabulary`` and numeric columns carry
    ``numbers`` so filters compare arrays instead of strings.
    """

    name: str
    kind: ColumnKind
    strings: tuple[str, ...]
    numbers: NDArray[np.float64] | None = None
    codes: NDArray[np.int32] | None = None
    vocabulary: tuple[str, ...] = ()
    code_of: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def categorical(cls, name: str, values: Sequence[str]) -> Column:
        vocabulary = tuple(sorted(set(values)))
        code_of = {value: code for code, value in enumerate(vocabulary)}
        codes = np.fromiter((code_of[v] for v in values), dtype=np.int32, count=len(values))
        return cls(name, "categorical", tuple(values), None, codes, vocabulary, code_of)

    @classmethod
    def numeric(cls, name: str, values: NDArray[np.float64], *, integer: bool = False) -> Column:
        numbers = np.asarray(values, dtype=np.float64)
        # NaN marks a missing value (a null in a Personalize CSV); it reads back as "".
        strings = tuple(
            "" if v != v else str(int(v)) if integer else f"{v:.2f}" for v in numbers.tolist()
        )
        return cls(name, "numeric", strings, numbers)

    @classmethod
    def text(cls, name: str, values: Sequence[str]) -> Column:
        return cls(name, "text", tuple(values))


@dataclass(frozen=True, eq=False)
class Table:
    """A Personalize Items or Users dataset: one row per id, columns by upper-case name."""

    id_column: str
    ids: tuple[str, ...]
    columns: Mapping[str, Column]
    index: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, id_column: str, ids: Sequence[str], columns: Iterable[Column]) -> Table:
        cols = {c.name: c for c in columns}
        for col in cols.values():
            if len(col.strings) != len(ids):
                raise ValueError(f"column {col.name} has {len(col.strings)} rows, want {len(ids)}")
        return cls(id_column, tuple(ids), cols, {id_: i for i, id_ in enumerate(ids)})

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, eq=False)
class Interactions:
    """The Interactions dataset as parallel arrays, sorted by (user, timestamp).

    ``user`` indexes ``user_ids``; ``item`` indexes the Items table of the enclosing
    dataset; ``event`` indexes ``event_types``. ``offsets[u]:offsets[u + 1]`` is user
    ``u``'s history, oldest first.
    """

    user_ids: tuple[str, ...]
    user: NDArray[np.int32]
    item: NDArray[np.int32]
    timestamp: NDArray[np.int64]
    event: NDArray[np.int8]
    event_types: tuple[str, ...]
    offsets: NDArray[np.int64]
    user_index: Mapping[str, int]
    extra: Mapping[str, NDArray[Any]] = field(default_factory=dict)
    """Optional columns in the same row order: EVENT_VALUE (float64) and context fields."""

    @classmethod
    def build(
        cls,
        user_ids: Sequence[str],
        user: NDArray[np.int32],
        item: NDArray[np.int32],
        timestamp: NDArray[np.int64],
        event: NDArray[np.int8],
        event_types: Sequence[str],
        extra: Mapping[str, NDArray[Any]] | None = None,
    ) -> Interactions:
        # A stable sort keeps same-second events in file order.
        order = np.lexsort((timestamp, user))
        user = np.ascontiguousarray(user[order], dtype=np.int32)
        counts = np.bincount(user, minlength=len(user_ids))
        offsets = np.zeros(len(user_ids) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return cls(
            tuple(user_ids),
            user,
            np.ascontiguousarray(item[order], dtype=np.int32),
            np.ascontiguousarray(timestamp[order], dtype=np.int64),
            np.ascontiguousarray(event[order], dtype=np.int8),
            tuple(event_types),
            offsets,
            {u: i for i, u in enumerate(user_ids)},
            {name: values[order] for name, values in (extra or {}).items()},
        )

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def history(self, user: int) -> slice:
        """The slice of the arrays holding ``user``'s events, oldest first."""
        return slice(int(self.offsets[user]), int(self.offsets[user + 1]))

    def select(self, keep: NDArray[np.bool_]) -> Interactions:
        """A copy holding only the rows where ``keep`` is true (same users, same order)."""
        return Interactions.build(
            self.user_ids,
            self.user[keep],
            self.item[keep],
            self.timestamp[keep],
            self.event[keep],
            self.event_types,
            {name: values[keep] for name, values in self.extra.items()},
        )


@dataclass(frozen=True, eq=False)
class UserHistory:
    """One user's events, oldest first, when real-time events (PutEvents) joined them.

    ``items`` index the Items table (-1: an item the Items table does not have, kept so
    it still counts among the user's latest events); ``events`` are codes into
    ``type_code``, which maps lower-cased event type names (event types compare
    case-insensitively, as in filters); ``values`` are EVENT_VALUE (NaN when none).
    """

    items: NDArray[np.int64]
    events: NDArray[np.int64]
    timestamps: NDArray[np.int64]
    values: NDArray[np.float64]
    type_code: Mapping[str, int]

    def __len__(self) -> int:
        return int(self.items.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """A dataset group: items, users and their interactions."""

    items: Table
    users: Table
    interactions: Interactions

    def with_interactions(self, interactions: Interactions) -> Dataset:
        return Dataset(self.items, self.users, interactions)


# --- the demo shop -------------------------------------------------------------------

# category -> (typical price, product nouns); lower-case names so filter values read
# like the Personalize docs' examples ("shoes", "bags").
_CATEGORIES: dict[str, tuple[float, tuple[str, ...]]] = {
    "tops": (30.0, ("Crew T-Shirt", "Hoodie", "Knit Sweater", "Polo Shirt", "Oxford Shirt")),
    "outerwear": (120.0, ("Rain Jacket", "Puffer Coat", "Fleece Jacket", "Denim Jacket", "Parka")),
    "shoes": (90.0, ("Running Shoe", "Leather Boot", "Canvas Sneaker", "Loafer", "Sandal")),
    "bags": (70.0, ("Backpack", "Tote Bag", "Messenger Bag", "Duffel Bag", "Crossbody Bag")),
    "accessories": (25.0, ("Scarf", "Beanie", "Leather Belt", "Sunglasses", "Wallet")),
    "jewelry": (80.0, ("Pendant Necklace", "Bracelet", "Ring", "Stud Earrings", "Watch")),
    "electronics": (
        100.0,
        ("Wireless Earbuds", "Bluetooth Speaker", "Smartwatch", "Power Bank", "Headphones"),
    ),
    "home_decor": (40.0, ("Throw Pillow", "Table Lamp", "Wall Clock", "Ceramic Vase", "Candle")),
    "kitchen": (45.0, ("Chef Knife", "Frying Pan", "French Press", "Mixing Bowls", "Kettle")),
    "beauty": (20.0, ("Face Cream", "Lip Balm", "Shampoo", "Eau de Parfum", "Serum")),
    "sports": (35.0, ("Yoga Mat", "Dumbbell Set", "Water Bottle", "Tennis Racket", "Bike Gloves")),
    "toys": (25.0, ("Jigsaw Puzzle", "Building Blocks", "Plush Bear", "Board Game", "Kite")),
}

_BRANDS: tuple[str, ...] = (
    "Northwind", "Bluefin", "Cedar & Co", "Driftwood", "Everpeak", "Foxglove", "Granite",
    "Harbor", "Ironbark", "Juniper", "Kestrel", "Lumen", "Maple Row", "Nimbus", "Oakline",
    "Pinecrest", "Quarry", "Redwood", "Saltmarsh", "Tidewater", "Umber", "Vantage", "Willow",
    "Yarrow", "Zephyr", "Aster", "Birchwood", "Cobalt", "Dune", "Ember", "Fjord", "Glacier",
    "Heron", "Indigo", "Jasper", "Kelp", "Larkspur", "Meridian", "Nova", "Orchard",
)  # fmt: skip

_STYLES: tuple[str, ...] = (
    "Classic", "Everyday", "Premium", "Organic Cotton", "Recycled", "Slim", "Compact",
    "Vintage", "Ultralight", "Deluxe", "Essential", "Heritage",
)  # fmt: skip

_AGE_GROUPS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55+")
_COUNTRIES: tuple[str, ...] = ("US", "GB", "DE", "FR", "JP", "BR", "CA", "AU")


def _ids(prefix: str, n: int) -> tuple[str, ...]:
    width = max(4, len(str(n)))
    return tuple(f"{prefix}-{i:0{width}d}" for i in range(1, n + 1))


def generate_demo_dataset(
    seed: int = 7,
    *,
    n_items: int = 2_000,
    n_users: int = 5_000,
    mean_views: float = 34.0,
) -> Dataset:
    """Generate the demo shop deterministically from ``seed`` (about 200k events by default)."""
    rng = np.random.default_rng(seed)
    categories = tuple(_CATEGORIES)
    n_cat, n_brand, dim = len(categories), len(_BRANDS), 8

    # Items: each brand sells in three categories, so brand taste cuts across categories.
    brand_cats = np.stack([rng.choice(n_cat, size=3, replace=False) for _ in range(n_brand)])
    cat_share = rng.dirichlet(np.full(n_cat, 4.0))
    item_cat = rng.choice(n_cat, size=n_items, p=cat_share)
    item_brand = np.empty(n_items, dtype=np.int64)
    for c in range(n_cat):
        sellers = np.flatnonzero((brand_cats == c).any(axis=1))
        if sellers.size == 0:
            sellers = np.arange(n_brand)
        members = np.flatnonzero(item_cat == c)
        item_brand[members] = rng.choice(sellers, size=members.size)
    cat_centre = rng.normal(size=(n_cat, dim))
    item_vec = cat_centre[item_cat] * 0.8 + rng.normal(scale=0.7, size=(n_items, dim))
    item_vec /= np.linalg.norm(item_vec, axis=1, keepdims=True)
    appeal = rng.normal(scale=1.0, size=n_items)  # long-tailed popularity on a log scale
    base_price = np.array([_CATEGORIES[c][0] for c in categories])
    price = np.round(base_price[item_cat] * rng.lognormal(0.0, 0.45, size=n_items)) - 0.01
    price = np.maximum(price, 0.99)
    created = _DEMO_EPOCH_END - rng.integers(30 * _DAY, 720 * _DAY, size=n_items)
    style = rng.integers(0, len(_STYLES), size=n_items)
    noun = rng.integers(0, 5, size=n_items)
    titles = [
        f"{_BRANDS[b]} {_STYLES[s]} {_CATEGORIES[categories[c]][1][k]}"
        for b, s, c, k in zip(
            item_brand.tolist(), style.tolist(), item_cat.tolist(), noun.tolist(), strict=True
        )
    ]
    item_ids = _ids("item", n_items)
    items = Table.build(
        "ITEM_ID",
        item_ids,
        [
            Column.categorical("CATEGORY", [categories[c] for c in item_cat.tolist()]),
            Column.categorical("BRAND", [_BRANDS[b] for b in item_brand.tolist()]),
            Column.numeric("PRICE", price),
            Column.text("TITLE", titles),
            Column.numeric("CREATION_TIMESTAMP", created.astype(np.float64), integer=True),
        ],
    )

    # Users: a few favourite categories, a few favourite brands, a latent vector near
    # the centre of their favourite categories.
    cat_pref = rng.dirichlet(np.full(n_cat, 0.25), size=n_users)
    fav_brand = rng.random((n_users, n_brand)) < 3.0 / n_brand
    user_vec = cat_pref @ cat_centre + rng.normal(scale=0.6, size=(n_users, dim))
    user_vec /= np.linalg.norm(user_vec, axis=1, keepdims=True)
    user_ids = _ids("user", n_users)
    users = Table.build(
        "USER_ID",
        user_ids,
        [
            Column.categorical(
                "AGE_GROUP", [_AGE_GROUPS[a] for a in rng.integers(0, 5, n_users).tolist()]
            ),
            Column.categorical(
                "COUNTRY", [_COUNTRIES[c] for c in rng.integers(0, 8, n_users).tolist()]
            ),
        ],
    )

    # Taste: one probability row per user over the catalogue, sampled by inverse CDF
    # on a single flattened array (row u lives in [u, u + 1)).
    logits = (
        1.2 * np.log(cat_pref[:, item_cat] + 0.02)
        + 1.0 * fav_brand[:, item_brand]
        + 2.0 * (user_vec @ item_vec.T)
        + 0.8 * appeal[None, :]
    )
    logits -= logits.max(axis=1, keepdims=True)
    cdf = np.cumsum(np.exp(logits), axis=1)
    cdf /= cdf[:, -1:]
    flat_cdf = (cdf + np.arange(n_users)[:, None]).ravel()

    # Browsing chain: the next view is often one of the ten items most like the last one.
    sim = item_vec @ item_vec.T
    np.fill_diagonal(sim, -np.inf)
    neighbours = np.argpartition(-sim, 10, axis=1)[:, :10]

    length = np.clip(
        np.rint(rng.lognormal(np.log(mean_views) - 0.32, 0.8, n_users)), 3, 400
    ).astype(np.int64)
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(length, out=offsets[1:])
    n_views = int(offsets[-1])
    view_user = np.repeat(np.arange(n_users), length)
    fresh = np.searchsorted(flat_cdf, view_user + rng.random(n_views), side="right")
    fresh = np.minimum(fresh - view_user * n_items, n_items - 1)
    follow = rng.random(n_views) < 0.55
    pick = rng.integers(0, 10, n_views)
    view_item = fresh.copy()
    for t in range(1, int(length.max())):
        active = np.flatnonzero(length > t)
        idx = offsets[active] + t
        chained = idx[follow[idx]]
        view_item[chained] = neighbours[view_item[chained - 1], pick[chained]]

    # Time: sessions of minutes, separated by days; each user's history ends within
    # the last month before the fixed epoch.
    new_session = rng.random(n_views) < 0.2
    gaps = np.where(
        new_session, rng.exponential(2.0 * _DAY, n_views), rng.exponential(180.0, n_views)
    ).astype(np.int64)
    gaps[offsets[:-1]] = 0
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[offsets[:-1]], length)
    end = _DEMO_EPOCH_END - rng.integers(0, 30 * _DAY, n_users)
    view_ts = np.repeat(end - elapsed[offsets[1:] - 1], length) + elapsed

    # Funnel: some views become carts, some carts become purchases, a little later.
    to_cart = rng.random(n_views) < 0.15
    cart_rows = np.flatnonzero(to_cart)
    cart_ts = view_ts[cart_rows] + rng.integers(20, 300, cart_rows.size)
    buy = rng.random(cart_rows.size) < 0.4
    buy_rows = cart_rows[buy]
    buy_ts = cart_ts[buy] + rng.integers(60, 900, buy_rows.size)

    user = np.concatenate([view_user, view_user[cart_rows], view_user[buy_rows]])
    item = np.concatenate([view_item, view_item[cart_rows], view_item[buy_rows]])
    ts = np.concatenate([view_ts, cart_ts, buy_ts])
    event = np.concatenate(
        [
            np.zeros(n_views, dtype=np.int8),
            np.ones(cart_rows.size, dtype=np.int8),
            np.full(buy_rows.size, 2, dtype=np.int8),
        ]
    )
    interactions = Interactions.build(
        user_ids,
        user.astype(np.int32),
        item.astype(np.int32),
        ts.astype(np.int64),
        event,
        EVENT_TYPES,
    )
    return Dataset(items, users, interactions)


def generate_synthetic_dataset(
    seed: int = 7,
    *,
    n_items: int = 20_000,
    n_users: int = 10_000,
    mean_events: float = 15.0,
) -> Dataset:
    """A large catalogue in linear time and memory, for benchmarks at 100k+ items.

    ``generate_demo_dataset`` builds a dense users x items taste matrix, which cannot
    scale; here tastes are clusters of ~50 items (users favour three clusters, items
    have Zipf-like appeal inside a cluster) and a browsing chain stays in the previous
    item's cluster, so neighbourhood models still have signal to find. The columns match
    the demo's (CATEGORY, BRAND, PRICE, TITLE, CREATION_TIMESTAMP), so the demo's
    resources and filters apply unchanged.
    """
    rng = np.random.default_rng(seed)
    categories = tuple(_CATEGORIES)
    n_clusters = max(1, n_items // 50)
    item_cluster = np.sort(rng.integers(0, n_clusters, n_items))
    starts = np.searchsorted(item_cluster, np.arange(n_clusters + 1))
    sizes = np.diff(starts)
    cluster_cat = rng.integers(0, len(categories), n_clusters)
    item_cat = cluster_cat[item_cluster]
    price = np.maximum(np.round(rng.lognormal(3.5, 0.8, n_items)) - 0.01, 0.99)
    brand = rng.integers(0, len(_BRANDS), n_items)
    created = _DEMO_EPOCH_END - rng.integers(30 * _DAY, 720 * _DAY, n_items)
    items = Table.build(
        "ITEM_ID",
        _ids("item", n_items),
        [
            Column.categorical("CATEGORY", [categories[c] for c in item_cat.tolist()]),
            Column.categorical("BRAND", [_BRANDS[b] for b in brand.tolist()]),
            Column.numeric("PRICE", price),
            Column.text("TITLE", [f"Item {i}" for i in range(n_items)]),
            Column.numeric("CREATION_TIMESTAMP", created.astype(np.float64), integer=True),
        ],
    )
    user_ids = _ids("user", n_users)
    users = Table.build(
        "USER_ID",
        user_ids,
        [
            Column.categorical(
                "COUNTRY", [_COUNTRIES[c] for c in rng.integers(0, 8, n_users).tolist()]
            )
        ],
    )

    length = np.clip(rng.geometric(1.0 / mean_events, n_users), 2, 500).astype(np.int64)
    n = int(length.sum())
    user = np.repeat(np.arange(n_users), length)
    favourites = rng.integers(0, n_clusters, (n_users, 3))
    # Global popularity: a Zipf-like law over a random permutation of the catalogue.
    pop_cdf = np.cumsum(1.0 / np.arange(1, n_items + 1) ** 0.9)
    pop_cdf /= pop_cdf[-1]
    popular = rng.permutation(n_items)[
        np.minimum(np.searchsorted(pop_cdf, rng.random(n)), n_items - 1)
    ]
    cluster = favourites[user, rng.integers(0, 3, n)]
    # Inside a cluster, the square of a uniform favours its first items (skewed appeal).
    in_cluster = starts[cluster] + (rng.random(n) ** 2 * sizes[cluster]).astype(np.int64)
    in_cluster = np.minimum(in_cluster, n_items - 1)
    item = np.where(rng.random(n) < 0.75, in_cluster, popular)
    # Browsing chain: a third of events stay in the previous event's cluster.
    first = np.zeros(n, dtype=bool)
    first[np.cumsum(length)[:-1]] = True
    first[0] = True
    chain = (rng.random(n) < 0.33) & ~first
    prev_cluster = np.roll(item_cluster[item], 1)
    chained = starts[prev_cluster] + (rng.random(n) * sizes[prev_cluster]).astype(np.int64)
    item = np.where(chain, np.minimum(chained, n_items - 1), item)
    end = _DEMO_EPOCH_END - rng.integers(0, 30 * _DAY, n_users)
    gaps = rng.exponential(_DAY / 2, n).astype(np.int64)
    ts = np.repeat(end, length) - gaps  # order within a user does not matter for speed
    event = (rng.random(n) < 0.1).astype(np.int8) * 2  # about 10% purchases
    return Dataset(
        items,
        users,
        Interactions.build(
            user_ids,
            user.astype(np.int32),
            item.astype(np.int32),
            ts.astype(np.int64),
            event,
            EVENT_TYPES,
        ),
    )
