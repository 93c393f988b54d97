"""The direct client's signer writes what botocore's SigV4Auth writes, to the byte."""

import calendar
import time

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from backends.http1 import Pool
from backends.personalize import RuntimeTarget
from backends.personalize_direct import DirectPersonalizeBackend
from backends.signing import Credentials, Signer, host_header
from domain.errors import ConfigurationError
from local_personalize.sigv4 import signature_problem

KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
BODY = b'{"recommenderArn":"arn:aws:personalize:us-east-1:1:recommender/x","userId":"u"}'


def botocore_headers(url: str, body: bytes, token: str | None, region: str) -> dict[str, str]:
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(BotocoreCredentials(KEY, SECRET, token), "personalize", region).add_auth(request)
    return dict(request.headers.items())


CASES = [
    ("http://127.0.0.1:8765", "/recommendations", BODY, None, "us-east-1"),
    ("http://127.0.0.1:8765", "/personalize-ranking", BODY, "FQoGZXIvYXdzEXAMPLE", "eu-west-1"),
    (
        "https://personalize-runtime.us-east-1.amazonaws.com",
        "/recommendations",
        b"{}",
        None,
        "us-east-1",
    ),
    ("https://personalize-runtime.example.com:8443", "/recommendations", BODY, "tok", "us-west-2"),
    ("http://localhost:80", "/recommendations", BODY, None, "us-east-1"),
    ("http://[::1]:9000", "/recommendations", BODY, None, "us-east-1"),
    ("http://gateway.internal:8080/personalize", "/recommendations", BODY, None, "us-east-1"),
]


@pytest.mark.parametrize(("endpoint", "path", "body", "token", "region"), CASES)
def test_signature_is_botocores(
    endpoint: str, path: str, body: bytes, token: str | None, region: str
) -> None:
    prefix = endpoint.split("/", 3)[3] if endpoint.count("/") > 2 else ""
    full_path = ("/" + prefix if prefix else "") + path
    theirs = botocore_headers(endpoint + path, body, token, region)
    # Sign at botocore's own second, so that both sign the same X-Amz-Date.
    now = calendar.timegm(time.strptime(theirs["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    signer = Signer(host_header(endpoint), "personalize", region)
    ours = signer.headers(Credentials(KEY, SECRET, token), full_path, body, now=now)

    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token") == token
    # And the emulator's independent verifier accepts what was signed, as sent.
    sent = {name.lower(): value for name, value in ours.items()}
    assert signature_problem("POST", full_path, "", sent, body, {KEY: SECRET}) is None


def test_the_signing_key_follows_the_day_and_the_secret() -> None:
    signer = Signer("127.0.0.1:8765", "personalize", "us-east-1")
    day_one = calendar.timegm((2026, 11, 29, 23, 59, 59, 0, 0, 0))
    late = signer.headers(Credentials(KEY, SECRET, None), "/recommendations", BODY, now=day_one)
    early = signer.headers(
        Credentials(KEY, SECRET, None), "/recommendations", BODY, now=day_one + 2
    )
    rotated = signer.headers(
        Credentials(KEY, SECRET + "x", None), "/recommendations", BODY, now=day_one + 2
    )
    for headers, secret in ((late, SECRET), (early, SECRET), (rotated, SECRET + "x")):
        sent = {name.lower(): value for name, value in headers.items()}
        assert signature_problem("POST", "/recommendations", "", sent, BODY, {KEY: secret}) is None
    assert "/20261129/" in late["Authorization"]
    assert "/20261130/" in early["Authorization"]
    # A key kept from the old secret would not verify under the new one.
    sent = {name.lower(): value for name, value in rotated.items()}
    assert signature_problem("POST", "/recommendations", "", sent, BODY, {KEY: SECRET}) is not None


def test_host_header() -> None:
    assert host_header("https://personalize-runtime.us-east-1.amazonaws.com") == (
        "personalize-runtime.us-east-1.amazonaws.com"
    )
    assert host_header("http://127.0.0.1:8765/") == "127.0.0.1:8765"
    assert host_header("https://h.example:443") == "h.example"
    assert host_header("http://[::1]:9000") == "[::1]:9000"
    with pytest.raises(ValueError, match="no host"):
        host_header("not a url")


def pool(endpoint: str) -> Pool:
    return Pool(endpoint, max_idle=1, connect_timeout=1.0, read_timeout=1.0)


@pytest.mark.parametrize("path", ["/my%20api", "/a//b", "/./x", "/../x", "/a:b"])
def test_endpoint_paths_that_would_be_signed_otherwise_than_sent_are_refused(path: str) -> None:
    endpoint = f"https://personalize.example.com{path}"
    target = RuntimeTarget(endpoint, "us-east-1", "personalize", None)
    with pytest.raises(ConfigurationError, match="must be plain segments"):
        DirectPersonalizeBackend(pool(endpoint), target)


def test_a_plain_endpoint_path_is_sent_and_signed_whole() -> None:
    endpoint = "http://gateway.internal:8080/personalize/v1/"
    target = RuntimeTarget(endpoint, "us-east-1", "personalize", None)
    backend = DirectPersonalizeBackend(pool(endpoint), target)
    assert set(backend._paths.values()) == {
        "/personalize/v1/recommendations",
        "/personalize/v1/personalize-ranking",
    }
