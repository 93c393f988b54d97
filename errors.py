"""Errors named for what happened, each carrying the GraphQL error code clients see.

Backends and resolvers raise these; `schema/error_codes.py` turns them into GraphQL
errors in one place. Anything that is not a `SubgraphError` is unexpected and is
masked before it reaches a client.
"""


class SubgraphError(Exception):
    """Base of every error whose message is safe to show to a client."""

    code = "INTERNAL_SERVER_ERROR"
    # True when Personalize or our own protection failed, not the client: a use case's
    # fallback chain may answer instead. Client mistakes are always reported.
    degradable = False
    # True when the same call may succeed if made again shortly (throttling, 5xx, timeouts).
    retryable = False


class InvalidArgument(SubgraphError):
    """An argument breaks a limit of the Personalize API or of this subgraph."""

    code = "BAD_USER_INPUT"


class UpstreamRejectedInput(SubgraphError):
    """Personalize answered InvalidInputException for a request we thought valid."""

    code = "BAD_USER_INPUT"


class NotConfigured(SubgraphError):
    """The field, use case or Personalize resource it names is not set up."""

    code = "NOT_CONFIGURED"


class UpstreamNotFound(NotConfigured):
    """Personalize answered ResourceNotFoundException: the campaign or recommender is gone."""

    degradable = True


class OperationTooExpensive(SubgraphError):
    """The operation asked for more distinct Personalize calls than one operation may make."""

    code = "OPERATION_TOO_EXPENSIVE"


class UpstreamThrottled(SubgraphError):
    """Personalize throttled the call and the retry budget is spent."""

    code = "UPSTREAM_THROTTLED"
    degradable = True
    retryable = True


class UpstreamTimeout(SubgraphError):
    """Personalize did not answer within the configured timeouts."""

    code = "UPSTREAM_TIMEOUT"
    degradable = True
    retryable = True


class DeadlineSpent(UpstreamTimeout):
    """The operation's deadline passed before this call could start; nothing was sent."""

    retryable = False


class UpstreamUnavailable(SubgraphError):
    """Personalize could not be reached or failed on its side."""

    code = "UPSTREAM_UNAVAILABLE"
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

    code = "EVENTS_QUEUE_FULL"


class ConfigurationError(Exception):
    """The configuration cannot be used; raised at start-up with a one-line reason."""
