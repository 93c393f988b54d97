"""Command line for the embedded engine.

``python -m local_personalize serve [--resources FILE] [--faults FILE] --port 8765`` runs
the emulator (the built-in demo unless a resources file is given; ``--faults`` starts it
with the fault config of ``POST /_emulator/faults``); ``python -m local_personalize
evaluate [--resources FILE]`` prints Personalize's offline metrics for every campaign
and recommender next to a popularity baseline; ``python -m local_personalize items
--format json [--resources FILE]`` prints the Items dataset's ids, titles, categories and
prices, the catalog the federation test subgraph (``federation/catalog.mjs``) serves.

A mistake in a file given on the command line (a resources file, a dataset or schema it
names, a fault config) ends the command with one line on stderr naming the file, and
exit status 2.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import socket
import sys
from collections.abc import Sequence

import uvicorn

from .data import Dataset, generate_demo_dataset
from .datasets import DatasetError, DatasetFileError, SchemaError
from .emulator import create_app
from .engine import Engine
from .evaluation import evaluate_resources, format_table
from .faults import FaultConfig, FaultConfigError
from .resources import DEMO_RESOURCES, ResourcesFileError, load_resources

# What loading a resources file and its datasets raises for a mistake in the files; any
# other exception is a bug, and its traceback is wanted.
FILE_ERRORS = (ResourcesFileError, SchemaError, DatasetFileError, DatasetError)


def _one_line(exc: ValueError) -> str:
    # A strict load lists every rejected row, one per line; the first row says what to fix.
    return exc.summary if isinstance(exc, DatasetError) else str(exc)


def _serve(args: argparse.Namespace) -> int:
    # Checked before the engine is built, so a bad file fails in a moment, not seconds.
    if args.faults is not None and args.delay_ms:
        return _fail("give --delay-ms or --faults, not both (delay_ms can go in the file)")
    try:
        faults = (
            FaultConfig.load(args.faults)
            if args.faults is not None
            else FaultConfig.parse({"delay_ms": args.delay_ms})
        )
    except FaultConfigError as exc:
        return _fail(f"bad --faults file: {exc}" if args.faults else f"bad --delay-ms: {exc}")
    try:
        engine = (
            Engine.from_resources(args.resources)
            if args.resources is not None
            else Engine.demo(seed=args.seed)
        )
    except FILE_ERRORS as exc:
        return _fail(_one_line(exc))
    secrets = None
    if args.verify_signatures:
        # The credentials in this process's environment are the ones clients must sign with.
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not key or not secret:
            return _fail("--verify-signatures needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        secrets = {key: secret}
    app = create_app(engine, faults=faults, signing_secrets=secrets)
    _settle_heap()
    # Binding before announcing means the printed address already accepts connections,
    # so scripts can wait for the line instead of polling; port 0 picks a free port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:  # a port in use, a host that is not this machine's
        sock.close()
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    sock.listen(2048)
    sock.set_inheritable(True)
    host, port = sock.getsockname()[:2]
    print(f"local_personalize listening on http://{host}:{port}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, access_log=False))
    server.run(sockets=[sock])
    return 0


# The cyclic collector's young-generation threshold once serving (CPython's default: 700).
GC_YOUNG_THRESHOLD = 10_000


def _settle_heap() -> None:
    """Keep the engine out of the cyclic collector's scans from now on.

    The demo engine is tens of thousands of tracked objects that live as long as the
    process. Unfrozen, every full collection scans them all, holding up every answer
    falling due meanwhile. Frozen, and with the young generation's threshold raised
    (an answer leaves no reference cycle behind, so its objects go by reference
    counting), collections are rare and short (figures in bench/README.md, "The
    collector").
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _fail(message: str, command: str = "serve") -> int:
    print(f"python -m local_personalize {command}: error: {message}", file=sys.stderr)
    return 2


def _evaluate(args: argparse.Namespace) -> int:
    if args.resources is not None:
        try:
            spec = load_resources(args.resources)
            dataset, resources = spec.dataset.load(), spec.resources
        except FILE_ERRORS as exc:
            return _fail(_one_line(exc), "evaluate")
    else:
        dataset, resources = generate_demo_dataset(args.seed), DEMO_RESOURCES
    rows = evaluate_resources(dataset, resources, n_users=args.users, seed=args.split_seed)
    print(
        f"{len(dataset.interactions)} interactions, {len(dataset.items)} items; newest 10% of "
        f"{args.users} users' events held out; metrics over top-25 lists"
    )
    print(format_table(rows))
    return 0


ITEM_FIELDS = {"title": "TITLE", "category": "CATEGORY", "price": "PRICE"}
"""The catalog's item fields and the Items columns they come from."""
ITEM_FORMATS = ("json",)


def item_catalog(dataset: Dataset) -> list[dict[str, str | float | None]]:
    """One entry per item: its id, and title, category and price (None without the column)."""
    columns = dataset.items.columns
    out: list[dict[str, str | float | None]] = []
    for i, item_id in enumerate(dataset.items.ids):
        entry: dict[str, str | float | None] = {"id": item_id}
        for field, name in ITEM_FIELDS.items():
            column = columns.get(name)
            value: str | float | None = None
            if column is not None and column.numbers is not None:
                number = float(column.numbers[i])
                value = None if math.isnan(number) else number
            elif column is not None:
                value = column.strings[i] or None
            entry[field] = value
        out.append(entry)
    return out


def _items(args: argparse.Namespace) -> int:
    if args.format not in ITEM_FORMATS:
        return _fail(f"unknown --format {args.format!r}; known: {', '.join(ITEM_FORMATS)}", "items")
    if args.resources is not None:
        try:
            dataset = load_resources(args.resources).dataset.load()
        except FILE_ERRORS as exc:
            return _fail(_one_line(exc), "items")
    else:
        dataset = generate_demo_dataset(args.seed)
    json.dump({"items": item_catalog(dataset)}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subcommand per action."""
    parser = argparse.ArgumentParser(
        prog="python -m local_personalize",
        description="Embedded Amazon Personalize Runtime (offline demo engine and emulator).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the Personalize Runtime HTTP API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="response time of every operation call, from its arrival (ms)",
    )
    serve.add_argument("--seed", type=int, default=7, help="demo data seed")
    serve.add_argument("--resources", help="TOML resources file (default: built-in demo)")
    serve.add_argument(
        "--faults", help="JSON fault config to start with (the body of POST /_emulator/faults)"
    )
    serve.add_argument("--log-level", default="warning")
    serve.add_argument(
        "--verify-signatures",
        action="store_true",
        help="refuse calls not signed (SigV4) with the AWS_* credentials in the environment",
    )
    serve.set_defaults(func=_serve)
    evaluate = sub.add_parser("evaluate", help="offline metrics for every campaign/recommender")
    evaluate.add_argument("--resources", help="TOML resources file (default: built-in demo)")
    evaluate.add_argument("--seed", type=int, default=7, help="demo data seed")
    evaluate.add_argument("--users", type=int, default=1000, help="held-out users")
    evaluate.add_argument("--split-seed", type=int, default=0, help="held-out user sample")
    evaluate.set_defaults(func=_evaluate)
    items = sub.add_parser("items", help="print the items' ids, titles, categories and prices")
    items.add_argument("--format", default="json", help="output format: json (the default)")
    items.add_argument("--resources", help="TOML resources file (default: built-in demo)")
    items.add_argument("--seed", type=int, default=7, help="demo data seed")
    items.set_defaults(func=_items)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
