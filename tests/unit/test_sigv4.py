"""The emulator's independent SigV4 check agrees with botocore's signer, and catches tampering."""

import hashlib

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local_personalize.sigv4 import signature_problem

SECRETS = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
BODY = b'{"recommenderArn":"arn:aws:personalize:us-east-1:1:recommender/x","userId":"u"}'


def signed(
    body: bytes = BODY, token: str | None = None, url: str = "http://127.0.0.1:8765/recommendations"
) -> dict[str, str]:
    request = AWSRequest(
        method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
    )
    credentials = Credentials("AKIDEXAMPLE", SECRETS["AKIDEXAMPLE"], token)
    SigV4Auth(credentials, "personalize", "us-east-1").add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = url.split("/")[2]
    return headers


def check(
    headers: dict[str, str], body: bytes = BODY, path: str = "/recommendations"
) -> str | None:
    return signature_problem("POST", path, "", headers, body, SECRETS)


def test_botocore_signatures_verify() -> None:
    assert check(signed()) is None
    # Session tokens are signed too.
    assert check(signed(token="FQoGZXIvYXdzEXAMPLE")) is None
    # Default ports are left out of the Host header by both sides.
    headers = signed(url="https://personalize-runtime.us-east-1.amazonaws.com/recommendations")
    assert check(headers) is None


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda h: h.pop("authorization"), "not signed"),
        (lambda h: h.update(authorization="Bearer x"), "not AWS4-HMAC-SHA256"),
        (lambda h: h.update(host="127.0.0.1:9999"), "does not match"),
        (lambda h: h.update({"content-type": "text/plain"}), "does not match"),
        (lambda h: h.update({"x-amz-date": "20000101T000000Z"}), "scope"),
        (lambda h: h.pop("x-amz-date"), "scope"),
        (
            lambda h: h.update(
                authorization=h["authorization"].replace("AKIDEXAMPLE", "AKIDOTHER")
            ),
            "not known",
        ),
    ],
)
def test_tampering_is_caught(change: object, problem: str) -> None:
    headers = signed()
    change(headers)  # type: ignore[operator]
    found = check(headers)
    assert found is not None
    assert problem in found


def test_a_changed_body_or_path_is_caught() -> None:
    headers = signed()
    assert check(headers, body=BODY.replace(b'"u"', b'"v"')) == "the signature does not match"
    assert check(headers, path="/personalize-ranking") == "the signature does not match"
    # Sanity: the body hash really is part of what is signed.
    assert hashlib.sha256(BODY).hexdigest() != hashlib.sha256(BODY + b" ").hexdigest()
