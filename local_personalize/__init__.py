"""An embedded, offline implementation of the Amazon Personalize Runtime API.

``Engine`` answers GetRecommendations and GetPersonalizedRanking in-process from the
wire-format JSON dicts; ``emulator.create_app`` serves the same engine over the
Personalize Runtime HTTP protocol so any AWS SDK can use it via ``endpoint_url``.
"""

from .engine import Engine
from .errors import (
    InternalFailure,
    InvalidInputException,
    PersonalizeError,
    ResourceNotFoundException,
    ServiceUnavailable,
    ThrottlingException,
)
from .resources import ARN_PREFIX

__all__ = [
    "ARN_PREFIX",
    "Engine",
    "InternalFailure",
    "InvalidInputException",
    "PersonalizeError",
    "ResourceNotFoundException",
    "ServiceUnavailable",
    "ThrottlingException",
]
