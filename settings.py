"""Typed configuration: one TOML file (named by SUBGRAPH_CONFIG) with environment overrides.

Environment variables win over the file: `SUBGRAPH_BACKEND=personalize`,
`SUBGRAPH_PERSONALIZE__REGION=eu-west-1` (nested keys joined by `__`), and the process
settings under their own names, `WORKERS`, `LOG_LEVEL` and `LOG_FORMAT`. Every problem is
reported at start-up as one line naming the offending key and where it came from (the
file, or the environment variable), never at the first query.
"""

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from domain.errors import ConfigurationError
from domain.request import is_recommender_arn

REPO_ROOT = Path(__file__).resolve().parent
DEMO_CONFIG = REPO_ROOT / "config" / "demo.toml"

# botocore's model: Arn is at most 256 characters of this shape.
_ARN = re.compile(r"arn:([a-z\d-]+):personalize:.*:.*:.+", re.ASCII)
_GRAPHQL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# botocore's model: AttributeName (context keys).
_CONTEXT_KEY = re.compile(r"[A-Za-z\d_]{1,150}", re.ASCII)
# Fields this subgraph defines on the user entity itself.
_USER_FIELDS = frozenset({"recommendations", "rankedItems"})
# botocore's model: FilterAttributeName.
_FILTER_PARAM = re.compile(r"[A-Za-z0-9_]{1,50}")


def strawberry_federation_versions() -> tuple[str, ...]:
    """The `@link` federation versions the installed Strawberry accepts, oldest first.

    Strawberry keeps them in `strawberry.federation.versions.FEDERATION_VERSIONS`, a
    module its package does not export: this is the one place that reads it.
    """
    # Imported here: should Strawberry move it, settings still imports, and
    # tests/unit/test_federation_versions.py says what moved.
    from strawberry.federation.versions import FEDERATION_VERSIONS

    return tuple(FEDERATION_VERSIONS)


def _federation_version(value: object) -> str:
    versions = strawberry_federation_versions()
    if not isinstance(value, str) or value not in versions:
        raise PydanticCustomError(
            "federation_version",
            "must be a version Strawberry supports: {versions} (got {got})",
            {"versions": ", ".join(versions), "got": repr(value)},
        )
    return value


# Strawberry types its `federation_version` parameter with a Literal of its own that has no
# name to import, so no static type here can match it without copying the list: the
# value is a str checked against Strawberry's list, which mypy takes on trust.
FederationVersion = Annotated[Any, BeforeValidator(_federation_version)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServedField(StrEnum):
    """The GraphQL field a use case serves."""

    RECOMMENDATIONS = "recommendations"  # User.recommendations
    RELATED = "related"  # Item.related
    POPULAR_ITEMS = "popularItems"  # Query.popularItems
    RANKED_ITEMS = "rankedItems"  # User.rankedItems


class Input(StrEnum):
    """Which ids a use case sends to Personalize."""

    USER = "user"
    ITEM = "item"
    USER_AND_ITEM = "user_and_item"
    NONE = "none"


# Which inputs make sense on which field: the field supplies the entity's own id.
_ALLOWED_INPUTS: dict[ServedField, set[Input]] = {
    ServedField.RECOMMENDATIONS: {Input.USER},
    ServedField.RELATED: {Input.ITEM, Input.USER_AND_ITEM},
    ServedField.POPULAR_ITEMS: {Input.NONE, Input.USER},
    ServedField.RANKED_ITEMS: {Input.USER},
}


def _check_arn(value: str, kinds: tuple[str, ...]) -> str:
    if len(value) > 256 or not _ARN.fullmatch(value):
        raise ValueError(f"{value!r} is not a Personalize ARN")
    if not any(f":{kind}/" in value for kind in kinds):
        raise ValueError(f"{value!r} must be a {' or '.join(kinds)} ARN")
    return value


_HEADER = re.compile(r"[A-Za-z0-9-]{1,64}")


class ServerSettings(_Section):
    """Where the HTTP server listens, what it exposes and whom it lets in."""

    host: str = "127.0.0.1"
    port: int = Field(default=4001, ge=0, le=65535)
    graphiql: bool = True
    # Off in production: the gateway reads the SDL through `_service`, not introspection.
    introspection: bool = True
    # Browser origins allowed to call /graphql directly; empty sends no CORS headers.
    cors_origins: tuple[str, ...] = ()
    # When set, /graphql answers 401 unless this header carries the secret (the gateway
    # adds it), so clients cannot bypass the gateway. Compared in constant time.
    shared_secret: SecretStr | None = None
    shared_secret_header: str = "x-subgraph-secret"
    # Taken from the caller (the gateway) when present, else generated; echoed back.
    request_id_header: str = "x-request-id"
    # On SIGTERM, requests in flight get this long to finish before connections close.
    shutdown_timeout: int = Field(default=10, ge=0, le=300)
    # The compiled path (schema/compiled/): compiled gateway operations, item lists and
    # direct resolvers. Off, graphql-core and Strawberry answer everything (same data
    # and errors, more CPU and latency).
    compiled_path: bool = True

    @field_validator("shared_secret_header", "request_id_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER.fullmatch(value):
            raise ValueError(f"{value!r} is not an HTTP header name")
        return value.lower()

    @field_validator("shared_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            secret = value.get_secret_value()
            # Header values travel as bytes; printable ASCII compares the same everywhere.
            if len(secret) < 16 or not (secret.isascii() and secret.isprintable()):
                raise ValueError("the shared secret must be at least 16 printable ASCII characters")
        return value


class LimitsSettings(_Section):
    """What one request may cost; anything beyond is refused with a coded error."""

    # Distinct Personalize calls per operation (fallbacks included); the excess fields
    # get OPERATION_TOO_EXPENSIVE and cost nothing.
    max_calls: int = Field(default=100, ge=1, le=10_000)
    # Nesting of selections (introspection's own fields are not counted).
    max_depth: int = Field(default=12, ge=2, le=100)
    max_aliases: int = Field(default=30, ge=0, le=10_000)
    max_tokens: int = Field(default=2_000, ge=100, le=1_000_000)
    # The largest valid request (500 ranked ids of 256 characters and 150 context
    # entries of 1,150) is about 300 KB; 1 MB leaves room for an `_entities` batch.
    max_body_bytes: int = Field(default=1_000_000, ge=1_000, le=100_000_000)
    # A GET's query string. uvicorn's parser refuses a URL over 65,535 bytes (that one is
    # answered with the same 414 by web/uvicorn_internals.py): the app's limit stays below.
    max_query_bytes: int = Field(default=32_768, ge=1_000, le=60_000)
    # Sections of one recommendationPage field (each is at least one call).
    max_page_sections: int = Field(default=10, ge=1, le=100)


class ConnectionSettings(_Section):
    """Deadlines and a cap per process on client connections (web/connections.py)."""

    # Request headers complete within this of the connection opening, or of the first
    # byte of the next request on a keep-alive connection; else 408 and close.
    header_timeout: float = Field(default=5.0, gt=0, le=300)
    # A body may take `body_grace` seconds, then must keep up `body_min_rate` bytes/s on
    # average since its headers; else 408 and close. (Above graphql_http's 5 s drain, so
    # a stalled body over the size limit still gets its 413.)
    body_grace: float = Field(default=10.0, gt=0, le=300)
    body_min_rate: int = Field(default=10_000, ge=1, le=1_000_000_000)
    # An idle keep-alive connection is closed after this (uvicorn's timeout_keep_alive).
    keep_alive_timeout: int = Field(default=5, ge=1, le=3_600)
    # Open connections per process (lowered to fit the file descriptor limit); a
    # connection beyond it gets 503 TOO_MANY_CONNECTIONS and is closed.
    max_connections: int = Field(default=1_000, ge=1, le=1_000_000)


class MemorySettings(_Section):
    """What caches keyed by client text may hold: the parsed documents (schema/compiled/)."""

    # Bytes, estimated from above, that parsed documents may hold in all (least recently
    # used dropped first), and the most one document may hold to be kept at all: a
    # larger one is parsed and validated for its own request, every time.
    documents_bytes: int = Field(default=64 * 1024 * 1024, ge=0, le=64 * 1024**3)
    document_max_bytes: int = Field(default=256 * 1024, ge=0, le=1024**3)


class BreakerSettings(_Section):
    """A circuit breaker per ARN: pause calls after repeated failures, then probe."""

    # Consecutive failed calls (retries spent) that open the breaker; 0 turns it off.
    failures: int = Field(default=5, ge=0, le=1000)
    # How long an open breaker refuses calls before letting one probe through.
    reset_after: float = Field(default=10.0, gt=0, le=3600)


class PersonalizeSettings(_Section):
    """How Amazon Personalize is called: client, region, endpoint, timeouts, retries, concurrency.

    Used when backend = "personalize"; the events client (`events`) shares the region and
    the timeouts.
    """

    region: str = "us-east-1"
    # "direct": each call is one SigV4-signed POST of our own on a keep-alive connection
    # of our own pool (backends/personalize_direct.py, backends/http1.py); "aioboto3":
    # each call goes through an aioboto3 client, the SDK's whole request pipeline
    # (backends/personalize.py). Either way an aioboto3 session resolves the credentials
    # (refreshed when they expire), the region and the endpoint.
    client: Literal["direct", "aioboto3"] = "direct"
    # None lets botocore resolve the endpoint, which honours AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME.
    endpoint_url: str | None = None
    # One attempt gets at most connect + read timeout, which must fit in the deadline;
    # keep it well inside, so that a retry or a fallback still has time after a hung call.
    connect_timeout: float = Field(default=0.5, gt=0, le=30)
    read_timeout: float = Field(default=1.0, gt=0, le=60)
    # Total attempts per call, the first included; retried only for throttling,
    # timeouts and 5xx, with full-jitter backoff, and never past the deadline.
    max_attempts: int = Field(default=2, ge=1, le=10)
    # Every Personalize call of one operation, retries and fallbacks included, ends by then.
    deadline: float = Field(default=3.0, gt=0, le=60)
    backoff_base: float = Field(default=0.05, ge=0, le=10)
    backoff_cap: float = Field(default=0.5, ge=0, le=60)
    # Personalize calls in flight at once in the process (each worker has its own), and
    # the size of the client's connection pool.
    max_concurrency: int = Field(default=64, ge=1, le=1000)

    @model_validator(mode="after")
    def _attempt_fits(self) -> "PersonalizeSettings":
        if self.connect_timeout + self.read_timeout > self.deadline:
            raise ValueError("connect_timeout + read_timeout must not exceed the deadline")
        return self


class FederationSettings(_Section):
    """Entity names, key fields and key scalar, so the graph's owners decide the names."""

    version: FederationVersion = "2.9"
    user_type: str = "User"
    user_key: str = "id"
    user_key_scalar: Literal["ID", "String"] = "ID"
    item_type: str = "Item"
    item_key: str = "id"
    item_key_scalar: Literal["ID", "String"] = "ID"

    # User fields owned by other subgraphs, sent to Personalize as context via @requires:
    # { country = "COUNTRY" } adds `country: String @external` to the user entity.
    user_context_fields: dict[str, str] = Field(default_factory=dict)

    @field_validator("user_context_fields")
    @classmethod
    def _context_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for field, key in value.items():
            if not _GRAPHQL_NAME.fullmatch(field) or field in _USER_FIELDS:
                raise ValueError(f"{field!r} cannot be a user context field")
            if not _CONTEXT_KEY.fullmatch(key):
                raise ValueError(f"context key {key!r} must be 1..150 of [A-Za-z0-9_]")
        return value

    @field_validator("user_type", "user_key", "item_type", "item_key")
    @classmethod
    def _graphql_name(cls, value: str) -> str:
        if not _GRAPHQL_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a GraphQL name")
        return value

    @model_validator(mode="after")
    def _distinct_types(self) -> "FederationSettings":
        if self.user_type == self.item_type:
            raise ValueError("user_type and item_type must differ")
        if self.user_key in self.user_context_fields:
            raise ValueError("the user key cannot also be a context field")
        return self


class ObservabilitySettings(_Section):
    """Traces and readiness; exporters and sampling come from the standard OTEL_* variables."""

    # Keys the hash that stands for user and item ids in spans. Set the same secret on
    # every replica to match one user's spans across them; unset, each process draws a
    # random one (hashes then match within a process only).
    id_salt: SecretStr | None = None
    # How often the Personalize endpoint's reachability is checked (a TCP connect) for
    # /metrics and the logs; /readyz does not depend on it.
    ready_ttl: float = Field(default=5.0, ge=0, le=300)


class PaginationSettings(_Section):
    """Infinite scroll (`after`, `pageInfo`): windows fetched once, paged from the store."""

    # Items a first page asks Personalize for, kept for the later pages; a use case's
    # `page_window` overrides it. At most 500 (50 when the use case returns metadata).
    window: int = Field(default=100, ge=1, le=500)
    # Seconds a window (and its cursors) lives in the cache store.
    ttl: float = Field(default=1800.0, gt=0, le=86_400)
    # Signs cursors (HMAC-SHA256): set the same secret on every replica and worker.
    # Unset, each process draws a random one and another process refuses its cursors.
    secret: SecretStr | None = None


class CartSettings(_Section):
    """cartRecommendations (resolvers/cart.py)."""

    # A rankedItems use case that re-ranks a cart's merged list when a userId is given
    # (one more call); unset, the merged order stands.
    rerank: str | None = None


# Values a Redis key prefix may hold: no spaces or control characters, which would make
# keys awkward to inspect and to delete by pattern.
_KEY_PREFIX = re.compile(r"[!-~]{0,100}")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class CacheSettings(_Section):
    """Where successful answers are kept: this process's memory, or a Redis every replica shares.

    How long each use case keeps them is its own `cache_ttl` and `stale_ttl`.
    """

    # False keeps nothing anywhere (concurrent identical calls are still shared).
    enabled: bool = True
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Each Redis command gets this long, connecting included; past it the lookup is a
    # miss and Personalize answers, so a slow Redis costs a request at most this much.
    redis_timeout: float = Field(default=0.1, gt=0, le=5)
    # The memory backend's bound: least recently used answers go first.
    max_entries: int = Field(default=10_000, ge=1, le=10_000_000)
    # ...and its bound in bytes: requests carry client text (ids, context, filter values).
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=0, le=64 * 1024**3)
    # Every Redis key starts with this; change it to drop every cached answer at once.
    key_prefix: str = "personalize-subgraph:"

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(_REDIS_SCHEMES):
            raise ValueError("the Redis URL must start with redis://, rediss:// or unix://")
        return value

    @field_validator("key_prefix")
    @classmethod
    def _key_prefix(cls, value: str) -> str:
        if not _KEY_PREFIX.fullmatch(value):
            raise ValueError("the key prefix must be at most 100 printable ASCII characters")
        return value


# What `cache_ttl` is when a use case does not say: an answer that is the same for every
# user is worth reusing; a per-user one is seldom asked twice within minutes.
_DEFAULT_CACHE_TTL: dict[Input, float] = {
    Input.NONE: 300.0,
    Input.ITEM: 300.0,
    Input.USER: 0.0,
    Input.USER_AND_ITEM: 0.0,
}


class EventsSettings(_Section):
    """`Mutation.recordEvents`: user events sent back to Personalize (PutEvents)."""

    # The event tracker's id; unset, the schema has no recordEvents mutation.
    tracking_id: str | None = Field(default=None, min_length=1, max_length=256)
    # personalize-events endpoint; None lets botocore resolve it (it honours
    # AWS_ENDPOINT_URL_PERSONALIZE_EVENTS).
    endpoint_url: str | None = None
    # Event batches (one PutEvents call each) held for delivery; beyond it,
    # recordEvents refuses with EVENTS_QUEUE_FULL instead of dropping anything.
    queue_size: int = Field(default=10_000, ge=1, le=1_000_000)
    # How long recordEvents waits for its batch to be delivered before answering
    # `delivered: false` (delivery goes on in the background).
    wait_ms: int = Field(default=500, ge=0, le=10_000)
    # Backoff between delivery attempts of a batch that was throttled or failed on
    # Personalize's side; such batches are retried until they go through.
    retry_base: float = Field(default=0.2, gt=0, le=60)
    retry_cap: float = Field(default=5.0, gt=0, le=600)
    # On shutdown, how long queued batches may take to go out; the rest stay in the
    # outbox for the next start (logged with their count).
    flush_timeout: float = Field(default=5.0, ge=0, le=300)
    # Where accepted batches wait until Personalize has them (backends/outbox.py):
    # "journal", SQLite in `journal_dir` (relative: to the working directory), or
    # "redis", a stream in the cache's `redis_url` under its `key_prefix`.
    outbox: Literal["journal", "redis"] = "journal"
    journal_dir: Path = Path("var/events")
    # Sessions sent to at once (a session's batches go one after another, in order).
    max_in_flight: int = Field(default=16, ge=1, le=1024)
    # Seconds a process owns its batches without renewing (every lease / 3); past it,
    # or once it stops, another process sends them.
    lease: float = Field(default=30.0, ge=1, le=3600)


class LocalSettings(_Section):
    """The embedded engine used when backend = "local"."""

    # A local_personalize resources file (datasets, campaigns, recommenders, filters);
    # unset, the built-in demo generated from `seed`. Relative to the config file.
    resources: Path | None = None
    seed: int = 7
    # An engine process (`python -m local_personalize serve --verify-signatures`) to call
    # over HTTP instead of building the engine in-process. With WORKERS > 1 the supervisor
    # starts one and sets this for its workers (web/engine_process.py).
    engine_url: str | None = None

    @field_validator("engine_url")
    @classmethod
    def _engine_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"http://[^/?#\s]+", value):
            raise ValueError("the engine URL must be http://host:port, with no path")
        return value


class UseCaseSettings(_Section):
    """One Personalize campaign or recommender, and the GraphQL field it serves."""

    arn: str
    field: ServedField
    input: Input
    default: bool = False
    description: str | None = None
    # Item dataset columns returned as PredictedItem.metadata (numResults then <= 50).
    metadata_columns: tuple[str, ...] = ()
    # When Personalize fails (not the client), try these use cases in order, then the
    # static list; the answer is marked source FALLBACK with no recommendationId.
    fallback: tuple[str, ...] = ()
    fallback_items: tuple[str, ...] = ()
    # rankedItems only: as a last resort, return the given items in the given order.
    fallback_to_input: bool = False
    # Seconds a successful answer is reused (0: off). Unset, it follows `input`: 300 for
    # "none" and "item", 0 for "user" and "user_and_item".
    cache_ttl: float = Field(default=0.0, ge=0, le=86_400)
    # Seconds past `cache_ttl` an answer may still be served when Personalize fails (and
    # not the client); 0: never.
    stale_ttl: float = Field(default=0.0, ge=0, le=604_800)
    # Items a scroll's first page fetches (1..500); unset, `pagination.window`.
    page_window: int | None = Field(default=None, ge=1, le=500)

    @model_validator(mode="before")
    @classmethod
    def _default_cache_ttl(cls, data: Any) -> Any:
        if isinstance(data, dict) and "cache_ttl" not in data:
            try:
                kind = Input(str(data.get("input")))
            except ValueError:
                return data  # the field's own validation names the problem
            data = {**data, "cache_ttl": _DEFAULT_CACHE_TTL[kind]}
        return data

    @property
    def keeps_answers(self) -> bool:
        """Whether successful answers are stored at all (fresh or for stale use)."""
        return self.cache_ttl > 0 or self.stale_ttl > 0

    @field_validator("fallback_items")
    @classmethod
    def _items(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > 500 or any(not i or len(i) > 256 for i in value):
            raise ValueError("at most 500 item ids of 1..256 characters")
        return value

    @field_validator("arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        return _check_arn(value, ("campaign", "recommender"))

    @field_validator("metadata_columns")
    @classmethod
    def _columns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # The model's shape allows 99, its documentation (and the service) 10.
        if len(value) > 10 or any(not c or len(c) > 150 for c in value):
            raise ValueError("at most 10 column names of 1..150 characters")
        return value

    @model_validator(mode="after")
    def _input_fits_field(self) -> "UseCaseSettings":
        if self.input not in _ALLOWED_INPUTS[self.field]:
            allowed = ", ".join(sorted(i.value for i in _ALLOWED_INPUTS[self.field]))
            raise ValueError(f"field {self.field.value} takes input {allowed}, not {self.input}")
        if self.field is ServedField.RANKED_ITEMS and ":campaign/" not in self.arn:
            raise ValueError("rankedItems needs a campaign ARN (GetPersonalizedRanking)")
        if self.field is ServedField.RANKED_ITEMS and self.fallback_items:
            raise ValueError("rankedItems use cases fall back to their input, not to items")
        if self.field is not ServedField.RANKED_ITEMS and self.fallback_to_input:
            raise ValueError("fallback_to_input is for rankedItems use cases")
        return self

    @property
    def is_recommender(self) -> bool:
        return is_recommender_arn(self.arn)


class ParamType(StrEnum):
    """How a filter placeholder is typed in GraphQL; every kind is sent as quoted values."""

    STRINGS = "strings"  # [String!]!, several values joined with commas
    STRING = "string"  # String!
    NUMBER = "number"  # Float!


class FilterSettings(_Section):
    """One Personalize filter and the placeholder parameters its expression declares.

    `params = ["CATEGORY"]` declares list-of-string parameters; the table form
    `params = { MAX_PRICE = "number" }` types each one.
    """

    arn: str
    params: dict[str, ParamType] = Field(default_factory=dict)
    description: str | None = None

    @field_validator("arn")
    @classmethod
    def _arn(cls, value: str) -> str:
        return _check_arn(value, ("filter",))

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(set(value)) != len(value):
                raise ValueError("parameters must be distinct")
            value = dict.fromkeys(value, ParamType.STRINGS.value)
        if isinstance(value, dict):
            for param in value:
                if not isinstance(param, str) or not _FILTER_PARAM.fullmatch(param):
                    raise ValueError(f"parameter {param!r} must match [A-Za-z0-9_]{{1,50}}")
            if len(value) > 25:
                raise ValueError("a filter takes at most 25 parameters")
        return value


# botocore's model (personalize-events): EventAttributionSource, at most 1,024.
ATTRIBUTION_SOURCE = re.compile(r"[\x20-\x7E]*[\x21-\x7E]+[\x20-\x7E]*", re.ASCII)


def check_attribution_source(value: str) -> str:
    if len(value) > 1024 or not ATTRIBUTION_SOURCE.fullmatch(value):
        raise ValueError("an attribution source is 1..1024 printable ASCII, not all spaces")
    return value


class VariantSettings(_Section):
    """One arm of an experiment: a use case, its share, and how its events are attributed."""

    use_case: str
    weight: float = Field(default=1.0, ge=0)
    # A configured filter without parameters, and a promotion drawing from one; each
    # applies when the query gives none of its own.
    filter: str | None = None
    promotion: str | None = None
    promotion_filter: str | None = None
    promotion_percent: int = Field(default=10, ge=1, le=100)
    # Sent back as PutEvents' eventAttributionSource; unset, "<experiment>:<variant>".
    attribution_source: str | None = None

    @field_validator("attribution_source")
    @classmethod
    def _source(cls, value: str | None) -> str | None:
        return None if value is None else check_attribution_source(value)

    @field_validator("promotion")
    @classmethod
    def _promotion(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9\-_]{0,62}", value):
            raise ValueError("a promotion name is 1..63 of [a-zA-Z0-9_-], starting alphanumeric")
        return value


class ExperimentSettings(_Section):
    """`[experiments.NAME]`: variants in order (the first is the control), by weight."""

    enabled: bool = True
    salt: str = ""
    variants: dict[str, VariantSettings]

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: dict[str, VariantSettings]) -> dict[str, VariantSettings]:
        if not value or not any(v.weight > 0 for v in value.values()):
            raise ValueError("an experiment needs variants, at least one with a weight above 0")
        for name in value:
            if not _GRAPHQL_NAME.fullmatch(name):
                raise ValueError(f"variant {name!r} is not a GraphQL name")
        return value

    @property
    def control(self) -> str:
        return next(iter(self.variants))

    def source(self, experiment: str, variant: str) -> str:
        """The attribution source of a variant's answers and events."""
        return self.variants[variant].attribution_source or f"{experiment}:{variant}"


# Beyond this, run more replicas: every worker holds its own engine, pool and cache.
MAX_WORKERS = 64
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Literal["json", "text"]


def _workers(value: object) -> int:
    number = int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_WORKERS:
        raise PydanticCustomError(
            "workers",
            "must be a whole number from 1 to {max} (got {got})",
            {"max": MAX_WORKERS, "got": repr(value)},
        )
    return number


def _log_level(value: object) -> str:
    # Names both logging and uvicorn know (uvicorn has no WARN or NOTSET, logging no TRACE).
    levels: tuple[str, ...] = get_args(LogLevel)
    if not isinstance(value, str) or value.upper() not in levels:
        raise PydanticCustomError(
            "log_level",
            "must be one of {levels}, in any case (got {got})",
            {"levels": ", ".join(levels), "got": repr(value)},
        )
    return value.upper()


def _log_format(value: object) -> str:
    formats: tuple[str, ...] = get_args(LogFormat)
    if not isinstance(value, str) or value.lower() not in formats:
        raise PydanticCustomError(
            "log_format",
            "must be json or text, in any case (got {got})",
            {"got": repr(value)},
        )
    return value.lower()


class Settings(BaseSettings):
    """Everything the subgraph needs to start; built by `load_settings` in each process."""

    model_config = SettingsConfigDict(
        env_prefix="SUBGRAPH_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    # The process settings: top-level keys in the file, and in the environment the names
    # they have always had (an alias is read without the SUBGRAPH_ prefix).
    # Processes serving the port: 1 is uvicorn alone, more the supervisor of web/workers.py.
    workers: Annotated[int, BeforeValidator(_workers)] = Field(
        default=1, validation_alias=AliasChoices("WORKERS", "workers")
    )
    # For the root logger and uvicorn's (observability/logs.py).
    log_level: Annotated[LogLevel, BeforeValidator(_log_level)] = Field(
        default="INFO", validation_alias=AliasChoices("LOG_LEVEL", "log_level")
    )
    # "json": one JSON object per line; "text": a human format, for a terminal.
    log_format: Annotated[LogFormat, BeforeValidator(_log_format)] = Field(
        default="json", validation_alias=AliasChoices("LOG_FORMAT", "log_format")
    )
    backend: Literal["local", "personalize"] = "local"
    server: ServerSettings = ServerSettings()
    personalize: PersonalizeSettings = PersonalizeSettings()
    federation: FederationSettings = FederationSettings()
    local: LocalSettings = LocalSettings()
    limits: LimitsSettings = LimitsSettings()
    connections: ConnectionSettings = ConnectionSettings()
    memory: MemorySettings = MemorySettings()
    events: EventsSettings = EventsSettings()
    breaker: BreakerSettings = BreakerSettings()
    cache: CacheSettings = CacheSettings()
    pagination: PaginationSettings = PaginationSettings()
    cart: CartSettings = CartSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    use_cases: dict[str, UseCaseSettings] = Field(default_factory=dict)
    filters: dict[str, FilterSettings] = Field(default_factory=dict)
    # `[experiments.NAME]`: A/B tests between use cases of one field (README: Experiments).
    experiments: dict[str, ExperimentSettings] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init values; the environment overrides it.
        return (env_settings, init_settings)

    @field_validator("use_cases", "filters", "experiments")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _GRAPHQL_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a GraphQL name")
        return value

    @model_validator(mode="after")
    def _one_default_per_field(self) -> "Settings":
        for field in ServedField:
            defaults = [n for n, u in self.use_cases.items() if u.field is field and u.default]
            if len(defaults) > 1:
                raise ValueError(f"field {field.value} has several defaults: {', '.join(defaults)}")
        for name, case in self.use_cases.items():
            for other in case.fallback:
                _check_fallback(name, case, other, self.use_cases.get(other))
        rerank = self.use_cases.get(self.cart.rerank or "")
        if self.cart.rerank is not None and (
            rerank is None or rerank.field is not ServedField.RANKED_ITEMS
        ):
            raise ValueError(f"cart.rerank: {self.cart.rerank!r} is not a rankedItems use case")
        owners: dict[str, str] = {}
        for name, experiment in self.experiments.items():
            _check_experiment(self, name, experiment)
            for variant in experiment.variants:
                # The readout credits events by source: a shared one counts for both.
                where = f"experiments.{name}.variants.{variant}"
                first = owners.setdefault(experiment.source(name, variant), where)
                if first != where:
                    raise ValueError(
                        f"{where}.attribution_source: {experiment.source(name, variant)!r} "
                        f"is {first}'s too; each variant needs a source of its own"
                    )
        return self

    def experiment_field(self, name: str) -> ServedField | None:
        """The field an experiment serves: its variants' use cases' (None when a copy
        made without validation lacks them)."""
        first = next(iter(self.experiments[name].variants.values()))
        case = self.use_cases.get(first.use_case)
        return None if case is None else case.field

    def experiments_for(self, field: ServedField) -> list[str]:
        """The experiments serving `field`, in configuration order."""
        return [n for n in self.experiments if self.experiment_field(n) is field]

    def use_cases_for(self, field: ServedField) -> dict[str, UseCaseSettings]:
        """The use cases serving `field`, in configuration order."""
        return {n: u for n, u in self.use_cases.items() if u.field is field}

    def default_use_case(self, field: ServedField) -> str | None:
        """The use case a field uses when the query names none: the marked one, else the first."""
        cases = self.use_cases_for(field)
        marked = [n for n, u in cases.items() if u.default]
        return marked[0] if marked else next(iter(cases), None)


# The ids each kind of use case can pass on to a fallback.
_IDS: dict[Input, set[Input]] = {
    Input.USER: {Input.USER, Input.NONE},
    Input.ITEM: {Input.ITEM, Input.NONE},
    Input.USER_AND_ITEM: set(Input),
    Input.NONE: {Input.NONE},
}


def _check_fallback(
    name: str, case: UseCaseSettings, other: str, target: UseCaseSettings | None
) -> None:
    where = f"use_cases.{name}.fallback"
    if target is None or other == name:
        raise ValueError(f"{where}: {other!r} is not another configured use case")
    if case.fallback.count(other) > 1:
        raise ValueError(f"{where}: {other!r} is listed twice")
    ranking = case.field is ServedField.RANKED_ITEMS
    if ranking != (target.field is ServedField.RANKED_ITEMS):
        raise ValueError(f"{where}: rankedItems use cases fall back only to each other")
    if target.input not in _IDS[case.input]:
        raise ValueError(f"{where}: {other} needs input {target.input}, which {name} lacks")


_EXPERIMENT_FIELDS = (ServedField.RECOMMENDATIONS, ServedField.RELATED, ServedField.POPULAR_ITEMS)


def _check_experiment(settings: Settings, name: str, experiment: ExperimentSettings) -> None:
    fields = set()
    for variant, arm in experiment.variants.items():
        where = f"experiments.{name}.variants.{variant}"
        case = settings.use_cases.get(arm.use_case)
        if case is None:
            raise ValueError(f"{where}.use_case: {arm.use_case!r} is not a configured use case")
        fields.add(case.field)
        for key in ("filter", "promotion_filter"):
            chosen = getattr(arm, key)
            spec = settings.filters.get(chosen) if chosen is not None else None
            if chosen is not None and (spec is None or spec.params):
                raise ValueError(f"{where}.{key}: {chosen!r} is not a filter without parameters")
        if (arm.promotion is None) != (arm.promotion_filter is None):
            raise ValueError(f"{where}: promotion and promotion_filter go together")
        check_attribution_source(experiment.source(name, variant))
    if len(fields) > 1 or not fields <= set(_EXPERIMENT_FIELDS):
        served = ", ".join(sorted(f.value for f in fields))
        raise ValueError(
            f"experiments.{name}: variants must serve one of recommendations, related, "
            f"popularItems, the same for all (got {served})"
        )


def load_settings() -> Settings:
    """Read the TOML file named by SUBGRAPH_CONFIG (default: the demo) plus env overrides.

    Raises ConfigurationError with a single line naming the first bad key and where it
    came from: the file, or the environment variable.
    """
    path = Path(os.environ.get("SUBGRAPH_CONFIG") or DEMO_CONFIG)
    try:
        # pydantic-settings' TOML source reads a missing file as an empty one (its files
        # are optional); this one is not, so it is opened once to say why it cannot be read.
        with path.open("rb"):
            pass
        # Read by pydantic-settings' TOML source, but given to Settings as its init values
        # (which the environment overrides: settings_customise_sources) rather than listed
        # as a source: a listed source takes its file from the class's model_config, while
        # this file is chosen per call (SUBGRAPH_CONFIG), and Settings(**values) elsewhere
        # must stay exactly those values, with no file beneath them.
        values = TomlConfigSettingsSource(Settings, toml_file=path)()
    except OSError as exc:
        raise ConfigurationError(f"cannot read config {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"config {path} is not valid TOML: {exc}") from None
    try:
        settings = Settings(**values)
    except SettingsError as exc:
        # A variable for a list or a table that is not JSON: pydantic-settings names the field.
        raise ConfigurationError(f"environment: {exc} (lists and tables are JSON)") from None
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc, path)) from None
    local = relative_to(settings.local, path)
    return settings if local is settings.local else settings.model_copy(update={"local": local})


def relative_to(local: LocalSettings, config: Path) -> LocalSettings:
    """`local` with its resources file, when relative, read from the config's folder."""
    resources = local.resources
    if resources is None or resources.is_absolute():
        return local
    return local.model_copy(update={"resources": config.parent / resources})


def _describe(error: ValidationError, path: Path) -> str:
    first = error.errors()[0]
    loc = _named(first["loc"])
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    environment = _Environment()
    found = environment.variable(loc)
    if found is not None:
        variable, rest = found
        inside = f"{'.'.join(map(str, rest))}: " if rest else ""
        return f"environment {variable}: {inside}{first['msg']}{more}"
    # The file's value, or a section's own check, or a key missing from a section: the
    # variables that set some of that section are named too.
    where = ".".join(map(str, loc)) or "(top level)"
    scope = loc[:-1] if first["type"] == "missing" else loc
    under = environment.variables_under(scope) if scope else []
    also = f" (with {', '.join(under)} from the environment)" if under else ""
    return f"config {path}: {where}: {first['msg']}{also}{more}"


def _aliases() -> dict[str, str]:
    names: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            for choice in field.validation_alias.choices:
                names[str(choice)] = name
    return names


def _named(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`loc` with a top-level alias (`WORKERS`) replaced by its field's name (`workers`)."""
    if loc and isinstance(loc[0], str):
        return (_aliases().get(loc[0], loc[0]), *loc[1:])
    return loc


class _Environment:
    """What the environment sets, found by the path of a key as a validation error gives it."""

    def __init__(self) -> None:
        values = EnvSettingsSource(Settings)()
        aliases = _aliases()
        self._values = {aliases.get(key, key): value for key, value in values.items()}
        self._names = {name.casefold(): name for name in os.environ}
        self._prefix = str(Settings.model_config.get("env_prefix") or "")
        self._delimiter = str(Settings.model_config.get("env_nested_delimiter") or "")

    def variable(self, loc: tuple[str | int, ...]) -> tuple[str, tuple[str | int, ...]] | None:
        """The variable that set the value at `loc`, and the rest of `loc` inside it."""
        node = self._at(loc)
        if not loc or node is None or isinstance(node, Mapping):
            return None  # not from the environment, or only some of what is under `loc`
        return self._name(loc)

    def variables_under(self, loc: tuple[str | int, ...]) -> list[str]:
        """The variables that set anything under `loc`."""
        found = (self._name((*loc, *leaf)) for leaf in _leaves(self._at(loc)))
        return list(dict.fromkeys(name for name, _ in filter(None, found)))

    def _at(self, loc: tuple[str | int, ...]) -> Any:
        node: Any = self._values
        for part in loc:
            if not isinstance(node, Mapping):
                break  # inside a list the environment set as a whole
            if part not in node:
                return None
            node = node[part]
        return node

    def _name(self, loc: tuple[str | int, ...]) -> tuple[str, tuple[str | int, ...]] | None:
        field = Settings.model_fields.get(str(loc[0]))
        if field is not None and isinstance(field.validation_alias, AliasChoices):
            for choice in field.validation_alias.choices:
                if str(choice).casefold() in self._names:
                    return self._names[str(choice).casefold()], loc[1:]
        # The longest prefix of `loc` with a variable: a section may be set as JSON.
        for end in range(len(loc), 0, -1):
            name = self._prefix + self._delimiter.join(map(str, loc[:end]))
            if name.casefold() in self._names:
                return self._names[name.casefold()], loc[end:]
        return None


def _leaves(node: Any) -> Iterator[tuple[str | int, ...]]:
    if node is None:
        return
    if not isinstance(node, Mapping):
        yield ()
        return
    for key, value in node.items():
        for leaf in _leaves(value):
            yield (key, *leaf)
