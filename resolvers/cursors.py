"""Scroll cursors: opaque, signed, and bound to the question that made them.

A cursor is base64url of an HMAC-SHA256 tag (16 bytes) followed by compact JSON: the
window's id, the position in it, when it expires, the window's source, and a digest of
the question (user, item, use case, filter and its values, context, promotion: the
request less its numResults). `pagination.secret` keys the tag, so a cursor made by one
replica is read by every replica with the same secret. Anything altered is refused.
"""

import base64
import binascii
import dataclasses
import hashlib
import hmac
from dataclasses import dataclass

import orjson

from domain.errors import InvalidArgument
from domain.request import RecommendationRequest

_TAG = 16
_REFUSED = "after is not a cursor this service made, or it was altered"


def question(request: RecommendationRequest) -> str:
    """What a cursor is bound to: every parameter of `request` but how many items."""
    asked = dataclasses.replace(request, num_results=None)
    return hashlib.sha256(orjson.dumps(asked)).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a later page starts: `position` in window `window`."""

    window: str
    position: int
    question: str
    expires: float
    source: str


class Cursors:
    """Writes and reads cursors signed with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_TAG]

    def write(self, cursor: Cursor) -> str:
        payload = orjson.dumps(
            [cursor.window, cursor.position, cursor.question, cursor.expires, cursor.source]
        )
        return base64.urlsafe_b64encode(self._tag(payload) + payload).rstrip(b"=").decode()

    def read(self, text: str) -> Cursor:
        """The cursor `text` holds; InvalidArgument when it is not one of ours, intact."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise InvalidArgument(_REFUSED) from None
        # One spelling per cursor: a character changed in the unused bits of the last
        # one would otherwise decode to the same bytes.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != text:
            raise InvalidArgument(_REFUSED)
        tag, payload = raw[:_TAG], raw[_TAG:]
        if not hmac.compare_digest(tag, self._tag(payload)):
            raise InvalidArgument(_REFUSED)
        window, position, asked, expires, source = orjson.loads(payload)
        return Cursor(window, position, asked, expires, source)
