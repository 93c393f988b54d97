"""What `python -m bench.libraries` prints: the table, a verdict per component, the behaviour.

A verdict says "keep" when the library costs at least `KEEP_RATIO` times ours in the
median and more than ours in every single round; otherwise the library is as cheap,
and the verdict says "replace", unless the library answers differently (then it says
so and why). Each verdict is one line, written to be pasted into ARCHITECTURE.md.
"""

from dataclasses import dataclass

from bench.extension_swaps import Swap
from bench.side_by_side import Comparison
from bench.view_cost import ODD_REQUESTS, ViewCosts
from bench.worker_sockets import UvicornWorkers

# The library must cost this many times ours, and more than ours in every round, to keep ours.
KEEP_RATIO = 1.2


@dataclass(frozen=True)
class InProcess:
    """The comparisons measured in the bench's own process."""

    clients: dict[int, Comparison]
    http: dict[int, Comparison]
    signing: Comparison
    documents: Swap
    # Our schema against a second build of it: what the method gives two identical sides.
    control: Swap


@dataclass(frozen=True)
class Results:
    """Everything one run found."""

    in_process: InProcess
    # By request: "home" and "{ __typename }".
    views: dict[str, ViewCosts]
    # Per library view: one line per odd request it answers differently from ours.
    view_differences: dict[str, list[str]]
    workers: UvicornWorkers


def _keeps(comparison: Comparison) -> bool:
    return comparison.ratio >= KEEP_RATIO and comparison.round_ratios[0] > 1.0


def _us(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def _cost(comparison: Comparison, library: str, ours: str, per: str) -> str:
    return (
        f"{library} costs {comparison.ratio:.2f}x {ours}'s CPU per {per} "
        f"({_us(comparison.library_us)} vs {_us(comparison.ours_us)} µs"
    )


def _speed(comparison: Comparison) -> str:
    return "keep: " if _keeps(comparison) else "the library is as cheap: replace; "


def _client_verdicts(p: InProcess) -> list[tuple[str, str]]:
    found = []
    for component, by_concurrency, library, ours, per in (
        ("Personalize client", p.clients, "aioboto3", "the direct client", "GetRecommendations"),
        ("HTTP/1.1 client", p.http, "aiohttp", "backends/http1.py", "signed POST"),
    ):
        one, most = by_concurrency[1], max(by_concurrency)
        many = by_concurrency[most]
        kept = _keeps(one) and _keeps(many)
        found.append(
            (
                component,
                ("keep: " if kept else "the library is as cheap: replace; ")
                + _cost(one, library, ours, per)
                + f" one at a time; {many.ratio:.2f}x at concurrency {most})",
            )
        )
    found.append(
        (
            "SigV4 signer",
            _speed(p.signing)
            + _cost(p.signing, "botocore's SigV4Auth.add_auth", "backends/signing.py", "signature")
            + ")",
        )
    )
    return found


def _schema_verdicts(p: InProcess) -> list[tuple[str, str]]:
    control = f"control {p.control.comparison.ratio:.2f}x"
    docs = p.documents.comparison
    cost = _cost(docs, "ParserCache + ValidationCache", "DocumentCache", "home operation")
    reasons = ["the compiled path keeps its plans in DocumentStore, which only DocumentCache fills"]
    if p.documents.differences:
        reasons.insert(
            0, "with Strawberry's caches, syntax and token-limit errors lose extensions.code"
        )
    documents = (
        ("keep: " if _keeps(docs) else "as cheap, but keep for behaviour: ")
        + f"{cost}, compiled path off, {control}); "
        + "; ".join(reasons)
    )
    return [("document cache", documents)]


def _view_verdict(r: Results) -> str:
    # The view's own cost is what `{ __typename }` shows; a home request adds about 2 ms
    # of graphql-core execution (compiled path off) that both sides spend alike.
    home, bare = r.views["home"].against, r.views["{ __typename }"].against
    fast = bare["strawberry-orjson"]
    odd = len(r.view_differences["strawberry-orjson"])
    verdict = "keep: " if _keeps(fast) else "as cheap"
    if not _keeps(fast):
        verdict += ", but keep for behaviour: " if odd else ": replace; "
    extra = home["strawberry-orjson"].library_us - home["strawberry-orjson"].ours_us
    return (
        verdict
        + _cost(fast, "strawberry.asgi.GraphQL", "GraphQLEndpoint", "{ __typename } request")
        + f", server CPU; per home request {home['strawberry-orjson'].ratio:.2f}x, "
        f"{extra:+,.0f} µs, with orjson as ours, {home['strawberry'].ratio:.2f}x stock); "
        f"it answers {odd} of {len(ODD_REQUESTS)} malformed or refused requests "
        "differently (below), and only our view calls the compiled path"
    )


def _worker_verdict(w: UvicornWorkers) -> str:
    if not w.binds_reuseport and w.shares_sockets:
        return (
            f"keep: uvicorn {w.version}'s --workers binds one socket (Config.bind_socket: "
            "SO_REUSEADDR, no SO_REUSEPORT) and hands that same socket to every worker "
            "(Multiprocess: Process(config, sockets)), so it would lose the socket per worker "
            "and a gateway's burst of keep-alive connections would stay on the worker that "
            "accepted first"
        )
    return (
        f"recheck: uvicorn {w.version} binds SO_REUSEPORT: {w.binds_reuseport}; gives every "
        f"worker the same sockets: {w.shares_sockets}; its --workers may now do it"
    )


def verdicts(r: Results) -> list[tuple[str, str]]:
    """(component, one line) for every component of the issue."""
    return [
        *_client_verdicts(r.in_process),
        *_schema_verdicts(r.in_process),
        ("/graphql view", _view_verdict(r)),
        ("worker supervisor", _worker_verdict(r.workers)),
    ]


def _row(component: str, unit: str, comparison: Comparison) -> str:
    low, high = comparison.round_ratios
    return (
        f"| {component} | {unit} | {_us(comparison.ours_us)} | {_us(comparison.library_us)} "
        f"| {comparison.ratio:.2f}x | {low:.2f}-{high:.2f}x |"
    )


def _table(r: Results) -> None:
    p = r.in_process
    print("| component | CPU per | ours µs | library µs | library/ours | rounds |")
    print("|---|---|---|---|---|---|")
    for c, comparison in p.clients.items():
        print(_row(f"Personalize client (aioboto3), c={c}", "call, bench process", comparison))
    for c, comparison in p.http.items():
        print(_row(f"HTTP/1.1 client alone (aiohttp), c={c}", "POST, bench process", comparison))
    print(_row("SigV4 signer (botocore)", "signature, bench process", p.signing))
    for name, found in (
        ("document cache (ParserCache + ValidationCache)", p.documents),
        ("control: our schema, a second build", p.control),
    ):
        print(_row(name, "home op, bench process", found.comparison))
    for request, costs in r.views.items():
        for view, comparison in costs.against.items():
            print(_row(f"/graphql view ({view})", f"{request} request, server", comparison))
    print("| worker supervisor | not timed (sockets, not CPU) | | | | |")


def report(r: Results) -> None:
    """The table, the verdicts and the behaviour differences."""
    print()
    _table(r)
    print()
    print(
        "ours: the hand-written component; library: what it stands in for (in brackets); µs: "
        "CPU microseconds per operation, median of the rounds; library/ours: of the medians; "
        "rounds: the least and greatest library/ours of a single round. The schema and view "
        "rows run with server.compiled_path = false (the compiled path bypasses both) and "
        f"every answer cached ({sum(v.calls for v in r.views.values())} Personalize calls while "
        "the views were measured)."
    )
    print()
    print("Verdicts:")
    for component, line in verdicts(r):
        print(f"  {component}: {line}")
    print()
    print("Behaviour (refused documents through both schemas; odd requests to both views):")
    p = r.in_process
    views: dict[tuple[str, ...], list[str]] = {}
    for view, differences in r.view_differences.items():
        views.setdefault(tuple(differences), []).append(view)
    for what, lines in (
        ("document cache", p.documents.differences),
        *((f"view {' and '.join(names)}", found) for found, names in views.items()),
    ):
        if not lines:
            print(f"  {what}: the same errors, codes and messages as ours")
        for line in lines:
            print(f"  {what}: {line}")
