"""Checks AWS Signature Version 4 on requests that reach the emulator.

Written from the published algorithm with hashlib/hmac only (not with botocore), so it
checks the subgraph's signing — the SDK's and the direct client's alike — against
an independent reading: what was signed must be what arrived on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, ?SignedHeaders=(?P<headers>[a-z0-9;-]+), ?"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(query: str) -> str:
    pairs = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
        for k, v in parse_qsl(query, keep_blank_values=True)
    )
    return "&".join(f"{k}={v}" for k, v in pairs)


def signature_problem(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
) -> str | None:
    """Why the request's signature is not valid for `secrets` (access key -> secret), or None.

    `headers` must be keyed by lower-case names.
    """
    authorization = headers.get("authorization")
    if not authorization:
        return "the request is not signed"
    match = _AUTHORIZATION.fullmatch(authorization.strip())
    if match is None:
        return "the Authorization header is not AWS4-HMAC-SHA256"
    secret = secrets.get(match["key"])
    if secret is None:
        return "the access key is not known"
    amz_date = headers.get("x-amz-date", "")
    if not amz_date.startswith(match["date"]):
        return "X-Amz-Date does not match the credential scope"
    signed = match["headers"].split(";")
    if "host" not in signed:
        return "the Host header is not signed"
    missing = [name for name in signed if name not in headers]
    if missing:
        return f"signed headers are missing: {', '.join(missing)}"
    canonical_headers = "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed)
    canonical_request = "\n".join(
        [
            method,
            quote(path, safe="/-_.~"),
            _canonical_query(query),
            canonical_headers,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{match['date']}/{match['region']}/{match['service']}/aws4_request"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            amz_date,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(("AWS4" + secret).encode(), match["date"])
    for part in (match["region"], match["service"], "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, match["signature"]):
        return "the signature does not match"
    return None
