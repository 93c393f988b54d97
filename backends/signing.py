"""AWS Signature Version 4 for the direct client's JSON POSTs.

botocore's SigV4Auth costs many times this signer's CPU per call (`python -m
bench.libraries`, ARCHITECTURE.md): it builds an AWSRequest, re-parses the URL, walks
and sorts every header and derives the signing key with four HMACs on every call. Our
calls are always the same shape, a POST with no query string and a JSON body, so this
signer fixes the signed headers (content-type, host, x-amz-date and, with temporary credentials,
x-amz-security-token: the set botocore signs for these calls), and keeps the derived
key until the UTC date or the secret changes.

The result is checked against botocore's SigV4Auth for the same inputs
(tests/unit/test_signing.py), and the emulator checks every signature that reaches it
with its own, independent verifier (`--verify-signatures`).
"""

import hashlib
import hmac
import time
from typing import NamedTuple
from urllib.parse import urlsplit

_ALGORITHM = "AWS4-HMAC-SHA256"
_CONTENT_TYPE = "application/json"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Credentials(NamedTuple):
    """The three parts of a credential as botocore's frozen credentials hold them."""

    access_key: str
    secret_key: str
    token: str | None


def host_header(endpoint: str) -> str:
    """The Host of ``endpoint`` as HTTP sends it and SigV4 signs it (no default port)."""
    parts = urlsplit(endpoint)
    if parts.hostname is None:
        raise ValueError(f"endpoint has no host: {endpoint!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


class Signer:
    """Signs POSTs of JSON to one host for one service in one region."""

    def __init__(self, host: str, service: str, region: str) -> None:
        self.host = host
        self._scope_tail = f"/{region}/{service}/aws4_request"
        self._region = region
        self._service = service
        self._key_for: tuple[str, str] = ("", "")
        self._key = b""

    def _signing_key(self, secret: str, day: str) -> bytes:
        if self._key_for != (secret, day):
            key = hmac.digest(("AWS4" + secret).encode(), day.encode(), "sha256")
            for part in (self._region, self._service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._key, self._key_for = key, (secret, day)
        return self._key

    def headers(
        self, credentials: Credentials, path: str, body: bytes, now: float | None = None
    ) -> dict[str, str]:
        """The headers that sign a POST of ``body`` to ``path`` (an unreserved-only path)."""
        stamp = time.gmtime(time.time() if now is None else now)
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", stamp)
        day = amz_date[:8]
        if credentials.token:
            signed_names = "content-type;host;x-amz-date;x-amz-security-token"
            token_line = f"x-amz-security-token:{credentials.token}\n"
        else:
            signed_names = "content-type;host;x-amz-date"
            token_line = ""
        canonical = (
            f"POST\n{path}\n\ncontent-type:{_CONTENT_TYPE}\nhost:{self.host}\n"
            f"x-amz-date:{amz_date}\n{token_line}\n{signed_names}\n"
            + hashlib.sha256(body).hexdigest()
        )
        scope = day + self._scope_tail
        to_sign = (
            f"{_ALGORITHM}\n{amz_date}\n{scope}\n" + hashlib.sha256(canonical.encode()).hexdigest()
        )
        signature = hmac.new(
            self._signing_key(credentials.secret_key, day), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        headers = {
            "Content-Type": _CONTENT_TYPE,
            "Host": self.host,
            "X-Amz-Date": amz_date,
            "Authorization": (
                f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
                f"SignedHeaders={signed_names}, Signature={signature}"
            ),
        }
        if credentials.token:
            headers["X-Amz-Security-Token"] = credentials.token
        return headers
