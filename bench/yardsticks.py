"""CPU yardsticks measured in the bench's own process, to hold a server's CPU against.

- the orjson floor: a workload's answer built as plain dicts from the raw (itemId,
  score) lists of one real answer, then `orjson.dumps`: the least any server must
  spend to produce that JSON;
- a stock aioboto3 client's CPU per GetRecommendations: what the naive subgraph's
  calls cost it, so that its CPU per query splits into calls and the rest.

Both are the least of three rounds: the work is the same every time, and contention
from other processes on a shared machine only ever adds.
"""

import asyncio
import time
from typing import Any

from bench.workloads import Workload
from tests.servers import AWS_TEST_ENV


def floor_ms(workload: Workload, data: dict[str, Any], min_cpu_s: float) -> float:
    """CPU ms to build the answer's JSON from its raw lists and orjson it, per query.

    The least of three rounds of at least `min_cpu_s` each: the work is the same every
    time, and contention from other processes on a shared machine only ever adds.
    """
    run = workload.floor(data)
    for _ in range(5):
        run()
    rounds = []
    for _ in range(3):
        reps = 0
        started = time.process_time()
        while True:
            for _ in range(10):
                run()
            reps += 10
            spent = time.process_time() - started
            if spent >= min_cpu_s and reps >= 50:
                rounds.append(spent * 1000 / reps)
                break
    return min(rounds)


async def client_cpu_per_call(emulator: str, calls: int) -> float:
    """CPU ms one aioboto3 client spends per GetRecommendations (in this process)."""
    import aioboto3

    session = aioboto3.Session()
    async with session.client(
        "personalize-runtime",
        region_name="us-east-1",
        endpoint_url=emulator,
        aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
    ) as client:
        arn = "arn:aws:personalize:us-east-1:000000000000:campaign/user-personalization"

        async def one(n: int) -> None:
            await client.get_recommendations(
                campaignArn=arn, userId=f"user-{n % 5000 + 1:04d}", numResults=25
            )

        await asyncio.gather(*(one(n) for n in range(10)))  # first-call costs out of the way
        # The least of three rounds: contention from other processes only ever adds.
        rounds = []
        for _ in range(3):
            started = time.process_time()
            for batch in range(0, calls, 10):
                await asyncio.gather(*(one(n) for n in range(batch, batch + 10)))
            rounds.append((time.process_time() - started) * 1000 / calls)
        return min(rounds)
