"""The Personalize resources the engine serves: campaigns, recommenders, filters, trackers.

ARNs use region us-east-1 and account 000000000000 so they look like real ones and pass
the service model's ARN pattern. The subgraph's demo configuration references exactly
these names. ``load_resources`` reads the same declarations, plus where the datasets
come from, from a TOML resources file (format in ``local_personalize/README.md``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from .data import Dataset, generate_demo_dataset
from .filters import FilterSyntaxError, parse_filter

REGION = "us-east-1"
ACCOUNT = "000000000000"
ARN_PREFIX = f"arn:aws:personalize:{REGION}:{ACCOUNT}:"


class Recipe(StrEnum):
    """The model family behind a campaign or recommender."""

    USER_PERSONALIZATION = "user-personalization"
    POPULARITY = "popularity-count"
    SIMS = "sims"
    PERSONALIZED_RANKING = "personalized-ranking"
    TRENDING_NOW = "trending-now"
    CUSTOMERS_WHO_VIEWED = "customers-who-viewed"
    """Directed co-views on View events (``domain_recipes.CustomersWhoViewed``)."""


@dataclass(frozen=True)
class RecipeSpec:
    """What a Personalize recipe name means here: the model and its fixed inputs."""

    recipe: Recipe
    event_types: tuple[str, ...] | None = None
    requires_user: bool = False
    requires_item: bool = False
    excluded_event_types: tuple[str, ...] = ()
    """The use case's automatic filter (see ``Deployment.excluded_event_types``)."""


_UP = RecipeSpec(Recipe.USER_PERSONALIZATION, requires_user=True)
_SIMS = RecipeSpec(Recipe.SIMS, requires_item=True)
_POP = RecipeSpec(Recipe.POPULARITY)
_TREND = RecipeSpec(Recipe.TRENDING_NOW)

RECIPES: Mapping[str, RecipeSpec] = {
    # Custom recipes (campaigns).
    "aws-user-personalization": _UP,
    "aws-user-personalization-v2": _UP,
    "aws-sims": _SIMS,
    "aws-similar-items": _SIMS,
    "aws-popularity-count": _POP,
    "aws-trending-now": _TREND,
    "aws-personalized-ranking": RecipeSpec(Recipe.PERSONALIZED_RANKING, requires_user=True),
    "aws-personalized-ranking-v2": RecipeSpec(Recipe.PERSONALIZED_RANKING, requires_user=True),
    # E-commerce domain recipes (recommenders).
    # Both leave out what the user purchased, as Personalize documents for these two.
    "aws-ecomm-recommended-for-you": RecipeSpec(
        Recipe.USER_PERSONALIZATION, requires_user=True, excluded_event_types=("Purchase",)
    ),
    "aws-ecomm-customers-who-viewed-x-also-viewed": RecipeSpec(
        Recipe.CUSTOMERS_WHO_VIEWED,
        ("View",),
        requires_user=True,
        requires_item=True,
        excluded_event_types=("Purchase",),
    ),
    "aws-ecomm-frequently-bought-together": _SIMS,
    "aws-ecomm-popular-items-by-purchases": RecipeSpec(Recipe.POPULARITY, ("Purchase",)),
    "aws-ecomm-popular-items-by-views": RecipeSpec(Recipe.POPULARITY, ("View",)),
    # Video-on-demand domain recipes (recommenders).
    "aws-vod-top-picks": _UP,
    "aws-vod-because-you-watched-x": _SIMS,
    "aws-vod-more-like-x": _SIMS,
    "aws-vod-most-popular": _POP,
    "aws-vod-trending-now": _TREND,
}
"""Personalize recipe names (with or without the ``arn:aws:personalize:::recipe/`` prefix)."""


def recipe_spec(name: str) -> RecipeSpec:
    """The spec for a recipe name or recipe ARN; ValueError names the known ones."""
    short = name.rsplit("/", 1)[-1] if name.startswith("arn:") else name
    spec = RECIPES.get(short)
    if spec is None:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}")
    return spec


ResourceKind = Literal["campaign", "recommender"]


@dataclass(frozen=True)
class Deployment:
    """A campaign or recommender: which recipe answers it and which inputs it needs."""

    name: str
    kind: ResourceKind
    recipe: Recipe
    requires_user: bool = False
    requires_item: bool = False
    event_types: tuple[str, ...] | None = None
    """For popularity and customers-who-viewed: the event types counted (None = all)."""
    excluded_event_types: tuple[str, ...] = ()
    """The domain use case's automatic filter: items the user has events of these types
    with (the latest 100 per type, real-time events included) are never recommended,
    before any filter the caller gives."""
    hyperparameters: tuple[tuple[str, str], ...] = ()
    """Sorted (name, value) pairs, strings as in Personalize's solution config."""
    arn_prefix: str = ARN_PREFIX
    """Region and account part of the ARN; only files naming other accounts change it."""

    @property
    def arn(self) -> str:
        return f"{self.arn_prefix}{self.kind}/{self.name}"

    def hyperparameter(self, name: str, default: float) -> float:
        """A numeric hyperparameter, or ``default`` when not set."""
        for key, value in self.hyperparameters:
            if key == name:
                return float(value)
        return default


@dataclass(frozen=True)
class FilterDefinition:
    """A filter resource: a name and its expression in Personalize's filter language."""

    name: str
    expression: str
    arn_prefix: str = ARN_PREFIX

    @property
    def arn(self) -> str:
        return f"{self.arn_prefix}filter/{self.name}"


DEMO_TRACKING_ID = "5e1f7c2a-9d34-4b8e-a6c0-3f2d1e0b9a87"
"""The demo event tracker's tracking id (PutEvents ``trackingId``); fixed so configs can name it."""


@dataclass(frozen=True)
class EventTracker:
    """An event tracker: PutEvents calls carrying its ``tracking_id`` are recorded."""

    tracking_id: str
    name: str = "events"


DEMO_EVENT_TRACKER = EventTracker(DEMO_TRACKING_ID, "demo-events")


@dataclass(frozen=True)
class Resources:
    """Everything one engine serves."""

    deployments: tuple[Deployment, ...]
    filters: tuple[FilterDefinition, ...]
    event_trackers: tuple[EventTracker, ...] = (DEMO_EVENT_TRACKER,)
    """Trackers whose PutEvents are accepted; the demo's unless others are declared."""


DEMO_RESOURCES = Resources(
    deployments=(
        Deployment(
            "recommended-for-you",
            "recommender",
            Recipe.USER_PERSONALIZATION,
            requires_user=True,
            excluded_event_types=("Purchase",),
        ),
        Deployment("best-sellers", "recommender", Recipe.POPULARITY, event_types=("Purchase",)),
        Deployment("most-viewed", "recommender", Recipe.POPULARITY, event_types=("View",)),
        Deployment(
            "customers-who-viewed-x",
            "recommender",
            Recipe.CUSTOMERS_WHO_VIEWED,
            requires_user=True,
            requires_item=True,
            event_types=("View",),
            excluded_event_types=("Purchase",),
        ),
        Deployment(
            "user-personalization", "campaign", Recipe.USER_PERSONALIZATION, requires_user=True
        ),
        Deployment("sims", "campaign", Recipe.SIMS, requires_item=True),
        Deployment("popularity", "campaign", Recipe.POPULARITY),
        Deployment(
            "personalized-ranking", "campaign", Recipe.PERSONALIZED_RANKING, requires_user=True
        ),
    ),
    filters=(
        FilterDefinition(
            "exclude-purchased", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Purchase")'
        ),
        FilterDefinition("by-category", "INCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORY)"),
        FilterDefinition("max-price", "INCLUDE ItemID WHERE Items.PRICE <= $MAX_PRICE"),
    ),
    event_trackers=(DEMO_EVENT_TRACKER,),
)


# --- resources files -------------------------------------------------------------------


class ResourcesFileError(ValueError):
    """A resources file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset group comes from: the seeded demo shop, or Personalize CSV files.

    ``files`` maps ``interactions``/``items``/``users`` to (csv path, schema path).
    """

    demo_seed: int | None = 7
    files: Mapping[str, tuple[Path, Path]] = field(default_factory=dict)

    def load(self) -> Dataset:
        if self.demo_seed is not None:
            return generate_demo_dataset(self.demo_seed)
        # Imported here: datasets.py is only needed when files are declared.
        from .datasets import load_dataset

        return load_dataset(
            self.files["interactions"],
            items=self.files.get("items"),
            users=self.files.get("users"),
        ).dataset


@dataclass(frozen=True)
class ResourcesFile:
    """A parsed resources file: the dataset source and the resources served on it."""

    path: Path
    dataset: DatasetSource
    resources: Resources


def load_resources(path: str | Path) -> ResourcesFile:
    """Parse a TOML resources file; relative dataset paths are relative to the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResourcesFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ResourcesFileError(f"{path}: not UTF-8 text: {exc.reason}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ResourcesFileError(f"{path}: {exc}") from None
    where = str(path)
    deployments: list[Deployment] = []
    for kind in ("recommender", "campaign"):
        section = f"{kind}s"
        for i, entry in enumerate(_tables(doc, section, where)):
            deployments.append(_deployment(entry, kind, f"{where}: [[{section}]] #{i + 1}"))
    filters = [
        _filter(entry, f"{where}: [[filters]] #{i + 1}")
        for i, entry in enumerate(_tables(doc, "filters", where))
    ]
    arns = [d.arn for d in deployments] + [f.arn for f in filters]
    duplicates = sorted({a for a in arns if arns.count(a) > 1})
    if duplicates:
        raise ResourcesFileError(f"{where}: ARN declared twice: {', '.join(duplicates)}")
    if not deployments:
        raise ResourcesFileError(f"{where}: declares no [[campaigns]] or [[recommenders]]")
    trackers = tuple(
        _event_tracker(entry, f"{where}: [[event_trackers]] #{i + 1}")
        for i, entry in enumerate(_tables(doc, "event_trackers", where))
    )
    ids = [t.tracking_id for t in trackers]
    repeated = sorted({t for t in ids if ids.count(t) > 1})
    if repeated:
        raise ResourcesFileError(f"{where}: tracking_id declared twice: {', '.join(repeated)}")
    unknown = set(doc) - {"datasets", "campaigns", "recommenders", "filters", "event_trackers"}
    if unknown:
        raise ResourcesFileError(f"{where}: unknown sections {', '.join(sorted(unknown))}")
    return ResourcesFile(
        path,
        _dataset_source(doc.get("datasets", {"demo": True}), path.parent, where),
        # No [[event_trackers]]: the demo tracker, so events work out of the box.
        Resources(tuple(deployments), tuple(filters), trackers or (DEMO_EVENT_TRACKER,)),
    )


def _tables(doc: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ResourcesFileError(f"{where}: {key} must be an array of tables ([[{key}]])")
    return value


def _name_and_prefix(entry: Mapping[str, Any], kind: str, where: str) -> tuple[str, str]:
    arn = entry.get("arn")
    name = entry.get("name")
    if arn is None:
        if not isinstance(name, str) or not name:
            raise ResourcesFileError(f"{where}: needs an arn or a name")
        return name, ARN_PREFIX
    marker = f":{kind}/"
    if not isinstance(arn, str) or not arn.startswith("arn:aws:personalize:") or marker not in arn:
        raise ResourcesFileError(f"{where}: arn {arn!r} is not a Personalize {kind} ARN")
    prefix, _, arn_name = arn.partition(marker)
    if not arn_name or (name is not None and name != arn_name):
        raise ResourcesFileError(f"{where}: arn {arn!r} and name {name!r} disagree")
    return arn_name, prefix + ":"


def _deployment(entry: Mapping[str, Any], kind: ResourceKind, where: str) -> Deployment:
    name, prefix = _name_and_prefix(entry, kind, where)
    try:
        spec = recipe_spec(str(entry.get("recipe", "")))
    except ValueError as exc:
        raise ResourcesFileError(f"{where}: {exc}") from None
    raw = entry.get("hyperparameters", {})
    if not isinstance(raw, dict):
        raise ResourcesFileError(f"{where}: hyperparameters must be a table")
    hyper = {str(k): str(v) for k, v in raw.items()}
    event_types = spec.event_types
    # Personalize's solution config names one eventType to train on; accept it here.
    if "event_type" in hyper:
        event_types = (hyper.pop("event_type"),)
    return Deployment(
        name,
        kind,
        spec.recipe,
        requires_user=spec.requires_user,
        requires_item=spec.requires_item,
        event_types=event_types,
        excluded_event_types=spec.excluded_event_types,
        hyperparameters=tuple(sorted(hyper.items())),
        arn_prefix=prefix,
    )


def _filter(entry: Mapping[str, Any], where: str) -> FilterDefinition:
    name, prefix = _name_and_prefix(entry, "filter", where)
    expression = entry.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise ResourcesFileError(f"{where}: needs an expression")
    # Parsed now so a typo is named by its file and entry; the fields it names are
    # checked against the dataset when the engine is built.
    try:
        parse_filter(expression)
    except FilterSyntaxError as exc:
        raise ResourcesFileError(f"{where}: expression: {exc}") from None
    return FilterDefinition(name, expression, prefix)


def _event_tracker(entry: Mapping[str, Any], where: str) -> EventTracker:
    tracking_id = entry.get("tracking_id")
    if not isinstance(tracking_id, str) or not 1 <= len(tracking_id) <= 256:
        raise ResourcesFileError(f"{where}: needs a tracking_id of 1 to 256 characters")
    name = entry.get("name", "events")
    if not isinstance(name, str) or not name:
        raise ResourcesFileError(f"{where}: name must be a non-empty string")
    unknown = set(entry) - {"tracking_id", "name"}
    if unknown:
        raise ResourcesFileError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    return EventTracker(tracking_id, name)


def _dataset_source(spec: Any, base: Path, where: str) -> DatasetSource:
    if not isinstance(spec, dict):
        raise ResourcesFileError(f"{where}: [datasets] must be a table")
    if spec.get("demo", False):
        seed = spec.get("seed", 7)
        if not isinstance(seed, int):
            raise ResourcesFileError(f"{where}: [datasets] seed must be an integer")
        return DatasetSource(demo_seed=seed)
    files: dict[str, tuple[Path, Path]] = {}
    for kind in ("interactions", "items", "users"):
        entry = spec.get(kind)
        if entry is None:
            continue
        if not isinstance(entry, dict) or not {"path", "schema"} <= set(entry):
            raise ResourcesFileError(f"{where}: [datasets.{kind}] needs path and schema")
        files[kind] = (base / str(entry["path"]), base / str(entry["schema"]))
    if "interactions" not in files:
        raise ResourcesFileError(
            f"{where}: [datasets] needs demo = true or a [datasets.interactions] table"
        )
    return DatasetSource(demo_seed=None, files=files)
