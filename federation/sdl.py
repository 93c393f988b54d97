"""The subgraph's SDL: print it, write it to schema.graphql, and compare it with the committed one.

`python -m federation.sdl write` regenerates schema.graphql (`make schema`);
`python -m federation.sdl check` exits non-zero when the schema drifted from the file,
naming every breaking change (graphql-core's find_breaking_changes) first.
"""

import argparse
import sys
from pathlib import Path

from graphql import BreakingChange, GraphQLSchema, build_ast_schema, find_breaking_changes, parse

from schema.build import build_schema
from settings import REPO_ROOT, Settings, load_settings

SDL_FILE = REPO_ROOT / "schema.graphql"


def current_sdl(settings: Settings) -> str:
    """What `_service { sdl }` answers for these settings, newline-terminated."""
    return build_schema(settings).as_str().rstrip("\n") + "\n"


def _as_schema(sdl: str) -> GraphQLSchema:
    # Federation directives (@key, @link...) are used but not defined in a subgraph's SDL.
    return build_ast_schema(parse(sdl), assume_valid_sdl=True)


def breaking_changes(old_sdl: str, new_sdl: str) -> list[BreakingChange]:
    """Changes in `new_sdl` that can break a client of `old_sdl`."""
    return find_breaking_changes(_as_schema(old_sdl), _as_schema(new_sdl))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m federation.sdl", description=__doc__)
    parser.add_argument("command", choices=["print", "write", "check"])
    parser.add_argument("--file", type=Path, default=SDL_FILE)
    args = parser.parse_args(argv)
    sdl = current_sdl(load_settings())
    if args.command == "print":
        sys.stdout.write(sdl)
        return 0
    if args.command == "write":
        args.file.write_text(sdl)
        print(f"wrote {args.file}")
        return 0
    committed = args.file.read_text() if args.file.exists() else ""
    if committed == sdl:
        print(f"{args.file.name} is up to date")
        return 0
    for change in breaking_changes(committed, sdl) if committed else []:
        print(f"BREAKING {change.type.name}: {change.description}")
    print(f"{args.file.name} is out of date: run `make schema` and commit it")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
