"""SigV4 alone: `backends.signing.Signer.headers` against botocore's `SigV4Auth.add_auth`.

Both sign the same GetRecommendations POST (the endpoint, region and body the direct
client sends) and hand back the headers to send. The library side builds the
`AWSRequest` a call needs and reuses one `SigV4Auth`, as a client of ours would. Before
timing, both sign once at the same second and must write the same Authorization.
"""

import calendar
import time

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from backends.signing import Credentials, Signer, host_header
from bench.client_cost import PATH, recommendation_requests
from bench.side_by_side import Comparison, Side, compare
from settings import Settings
from tests.servers import AWS_TEST_ENV

SERVICE = "personalize"


async def signers(settings: Settings, endpoint: str, ops: int, rounds: int) -> Comparison:
    """CPU µs per signature of each signer."""
    region = settings.personalize.region
    key, secret = AWS_TEST_ENV["AWS_ACCESS_KEY_ID"], AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"]
    body = orjson.dumps(recommendation_requests(settings, 1)[0].to_api_params())
    url = endpoint.rstrip("/") + PATH
    ours = Signer(host_header(endpoint), SERVICE, region)
    credentials = Credentials(key, secret, None)
    auth = SigV4Auth(BotocoreCredentials(key, secret), SERVICE, region)

    def theirs() -> dict[str, str]:
        request = AWSRequest(
            method="POST", url=url, data=body, headers={"Content-Type": "application/json"}
        )
        auth.add_auth(request)
        return dict(request.headers.items())

    signed = theirs()
    at = calendar.timegm(time.strptime(signed["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    if ours.headers(credentials, PATH, body, now=at)["Authorization"] != signed["Authorization"]:
        raise RuntimeError("backends.signing and botocore sign the same request differently")

    async def run_ours(n: int) -> None:
        for _ in range(n):
            ours.headers(credentials, PATH, body)

    async def run_theirs(n: int) -> None:
        for _ in range(n):
            theirs()

    return await compare(
        Side(run_ours, time.process_time),
        Side(run_theirs, time.process_time),
        ops=ops,
        rounds=rounds,
    )
