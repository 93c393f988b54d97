"""How a Personalize answer becomes our result, and its error code one of our errors;
shared by every backend."""

import re
from typing import Any

from domain.errors import (
    SubgraphError,
    UpstreamNotFound,
    UpstreamRefused,
    UpstreamRejectedInput,
    UpstreamThrottled,
    UpstreamUnavailable,
)
from domain.request import RecommendationRequest
from domain.result import MalformedAnswer, RecommendationResult

_ARN = re.compile(r"arn:[\w-]+:personalize:\S*")
# Codes Personalize (and AWS front doors in general) use for throttling.
_THROTTLING = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "ThrottledException"}
)


def read_answer(request: RecommendationRequest, body: Any) -> RecommendationResult:
    """The result in an answer's body; an answer that is not one is the upstream's failure."""
    if isinstance(body, dict):
        try:
            return RecommendationResult.from_api_response(request.operation, body)
        except MalformedAnswer:
            pass
    raise UpstreamUnavailable(
        f"Personalize answered use case {request.use_case!r} with something unreadable"
    )


def upstream_error(
    code: str, status: int, message: str, request: RecommendationRequest
) -> SubgraphError:
    """The client-facing error for a Personalize Runtime error response."""
    return _error(code, status, message, f"use case {request.use_case!r}")


def events_error(code: str, status: int, message: str) -> SubgraphError:
    """The error for a failed PutEvents call (retryable when a retry may succeed)."""
    return _error(code, status, message, "the event tracker")


def _error(code: str, status: int, message: str, subject: str) -> SubgraphError:
    if code == "InvalidInputException":
        # Personalize's message names the offending parameter; resource names are ours,
        # not the client's business (frontends never see ARNs).
        return UpstreamRejectedInput(
            f"Personalize rejected the request: {_ARN.sub('<resource>', message)}"
        )
    if code == "ResourceNotFoundException":
        return UpstreamNotFound(f"the Personalize resource behind {subject} was not found")
    if code in _THROTTLING or status == 429:
        return UpstreamThrottled(f"Personalize throttled {subject}")
    if 400 <= status < 500:
        # AccessDenied, expired tokens, validation of the request's shape: retrying
        # the same request cannot help.
        return UpstreamRefused(f"Personalize refused {subject} ({code})")
    return UpstreamUnavailable(f"Personalize failed for {subject}")
