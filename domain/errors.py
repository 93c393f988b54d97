"""Errors named for what happened, each carrying the GraphQL error code clients see.

Backends and resolvers raise these; `schema/error_codes.py` turns them into GraphQL
errors in one place. Anything that is not a `SubgraphError` is unexpected and is
masked before it reaches a client. Every `extensions.code` the service can answer is a
member of `ErrorCode`, written once here.
"""

from enum import StrEnum


class ErrorCode(StrEnum):
    """Every `extensions.code` this subgraph answers (a StrEnum: it is its own string)."""

    # Raised by our own errors below.
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_CONFIGURED = "NOT_CONFIGURED"
    OPERATION_TOO_EXPENSIVE = "OPERATION_TOO_EXPENSIVE"
    UPSTREAM_THROTTLED = "UPSTREAM_THROTTLED"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    EVENTS_QUEUE_FULL = "EVENTS_QUEUE_FULL"
    CURSOR_EXPIRED = "CURSOR_EXPIRED"
    # GraphQL's own failures, with Apollo's standard names.
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    OPERATION_RESOLUTION_FAILURE = "OPERATION_RESOLUTION_FAILURE"
    MAX_DEPTH_LIMIT = "MAX_DEPTH_LIMIT"
    MAX_ALIASES_LIMIT = "MAX_ALIASES_LIMIT"
    MAX_TOKENS_LIMIT = "MAX_TOKENS_LIMIT"
    # The HTTP edge's refusals, before any GraphQL runs.
    BAD_REQUEST = "BAD_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    URI_TOO_LONG = "URI_TOO_LONG"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    # The connection's refusals (web/connections.py), before a request reaches the app.
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    REQUEST_HEADER_FIELDS_TOO_LARGE = "REQUEST_HEADER_FIELDS_TOO_LARGE"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"


# Codes that say the client asked for something wrong (anything else is the service's).
CLIENT_CODES = frozenset(
    {
        ErrorCode.BAD_REQUEST,
        ErrorCode.BAD_USER_INPUT,
        ErrorCode.CURSOR_EXPIRED,
        ErrorCode.GRAPHQL_PARSE_FAILED,
        ErrorCode.GRAPHQL_VALIDATION_FAILED,
        ErrorCode.OPERATION_RESOLUTION_FAILURE,
        ErrorCode.OPERATION_TOO_EXPENSIVE,
        ErrorCode.MAX_DEPTH_LIMIT,
        ErrorCode.MAX_ALIASES_LIMIT,
        ErrorCode.MAX_TOKENS_LIMIT,
        ErrorCode.UNAUTHENTICATED,
        ErrorCode.METHOD_NOT_ALLOWED,
        ErrorCode.NOT_ACCEPTABLE,
        ErrorCode.PAYLOAD_TOO_LARGE,
        ErrorCode.URI_TOO_LONG,
        ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        ErrorCode.REQUEST_TIMEOUT,
        ErrorCode.REQUEST_HEADER_FIELDS_TOO_LARGE,
    }
)


class SubgraphError(Exception):
    """Base of every error whose message is safe to show to a client."""

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR
    # True when Personalize or our own protection failed, not the client: a use case's
    # fallback chain may answer instead. Client mistakes are always reported.
    degradable = False
    # True when the same call may succeed if made again shortly (throttling, 5xx, timeouts).
    retryable = False


class InvalidArgument(SubgraphError):
    """An argument breaks a limit of the Personalize API or of this subgraph."""

    code = ErrorCode.BAD_USER_INPUT


class CursorExpired(SubgraphError):
    """An `after` cursor whose window is gone (past `pagination.ttl`, or dropped from the
    store): the client starts the list again from its first page."""

    code = ErrorCode.CURSOR_EXPIRED


class UpstreamRejectedInput(SubgraphError):
    """Personalize answered InvalidInputException for a request we thought valid."""

    code = ErrorCode.BAD_USER_INPUT


class NotConfigured(SubgraphError):
    """The field, use case or Personalize resource it names is not set up."""

    code = ErrorCode.NOT_CONFIGURED


class UpstreamNotFound(NotConfigured):
    """Personalize answered ResourceNotFoundException: the campaign or recommender is gone."""

    degradable = True


class OperationTooExpensive(SubgraphError):
    """The operation asked for more distinct Personalize calls than one operation may make."""

    code = ErrorCode.OPERATION_TOO_EXPENSIVE


class UpstreamThrottled(SubgraphError):
    """Personalize throttled the call and the retry budget is spent."""

    code = ErrorCode.UPSTREAM_THROTTLED
    degradable = True
    retryable = True


class UpstreamTimeout(SubgraphError):
    """Personalize did not answer within the configured timeouts."""

    code = ErrorCode.UPSTREAM_TIMEOUT
    degradable = True
    retryable = True


class DeadlineSpent(UpstreamTimeout):
    """The operation's deadline ran out before this call was answered: before it was sent,
    while it waited for a connection, or while it was in flight."""

    retryable = False


class UpstreamUnavailable(SubgraphError):
    """Personalize could not be reached or failed on its side."""

    code = ErrorCode.UPSTREAM_UNAVAILABLE
    degradable = True
    retryable = True


class UpstreamRefused(UpstreamUnavailable):
    """Personalize refused the call for a reason a retry cannot fix (access, credentials)."""

    retryable = False


class CircuitOpen(UpstreamUnavailable):
    """Calls to this ARN are paused after repeated failures; a probe will test it soon."""

    retryable = False


class EventsQueueFull(SubgraphError):
    """Too many event batches wait for delivery; these events were not taken (retry later)."""

    code = ErrorCode.EVENTS_QUEUE_FULL


class EventsNotStored(EventsQueueFull):
    """The event outbox (disk or Redis) could not store these events; not taken (retry later)."""


class ConfigurationError(Exception):
    """The configuration cannot be used; raised at start-up with a one-line reason."""
