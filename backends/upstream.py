"""How a Personalize error code becomes one of our errors; shared by both backends."""

from backends.request import RecommendationRequest
from errors import (
    SubgraphError,
    UpstreamNotFound,
    UpstreamRejectedInput,
    UpstreamThrottled,
    UpstreamUnavailable,
)

# Codes Personalize (and AWS front doors in general) use for throttling.
_THROTTLING = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "ThrottledException"}
)


def upstream_error(
    code: str, status: int, message: str, request: RecommendationRequest
) -> SubgraphError:
    """The client-facing error for a Personalize error response."""
    if code == "InvalidInputException":
        # Personalize's message names the offending parameter and carries no secrets.
        return UpstreamRejectedInput(f"Personalize rejected the request: {message}")
    if code == "ResourceNotFoundException":
        return UpstreamNotFound(
            f"the Personalize resource behind use case {request.use_case!r} was not found"
        )
    if code in _THROTTLING or status == 429:
        return UpstreamThrottled(f"Personalize throttled use case {request.use_case!r}")
    return UpstreamUnavailable(f"Personalize failed for use case {request.use_case!r}")
