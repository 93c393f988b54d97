"""How an answer is written down outside this process: its key and its bytes.

Both must agree across processes and replicas (and across versions, through `_FORMAT`),
since a Redis entry is read by whoever asks next, not by whoever wrote it.
"""

import hashlib
from typing import Any

import orjson

from backends.entry import Entry
from domain.request import RecommendationRequest
from domain.result import RecommendationResult, ResultItem

# Part of every Redis key: a change to the stored format changes the keys, so replicas of
# two versions never read each other's entries.
_FORMAT = "v1"


def cache_key(request: RecommendationRequest, prefix: str = "") -> str:
    """A key naming every field of `request`, the same in every process and replica.

    Built from the request's JSON (fields in declaration order, collections already
    sorted tuples) rather than `hash()`, which is salted per process.
    """
    digest = hashlib.sha256(orjson.dumps(request)).hexdigest()
    return f"{prefix}{_FORMAT}:{request.use_case}:{digest}"


def encode(entry: Entry) -> bytes:
    """An entry as compact JSON: items as arrays, in ResultItem's field order."""
    result = entry.result
    return orjson.dumps(
        {
            "at": entry.stored_at,
            "id": result.recommendation_id,
            "items": [
                [i.item_id, i.score, i.promotion_name, i.reasons, i.metadata] for i in result.items
            ],
        }
    )


def decode(raw: bytes | str) -> Entry:
    """The entry `encode` wrote; ValueError when `raw` is not one."""
    try:
        data: Any = orjson.loads(raw)
        items = tuple(
            ResultItem(
                item_id=str(item_id),
                score=None if score is None else float(score),
                promotion_name=promotion,
                reasons=tuple(str(r) for r in reasons),
                metadata=None if metadata is None else tuple((str(k), str(v)) for k, v in metadata),
            )
            for item_id, score, promotion, reasons, metadata in data["items"]
        )
        result = RecommendationResult(recommendation_id=data["id"], items=items)
        return Entry(result=result, stored_at=float(data["at"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a cached answer: {exc}") from None
