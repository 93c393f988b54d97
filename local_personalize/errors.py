"""Errors the Personalize Runtime API can answer with, as Python exceptions.

Each class carries the AWS error code and HTTP status so the HTTP emulator can put
it on the wire unchanged and in-process callers can branch on the same names they
would see from botocore's ``ClientError``.
"""

from __future__ import annotations


class PersonalizeError(Exception):
    """Base of every error the engine raises on purpose; ``code`` is the AWS error code."""

    code: str = "InternalFailure"
    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputException(PersonalizeError):
    """The request broke a constraint of the service model or of the resource it targets."""

    code = "InvalidInputException"
    status = 400


class ResourceNotFoundException(PersonalizeError):
    """A campaign, recommender or filter ARN that this engine does not know."""

    code = "ResourceNotFoundException"
    status = 404


class ThrottlingException(PersonalizeError):
    """Too many requests; only produced by fault injection (the engine never throttles)."""

    code = "ThrottlingException"
    status = 429


class InternalFailure(PersonalizeError):
    """A server-side failure; only produced by fault injection."""

    code = "InternalFailure"
    status = 500


class ServiceUnavailable(PersonalizeError):
    """The service is temporarily unavailable; only produced by fault injection."""

    code = "ServiceUnavailable"
    status = 503


ERRORS_BY_CODE: dict[str, type[PersonalizeError]] = {
    cls.code: cls
    for cls in (
        InvalidInputException,
        ResourceNotFoundException,
        ThrottlingException,
        InternalFailure,
        ServiceUnavailable,
    )
}
"""Error classes by AWS code, for callers (fault rules) that name an error as a string."""
