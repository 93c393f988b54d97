"""Fault injection in the HTTP emulator, observed through the real aioboto3 client.

Every random fate comes from the config's seed, so counts are asserted exactly
reproducible and only loosely against their rates; the only timing assertions are lower
bounds (a delay happened) and generous upper bounds (a hang did not outlive its client).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aioboto3
import httpx
import pytest
from aiobotocore.config import AioConfig
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from types_aiobotocore_personalize_runtime import PersonalizeRuntimeClient as Client

from local_personalize import ARN_PREFIX
from local_personalize.faults import FaultConfig, FaultConfigError
from tests.servers import REPO_ROOT, free_port, python, running

RFY = f"{ARN_PREFIX}recommender/recommended-for-you"
POP = f"{ARN_PREFIX}campaign/popularity"
RANK = f"{ARN_PREFIX}campaign/personalized-ranking"

ClientFactory = Callable[..., AbstractAsyncContextManager[Client]]


pytestmark = pytest.mark.usefixtures("clean_emulator")


@pytest.fixture
def make_client(base_url: str, monkeypatch: pytest.MonkeyPatch) -> ClientFactory:
    """aioboto3 clients on the emulator with one attempt (retries would hide the faults)."""
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    def make(read_timeout: float = 10.0) -> AbstractAsyncContextManager[Client]:
        config = AioConfig(
            retries={"mode": "standard", "total_max_attempts": 1},
            read_timeout=read_timeout,
            connect_timeout=5.0,
        )
        return aioboto3.Session().client(
            "personalize-runtime",
            endpoint_url=base_url,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=config,
        )

    return make


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[Client]:
    async with make_client() as c:
        yield c


async def configure(control: httpx.AsyncClient, **config: Any) -> dict[str, Any]:
    response = await control.post("/faults", json=config)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()["config"]
    return answer


async def faults(control: httpx.AsyncClient) -> dict[str, int]:
    counts: dict[str, int] = (await control.get("/stats")).json()["faults"]
    return counts


def error_of(exc: ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


async def test_throttle_is_a_429_throttling_exception(
    client: Client, control: httpx.AsyncClient
) -> None:
    await configure(control, throttle_rate=1)
    with pytest.raises(ClientError) as info:
        await client.get_recommendations(campaignArn=POP)
    assert error_of(info.value) == ("ThrottlingException", 429)
    assert (await faults(control))["throttle"] == 1


async def test_server_errors_alternate_500_and_503(
    client: Client, control: httpx.AsyncClient
) -> None:
    await configure(control, error_rate=1)
    seen = []
    for _ in range(3):
        with pytest.raises(ClientError) as info:
            await client.get_personalized_ranking(
                campaignArn=RANK, userId="user-0003", inputList=["item-0001"]
            )
        seen.append(error_of(info.value))
    assert seen == [("InternalFailure", 500), ("ServiceUnavailable", 503), ("InternalFailure", 500)]


async def test_a_hang_trips_the_read_timeout_and_ends_with_the_client(
    make_client: ClientFactory, control: httpx.AsyncClient
) -> None:
    await configure(control, timeout_rate=1, hang_ms=20_000)
    started = time.perf_counter()
    async with make_client(read_timeout=0.3) as impatient:
        with pytest.raises(ReadTimeoutError):
            await impatient.get_recommendations(campaignArn=POP)
    assert time.perf_counter() - started < 10
    # The emulator stops hanging once the client is gone, instead of holding a task for 20 s.
    deadline = time.monotonic() + 5
    while (await control.get("/stats")).json()["in_flight"]:
        assert time.monotonic() < deadline, "the hang outlived its client"
        await asyncio.sleep(0.02)
    assert (await faults(control))["timeout"] == 1


async def test_a_short_hang_still_answers(client: Client, control: httpx.AsyncClient) -> None:
    await configure(control, timeout_rate=1, hang_ms=50)
    answer = await client.get_recommendations(campaignArn=POP, numResults=3)
    assert len(answer["itemList"]) == 3


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_dropped_connection_is_connection_closed(
    client: Client, control: httpx.AsyncClient, base_url: str
) -> None:
    await configure(control, drop_rate=1)
    server_log = logging.getLogger("uvicorn.error")
    records = _Records()
    server_log.addHandler(records)
    try:
        with pytest.raises(ConnectionClosedError):
            await client.get_recommendations(campaignArn=POP)
        # On the wire: full Content-Length promised, half the body sent, connection closed.
        async with httpx.AsyncClient() as raw:
            with pytest.raises(httpx.RemoteProtocolError, match="complete message body"):
                await raw.post(f"{base_url}/recommendations", json={"campaignArn": POP})
    finally:
        server_log.removeHandler(records)
    assert records.records == []  # an injected drop is not a server error
    assert (await faults(control))["drop"] == 2


async def _call_many(client: Client, n: int, calls: int = 10) -> Counter[str]:
    """``n`` calls, ``calls`` at a time; what the client saw, by outcome."""
    gate = asyncio.Semaphore(calls)

    async def one() -> str:
        async with gate:
            try:
                await client.get_recommendations(campaignArn=POP, numResults=2)
            except ClientError as exc:
                return exc.response["Error"]["Code"]
            except ConnectionClosedError:
                return "drop"
            return "ok"

    return Counter(await asyncio.gather(*(one() for _ in range(n))))


async def _fates(control: httpx.AsyncClient) -> list[str | None]:
    recent = (await control.get("/requests")).json()["requests"]
    return [r["fault"] for r in recent]


RATES = {"throttle_rate": 0.2, "error_rate": 0.1, "timeout_rate": 0.05, "drop_rate": 0.05}


async def test_rates_are_respected_and_a_seed_repeats_its_sequence(
    client: Client, control: httpx.AsyncClient
) -> None:
    # A 1 ms hang: timeouts are counted without waiting for any read timeout.
    await configure(control, seed=1, hang_ms=1, **RATES)
    seen = await _call_many(client, 400)
    counts = await faults(control)
    # Binomial bands of about 4 sigma around 400 * rate (the seed makes them exact anyway).
    assert 50 <= counts["throttle"] <= 110
    assert 20 <= counts["error"] <= 60
    assert 6 <= counts["timeout"] <= 36
    assert 6 <= counts["drop"] <= 36
    # What the client saw is what the emulator says it did.
    assert seen["ThrottlingException"] == counts["throttle"]
    assert seen["InternalFailure"] + seen["ServiceUnavailable"] == counts["error"]
    assert seen["drop"] == counts["drop"]
    assert seen["ok"] == 400 - counts["throttle"] - counts["error"] - counts["drop"]
    first = await _fates(control)
    assert Counter(first)["timeout"] == counts["timeout"]

    # The same seed replays the same fates call for call (the RNG draws per arrival, so
    # even overlapping calls get the same sequence); another seed does not.
    await control.post("/reset")
    await configure(control, seed=1, hang_ms=1, **RATES)
    await _call_many(client, 100)
    assert await _fates(control) == first[:100]
    await control.post("/reset")
    await configure(control, seed=2, hang_ms=1, **RATES)
    await _call_many(client, 100)
    assert await _fates(control) != first[:100]


async def test_latency_is_lognormal_capped_and_spiky(
    client: Client, control: httpx.AsyncClient
) -> None:
    await configure(
        control,
        seed=3,
        latency={"median_ms": 20, "sigma": 0.5, "max_ms": 40, "spike_rate": 0.1, "spike_ms": 30},
    )
    await _call_many(client, 200, calls=20)
    recent = (await control.get("/requests")).json()["requests"]
    base = [r["delay_ms"] - 30 * r["spike"] for r in recent]
    assert 16 <= statistics.median(base) <= 25
    assert max(base) == 40  # P(delay > 2 x median) is 8%: some calls hit the cap
    assert min(base) < 12
    spikes = sum(r["spike"] for r in recent)
    assert 6 <= spikes <= 40
    stats = (await control.get("/stats")).json()
    assert stats["faults"]["spike"] == spikes
    assert stats["delay_ms"]["max"] == max(r["delay_ms"] for r in recent) <= 70
    assert stats["delay_ms"]["sum"] == pytest.approx(sum(r["delay_ms"] for r in recent), abs=0.5)


async def test_latency_comes_before_faults_too(client: Client, control: httpx.AsyncClient) -> None:
    await configure(control, latency={"median_ms": 150}, throttle_rate=1)
    started = time.perf_counter()
    with pytest.raises(ClientError):
        await client.get_recommendations(campaignArn=POP)
    assert time.perf_counter() - started >= 0.15


async def test_per_arn_overrides_hit_only_their_arn(
    client: Client, control: httpx.AsyncClient
) -> None:
    config = await configure(
        control,
        hang_ms=1234,
        per_arn={POP: {"throttle_rate": 1}, RFY: {"error_rate": 1}},
    )
    # An override replaces only the fields it gives.
    assert config["per_arn"][POP]["hang_ms"] == 1234
    with pytest.raises(ClientError) as info:
        await client.get_recommendations(campaignArn=POP)
    assert error_of(info.value) == ("ThrottlingException", 429)
    with pytest.raises(ClientError) as info:
        await client.get_recommendations(recommenderArn=RFY, userId="user-0003")
    assert error_of(info.value) == ("InternalFailure", 500)
    await client.get_personalized_ranking(
        campaignArn=RANK, userId="user-0003", inputList=["item-0001"]
    )
    await client.get_recommendations(
        recommenderArn=f"{ARN_PREFIX}recommender/best-sellers", numResults=1
    )
    assert await faults(control) == {
        "throttle": 1,
        "error": 1,
        "timeout": 0,
        "drop": 0,
        "rule": 0,
        "spike": 0,
    }


async def test_rules_win_over_random_faults(client: Client, control: httpx.AsyncClient) -> None:
    await configure(
        control,
        throttle_rate=1,
        rules=[{"match": {"userId": "user-0003"}, "error": "ResourceNotFoundException"}],
    )
    with pytest.raises(ClientError) as info:
        await client.get_recommendations(recommenderArn=RFY, userId="user-0003")
    assert error_of(info.value) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as info:
        await client.get_recommendations(recommenderArn=RFY, userId="user-0004")
    assert error_of(info.value) == ("ThrottlingException", 429)
    counts = await faults(control)
    assert (counts["rule"], counts["throttle"]) == (1, 1)


async def test_a_config_replaces_the_last_and_reset_clears_everything(
    client: Client, control: httpx.AsyncClient
) -> None:
    await configure(control, throttle_rate=1, delay_ms=5)
    with pytest.raises(ClientError):
        await client.get_recommendations(campaignArn=POP)
    config = await configure(control, rules=[])
    assert (config["throttle_rate"], config["latency"]["median_ms"]) == (0, 0)
    await client.get_recommendations(campaignArn=POP)
    await configure(control, drop_rate=1)
    (await control.post("/reset")).raise_for_status()
    stats = (await control.get("/stats")).json()
    assert stats["total"] == 0
    assert set(stats["faults"].values()) == {0}
    assert stats["delay_ms"] == {"sum": 0, "max": 0}
    assert (await control.get("/faults")).json()["config"]["drop_rate"] == 0
    await client.get_recommendations(campaignArn=POP)


BAD_CONFIGS: list[tuple[Any, str]] = [
    ({"throttle_rate": 1.5}, "throttle_rate must be a number in [0, 1], got 1.5"),
    ({"error_rate": True}, "error_rate must be a number"),
    ({"drop_rate": "0.1"}, "drop_rate must be a number"),
    ({"throttle_rate": 0.6, "error_rate": 0.5}, "fault rates of the config add up to 1.1"),
    ({"delay_ms": -1}, "delay_ms must be a number in [0, 3600000]"),
    ({"delay_ms": 5, "latency": {"median_ms": 5}}, "give delay_ms or latency, not both"),
    ({"latency": {"median_ms": 10, "max_ms": 5}}, "latency.max_ms must be >= latency.median_ms"),
    ({"latency": {"sigma": -0.5}}, "latency.sigma must be a number in [0, 10]"),
    ({"latency": {"median": 10}}, "unknown field 'median' in latency"),
    ({"latency": {"spike_rate": 0.1}}, "latency.spike_rate needs latency.spike_ms > 0"),
    ({"latency": 20}, "latency must be a JSON object"),
    ({"timeout_rate": 0.1, "hang_ms": 0}, "timeout_rate needs hang_ms > 0"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"drop": 0.1}, "unknown field 'drop' in the config"),
    ({"per_arn": {"popularity": {}}}, "'popularity' is not a Personalize campaign or recommender"),
    ({"per_arn": {POP: {"seed": 1}}}, f"unknown field 'seed' in per_arn['{POP}']"),
    ({"per_arn": {POP: {"rules": []}}}, "unknown field 'rules'"),
    (
        {"throttle_rate": 0.5, "per_arn": {POP: {"error_rate": 0.6}}},
        f"fault rates of per_arn['{POP}'] add up to 1.1",
    ),
    ({"per_arn": {POP: {"latency": {"sigma": 11}}}}, f"per_arn['{POP}'].latency.sigma"),
    ({"rules": {}}, "rules must be a list"),
    ({"rules": [{"match": {}}]}, "a rule needs a 'match' object and an 'error' code"),
    ([], "the config must be a JSON object"),
]


@pytest.mark.parametrize(("config", "message"), BAD_CONFIGS)
async def test_bad_configs_are_rejected_with_a_reason(
    control: httpx.AsyncClient, config: Any, message: str
) -> None:
    await configure(control, throttle_rate=0.25)
    response = await control.post("/faults", json=config)
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "InvalidInputException"
    assert message in response.json()["message"]
    # A rejected config changes nothing.
    assert (await control.get("/faults")).json()["config"]["throttle_rate"] == 0.25


async def test_body_that_is_not_json_is_rejected(control: httpx.AsyncClient) -> None:
    response = await control.post("/faults", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["message"].startswith("Bad fault config:")


def test_serve_starts_with_a_faults_file(tmp_path: Path) -> None:
    faults_file = tmp_path / "faults.json"
    faults_file.write_text(f'{{"seed": 5, "per_arn": {{"{POP}": {{"throttle_rate": 1}}}}}}')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "local_personalize", "serve", "--port", str(port), "--faults", str(faults_file)]
    with running(python(*args), f"{url}/_emulator/health", tmp_path / "emulator.log"):
        assert httpx.get(f"{url}/_emulator/faults").json()["config"]["seed"] == 5
        throttled = httpx.post(f"{url}/recommendations", json={"campaignArn": POP})
        assert throttled.status_code == 429
        assert throttled.headers["x-amzn-ErrorType"] == "ThrottlingException"
        # Reset goes back to the start-up config, not to no faults at all.
        httpx.post(f"{url}/_emulator/reset").raise_for_status()
        again = httpx.post(f"{url}/recommendations", json={"campaignArn": POP})
        assert again.status_code == 429


def test_serve_refuses_a_bad_faults_file(tmp_path: Path) -> None:
    faults_file = tmp_path / "faults.json"
    faults_file.write_text('{"error_rate": 2}')
    done = subprocess.run(
        [sys.executable, "-m", "local_personalize", "serve", "--faults", str(faults_file)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"{faults_file}: error_rate must be a number in [0, 1], got 2" in done.stderr


def test_unreadable_faults_files_say_why(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(FaultConfigError, match=f"cannot read {missing}"):
        FaultConfig.load(missing)
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    with pytest.raises(FaultConfigError, match=f"{garbled} is not valid JSON"):
        FaultConfig.load(garbled)


async def test_the_request_log_shows_when_each_call_arrived_and_was_answered(
    client: Client, control: httpx.AsyncClient
) -> None:
    # Three calls at once with 150 ms each, then one after them: the log shows the
    # three overlapping and the fourth after them.
    await configure(control, delay_ms=150)
    await asyncio.gather(
        *(client.get_recommendations(campaignArn=POP, numResults=n) for n in (1, 2, 3))
    )
    await client.get_recommendations(campaignArn=POP, numResults=4)
    recent = (await control.get("/requests")).json()["requests"]
    assert len(recent) == 4
    together, after = recent[:3], recent[3]
    for entry in recent:
        # asyncio may end a sleep up to its clock's resolution early (149.7 ms seen here).
        assert entry["answered"] - entry["arrived"] >= 0.15 - 0.005, entry
    assert max(e["arrived"] for e in together) < min(e["answered"] for e in together)
    assert after["arrived"] >= max(e["answered"] for e in together)
