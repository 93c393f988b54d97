"""`python -m bench.libraries`: each hand-written component against the library it stands in for.

``python -m bench.libraries [--rounds 5] [--quick]`` (repo root, about 2.5 minutes)

Issue 15 asks to keep a hand-written component only where the library's cost matters.
This measures, side by side in one run, the CPU per operation of each one and of its
library, in interleaved rounds (the side that goes first changes every round; the
figure of a side is the median of its rounds, the ratio library/ours of the medians,
and the range of the single rounds' ratios is printed beside it):

- Personalize client: `DirectPersonalizeBackend` against aioboto3 (`PersonalizeBackend`);
  one GetRecommendations to the emulator, one at a time and 8 at a time; this process's CPU;
- HTTP/1.1 client: `backends.http1.Pool` against aiohttp; one signed POST of that call;
- SigV4 signer: `backends.signing.Signer` against botocore's `SigV4Auth.add_auth`;
- document cache: `DocumentCache` against Strawberry's `ParserCache` + `ValidationCache`;
  one `schema.execute` of the cached home query, in this process;
- token limit: no longer compared: the run of 01b4196 found `MaxTokensLimiter` as cheap
  as the hand-written `TokenLimit` and answering alike, so the schema now uses it;
- control: our schema against a second build of it, the same again: what the method
  gives two identical sides (its noise);
- /graphql view: `GraphQLEndpoint` against `strawberry.asgi.GraphQL` (stock, and with
  orjson); one home request, and one `{ __typename }` (the view's own share), over HTTP
  to uvicorn; the server's CPU, from /proc.

The worker supervisor is not timed: `bench.worker_sockets` reads the installed uvicorn.
The parts: `bench.side_by_side` (the rounds), `bench.client_cost`, `bench.signing_cost`,
`bench.extension_swaps`, `bench.view_cost` (with `bench.view_server` and
`bench.strawberry_view`), `bench.home_at_hand` (the settings and context of the schema
and view comparisons: every answer cached, the compiled path off).

The emulator answers without delay (`--delay-ms 0`); the client's CPU is this process's
and excludes it. A verdict says "keep" when the library costs at least
`bench.library_report.KEEP_RATIO` times ours in the median and more than ours in every
round, and "replace" otherwise, unless the library behaves differently (then it says how).
"""

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import uvloop

from bench.client_cost import http_clients, personalize_clients
from bench.extension_swaps import strawberry_caches, subgraph_schema, swap
from bench.home_at_hand import cached_settings, home_body, operation_contexts
from bench.library_report import InProcess, Results, report
from bench.processes import running, start_emulator
from bench.provenance import where
from bench.side_by_side import Comparison
from bench.signing_cost import signers
from bench.view_cost import (
    TYPENAME_BODY,
    behaviour_differences,
    start_view_servers,
    view_costs,
)
from bench.worker_sockets import uvicorn_workers
from settings import load_settings
from tests.servers import AWS_TEST_ENV

CONCURRENCIES = (1, 8)
# Keep-alive connections sending requests to a view server at once.
VIEW_CONCURRENCY = 4


@dataclass(frozen=True)
class Sizes:
    """The rounds of every comparison, and the operations of one round of each."""

    rounds: int
    calls: int
    signatures: int
    operations: int
    requests: int
    # `{ __typename }` costs a server a tenth of a home request: more of them, so that a
    # round's CPU spans enough /proc clock ticks (10 ms each).
    bare_requests: int

    def quick(self) -> "Sizes":
        """3 rounds of a fifth of the work: a smoke run."""
        return Sizes(
            3,
            *(
                max(20, n // 5)
                for n in (
                    self.calls,
                    self.signatures,
                    self.operations,
                    self.requests,
                    self.bare_requests,
                )
            ),
        )


FULL = Sizes(
    rounds=5, calls=800, signatures=6_000, operations=400, requests=800, bare_requests=5_000
)


class _Progress:
    """One line per finished comparison, with the time since the start."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"  {time.monotonic() - self._started:5.0f} s  {message}", flush=True)


def _ratios(found: dict[int, Comparison]) -> str:
    return ", ".join(f"c={c} {comparison.ratio:.2f}x" for c, comparison in found.items())


def _collector_as_the_app() -> None:
    """The cyclic collector as server.py's lifespan sets it, for what runs in this process.

    Clients and schemas that leave more garbage pay for its collection here as they
    would in the app, no more (the app freezes its long-lived objects and collects the
    young generation only every 10,000 net allocations).
    """
    import server  # the app's wiring; nothing happens at import time

    gc.collect()
    gc.freeze()
    gc.set_threshold(server.GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


async def _in_process(sizes: Sizes, emulator: str, progress: _Progress) -> InProcess:
    settings = load_settings()
    _collector_as_the_app()
    signing = await signers(settings, emulator, sizes.signatures, sizes.rounds)
    progress(f"SigV4 signer: {signing.ratio:.2f}x")
    clients = await personalize_clients(settings, sizes.calls, sizes.rounds, CONCURRENCIES)
    progress("Personalize client: " + _ratios(clients))
    http = {
        c: await http_clients(settings, emulator, sizes.calls, sizes.rounds, c)
        for c in CONCURRENCIES
    }
    progress("HTTP/1.1 client: " + _ratios(http))
    cached = cached_settings()
    async with operation_contexts(cached) as context:
        ours = subgraph_schema(cached)
        swaps = []
        for name, library in (
            ("document cache", strawberry_caches(cached)),
            ("control (ours twice)", subgraph_schema(cached)),
        ):
            found = await swap(
                ours, library, cached, context, ops=sizes.operations, rounds=sizes.rounds
            )
            progress(f"{name}: {found.comparison.ratio:.2f}x")
            swaps.append(found)
    documents, control = swaps
    return InProcess(clients, http, signing, documents, control)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.libraries", description=__doc__)
    parser.add_argument("--rounds", type=int, default=FULL.rounds)
    parser.add_argument("--quick", action="store_true", help="3 rounds of a fifth of the work")
    args = parser.parse_args(argv)
    sizes = FULL.quick() if args.quick else replace(FULL, rounds=args.rounds)
    logs = Path(tempfile.mkdtemp(prefix="bench-libraries-"))
    print(f"bench.libraries: {sizes.rounds} interleaved rounds per comparison; {where(logs)}")
    progress = _Progress()
    emulator, emulator_url = start_emulator(logs, 0.0)
    servers = {s.view: s for s in start_view_servers(logs, emulator_url)}
    with running([emulator, *(s.proc for s in servers.values())]):
        # The app's settings for the in-process parts: the emulator as Personalize.
        os.environ.update(AWS_TEST_ENV)
        os.environ["SUBGRAPH_BACKEND"] = "personalize"
        os.environ["SUBGRAPH_PERSONALIZE__ENDPOINT_URL"] = emulator_url
        os.environ["LOG_LEVEL"] = "WARNING"
        progress("emulator and view servers ready")
        in_process = uvloop.run(_in_process(sizes, emulator_url, progress))
        views = {}
        for request, body, count in (
            ("home", home_body(), sizes.requests),
            ("{ __typename }", TYPENAME_BODY, sizes.bare_requests),
        ):
            views[request] = found = uvloop.run(
                view_costs(
                    servers,
                    emulator_url,
                    body,
                    requests=count,
                    rounds=sizes.rounds,
                    concurrency=VIEW_CONCURRENCY,
                )
            )
            ratios = ", ".join(f"{v} {c.ratio:.2f}x" for v, c in found.against.items())
            progress(f"/graphql view, {request}: {ratios}")
        libraries = [view for view in servers if view != "ours"]
        differences = {v: uvloop.run(behaviour_differences(servers, v)) for v in libraries}
    report(Results(in_process, views, differences, uvicorn_workers()))
    progress("done")


if __name__ == "__main__":
    main()
