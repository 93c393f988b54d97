"""The committed SDL stays in step with the code, and breaking changes are named."""

from federation.sdl import SDL_FILE, breaking_changes, current_sdl
from settings import load_settings


def test_committed_sdl_matches_the_schema() -> None:
    committed = SDL_FILE.read_text()
    current = current_sdl(load_settings())
    changes = [f"{c.type.name}: {c.description}" for c in breaking_changes(committed, current)]
    assert not changes, f"breaking changes against schema.graphql: {changes}"
    assert committed == current, "schema.graphql is out of date: run `make schema` and commit it"


def test_breaking_changes_are_reported_by_name() -> None:
    sdl = current_sdl(load_settings())
    narrowed = sdl.replace("numResults: Int = 25", "numResults: Int! = 25", 1)
    renamed = sdl.replace("  RECOMMENDED_FOR_YOU\n", "  RECOMMENDED_FOR_ME\n", 1)
    assert narrowed != sdl
    assert renamed != sdl
    assert {c.type.name for c in breaking_changes(sdl, narrowed)} == {"ARG_CHANGED_KIND"}
    names = {c.type.name for c in breaking_changes(sdl, renamed)}
    assert "VALUE_REMOVED_FROM_ENUM" in names
    assert breaking_changes(sdl, sdl) == []
