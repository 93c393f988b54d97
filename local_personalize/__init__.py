"""An embedded, offline implementation of the Amazon Personalize Runtime API.

``Engine`` answers GetRecommendations and GetPersonalizedRanking in-process from the
wire-format JSON dicts and records PutEvents (``put_events``; the demo's tracker is
``DEMO_TRACKING_ID``); ``emulator.create_app`` serves the same engine over the
Personalize Runtime and Events HTTP protocol so any AWS SDK can use it via ``endpoint_url``.
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
from .resources import ARN_PREFIX, DEMO_TRACKING_ID

__all__ = [
    "ARN_PREFIX",
    "DEMO_TRACKING_ID",
    "Engine",
    "InternalFailure",
    "InvalidInputException",
    "PersonalizeError",
    "ResourceNotFoundException",
    "ServiceUnavailable",
    "ThrottlingException",
]
