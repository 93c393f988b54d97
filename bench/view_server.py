"""`python -m bench.view_server --view VIEW --port N`: the app on uvicorn with one /graphql view.

VIEW is ours, strawberry or strawberry-orjson. The subgraph's app (`server.create_app`)
with `bench.home_at_hand`'s settings (every use case cached, the compiled path off), its
/graphql served by the subgraph's own `GraphQLEndpoint` (ours) or by Strawberry's view
(`bench.strawberry_view`; stock JSON, or orjson through its `encode_json` hook). One
worker on uvicorn, as `python server.py` runs it (uvloop and httptools, the app's log
configuration); the environment names the Personalize endpoint.
"""

import argparse

import uvicorn

from bench.home_at_hand import cached_settings
from bench.strawberry_view import mount_strawberry
from observability.logs import log_config

VIEWS = ("ours", "strawberry", "strawberry-orjson")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.view_server", description=__doc__)
    parser.add_argument("--view", choices=VIEWS, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    import server  # the app's wiring, after argparse (--help builds nothing)

    settings = cached_settings()
    app = server.create_app(settings)
    if args.view != "ours":
        mount_strawberry(app, fast_json=args.view == "strawberry-orjson")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        log_config=log_config(settings.log_format, settings.log_level),
    )


if __name__ == "__main__":
    main()
