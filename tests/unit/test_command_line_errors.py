"""Each mistake a person can make on a command line: one line on stderr, exit status 2.

Every test runs the command as a user types it, in a real subprocess, and checks that
stderr is a single line naming the file (and row, column or position where known), with
no traceback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from settings import DEMO_CONFIG, REPO_ROOT

SERVE = ("-m", "local_personalize", "serve", "--port", "0")
EVALUATE = ("-m", "local_personalize", "evaluate")
LIST_ITEMS = ("-m", "local_personalize", "items", "--format", "json")
OWNER_CHECK = ("-m", "federation.owner_check")


def run(*args: str, config: Path = DEMO_CONFIG) -> subprocess.CompletedProcess[str]:
    """`python *args` from the repository's root, with the given subgraph config."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env={**os.environ, "SUBGRAPH_CONFIG": str(config)},
        capture_output=True,
        text=True,
        # A command that wrongly starts serving is cut short and fails the test.
        timeout=60,
        check=False,
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single line on stderr of a command refused with status 2."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.returncode == 2, proc.stderr
    return lines[0]


def schema(name: str, fields: list[tuple[str, object]]) -> str:
    return json.dumps(
        {
            "type": "record",
            "name": name,
            "fields": [{"name": n, "type": t} for n, t in fields],
            "version": "1.0",
        }
    )


INTERACTIONS = "USER_ID,ITEM_ID,TIMESTAMP\nu1,a,1000\nu2,b,1001\nu1,b,1002\n"
ITEMS = "ITEM_ID,YEAR\na,1999\nb,2001\n"


def resources(
    tmp_path: Path,
    *,
    interactions: str = INTERACTIONS,
    items: str = ITEMS,
    items_path: str = "data/items.csv",
    items_schema: str = "data/items.json",
    extra: str = "",
) -> Path:
    """A resources file over small CSV datasets in tmp_path, which serves when untouched."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "i.csv").write_text(interactions, encoding="utf-8")
    (data / "i.json").write_text(
        schema(
            "Interactions", [("USER_ID", "string"), ("ITEM_ID", "string"), ("TIMESTAMP", "long")]
        )
    )
    (data / "items.csv").write_text(items, encoding="utf-8")
    (data / "items.json").write_text(
        schema("Items", [("ITEM_ID", "string"), ("YEAR", ["null", "int"])])
    )
    path = tmp_path / "resources.toml"
    path.write_text(
        f"""
[datasets.interactions]
path = "data/i.csv"
schema = "data/i.json"

[datasets.items]
path = "{items_path}"
schema = "{items_schema}"

[[campaigns]]
name = "popular"
recipe = "aws-popularity-count"
{extra}"""
    )
    return path


# --- python -m local_personalize serve / evaluate --resources FILE ------------------------


@pytest.mark.parametrize(
    "command", [SERVE, EVALUATE, LIST_ITEMS], ids=["serve", "evaluate", "items"]
)
def test_a_bad_dataset_row_is_named_by_file_line_and_column(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    path = resources(tmp_path, items="ITEM_ID,YEAR\na,1999\nb,unkonwn\nc,x\n")
    line = one_line(run(*command, "--resources", str(path)))
    items = tmp_path / "data" / "items.csv"
    assert line.endswith(
        f"{items}:3: column YEAR: 'unkonwn' is not a valid int (and 1 more row(s) rejected)"
    )
    assert line.startswith(f"python -m local_personalize {command[2]}: error: ")


@pytest.mark.parametrize(
    "command", [SERVE, EVALUATE, LIST_ITEMS], ids=["serve", "evaluate", "items"]
)
def test_a_missing_resources_file_is_named(tmp_path: Path, command: tuple[str, ...]) -> None:
    missing = tmp_path / "nowhere.toml"
    line = one_line(run(*command, "--resources", str(missing)))
    assert line.endswith(f"error: cannot read {missing}: No such file or directory")


def test_an_unknown_items_format_is_named() -> None:
    line = one_line(run("-m", "local_personalize", "items", "--format", "xml"))
    assert line == "python -m local_personalize items: error: unknown --format 'xml'; known: json"


def test_a_resources_file_that_is_a_directory_is_named(tmp_path: Path) -> None:
    line = one_line(run(*SERVE, "--resources", str(tmp_path)))
    assert line.endswith(f"error: cannot read {tmp_path}: Is a directory")


def test_a_malformed_resources_file_is_named_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "resources.toml"
    path.write_text('[[campaigns]\nname = "x"\n')
    line = one_line(run(*SERVE, "--resources", str(path)))
    assert f"error: {path}: Expected ']]'" in line
    assert "(at line 1, column 12)" in line


def test_a_resources_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "resources.toml"
    path.write_bytes(b'[[campaigns]]\nname = "\xff"\n')
    line = one_line(run(*SERVE, "--resources", str(path)))
    assert line.endswith(f"error: {path}: not UTF-8 text: invalid start byte")


def test_a_missing_dataset_file_is_named(tmp_path: Path) -> None:
    path = resources(tmp_path, items_path="data/nope.csv")
    line = one_line(run(*SERVE, "--resources", str(path)))
    missing = tmp_path / "data" / "nope.csv"
    assert line.endswith(f"error: cannot read {missing}: No such file or directory")


def test_a_missing_schema_file_is_named(tmp_path: Path) -> None:
    path = resources(tmp_path, items_schema="data/nope.json")
    line = one_line(run(*EVALUATE, "--resources", str(path)))
    missing = tmp_path / "data" / "nope.json"
    assert line.endswith(f"error: cannot read {missing}: No such file or directory")


def test_a_schema_that_is_not_json_is_named(tmp_path: Path) -> None:
    path = resources(tmp_path, items_schema="data/bad.json")
    (tmp_path / "data" / "bad.json").write_text("{\n")
    line = one_line(run(*SERVE, "--resources", str(path)))
    assert f"error: {tmp_path / 'data' / 'bad.json'}: not JSON: " in line


def test_a_dataset_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = resources(tmp_path)
    (tmp_path / "data" / "items.csv").write_bytes(b"ITEM_ID,YEAR\na,1999\n\xff,2001\n")
    line = one_line(run(*SERVE, "--resources", str(path)))
    items = tmp_path / "data" / "items.csv"
    assert line.endswith(f"error: {items}: not UTF-8 text: invalid start byte")


def test_a_filter_that_does_not_parse_is_named_by_its_entry(tmp_path: Path) -> None:
    path = resources(
        tmp_path, extra='[[filters]]\nname = "f"\nexpression = "EXCLUDE ItemID WHERE"\n'
    )
    line = one_line(run(*SERVE, "--resources", str(path)))
    assert line.endswith(
        f"error: {path}: [[filters]] #1: expression: expected a field, "
        "found end of expression at position 20"
    )


def test_a_filter_on_a_field_the_dataset_lacks_is_named(tmp_path: Path) -> None:
    expression = 'EXCLUDE ItemID WHERE Items.GENRE IN (\\"a\\")'
    path = resources(tmp_path, extra=f'[[filters]]\nname = "f"\nexpression = "{expression}"\n')
    line = one_line(run(*SERVE, "--resources", str(path)))
    assert line.endswith(f"error: {path}: [[filters]]: unknown Items field GENRE at position 21")


def test_a_missing_faults_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "faults.json"
    line = one_line(run(*SERVE, "--faults", str(missing)))
    assert line.endswith(f"bad --faults file: cannot read {missing}: No such file or directory")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something else is already listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def test_a_port_in_use_is_named(busy_port: int) -> None:
    proc = run("-m", "local_personalize", "serve", "--port", str(busy_port))
    line = one_line(proc)
    assert line.startswith(
        f"python -m local_personalize serve: error: cannot listen on 127.0.0.1:{busy_port}: "
    )


# --- python -m federation.owner_check OWNER (make check-supergraph OWNER=...) -------------


def test_a_missing_owner_sdl_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "owner.graphql"
    line = one_line(run(*OWNER_CHECK, str(missing)))
    assert line == (
        f"python -m federation.owner_check: error: cannot read {missing}: No such file or directory"
    )


def test_an_owner_sdl_that_is_a_directory_is_named(tmp_path: Path) -> None:
    line = one_line(run(*OWNER_CHECK, str(tmp_path)))
    assert line.endswith(f"error: cannot read {tmp_path}: Is a directory")


def test_an_owner_sdl_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    owner = tmp_path / "owner.graphql"
    owner.write_bytes(b"type Item { id: ID! }\n# \xff\n")
    line = one_line(run(*OWNER_CHECK, str(owner)))
    assert line.endswith(f"error: {owner}: not UTF-8 text: invalid start byte")


def test_an_owner_sdl_that_is_not_graphql_is_named_with_line_and_column(tmp_path: Path) -> None:
    owner = tmp_path / "owner.graphql"
    owner.write_text('type Item @key(fields: "id") { id: ID! }\ntype {\n')
    line = one_line(run(*OWNER_CHECK, str(owner)))
    assert line == (
        f"python -m federation.owner_check: error: {owner}:2:6: not GraphQL SDL: "
        "Syntax Error: Expected Name, found '{'."
    )


def test_the_owner_check_names_a_missing_subgraph_config(tmp_path: Path) -> None:
    owner = tmp_path / "owner.graphql"
    owner.write_text('type Item @key(fields: "id") { id: ID! }\n')
    missing = tmp_path / "subgraph.toml"
    line = one_line(run(*OWNER_CHECK, str(owner), config=missing))
    assert line.endswith(f"error: cannot read config {missing}: No such file or directory")


# --- python server.py with SUBGRAPH_CONFIG=FILE -------------------------------------------


def test_the_server_names_a_missing_config(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    line = one_line(run("server.py", config=missing))
    assert line == f"personalize-subgraph: cannot read config {missing}: No such file or directory"


def test_the_server_names_a_config_that_is_not_toml(tmp_path: Path) -> None:
    config = tmp_path / "subgraph.toml"
    config.write_text('backend = "local"\n[server\n')
    line = one_line(run("server.py", config=config))
    assert line.startswith(f"personalize-subgraph: config {config} is not valid TOML: ")
    assert "(at line 2, column 8)" in line


def test_the_server_names_a_bad_dataset_row(tmp_path: Path) -> None:
    path = resources(tmp_path, items="ITEM_ID,YEAR\na,1999\nb,unkonwn\nc,x\n")
    config = tmp_path / "subgraph.toml"
    config.write_text(
        f"""backend = "local"
[server]
port = 0
[local]
resources = "{path}"
[use_cases.popular]
arn = "arn:aws:personalize:us-east-1:000000000000:campaign/popular"
field = "popularItems"
input = "none"
default = true
"""
    )
    line = one_line(run("server.py", config=config))
    items = tmp_path / "data" / "items.csv"
    assert line == (
        f"personalize-subgraph: local.resources: {items}:3: column YEAR: "
        "'unkonwn' is not a valid int (and 1 more row(s) rejected)"
    )


def test_the_server_names_an_event_journal_it_cannot_make(tmp_path: Path) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory\n")
    journal = in_the_way / "events"
    config = tmp_path / "subgraph.toml"
    config.write_text(
        f"""backend = "local"
[server]
port = 0
[events]
tracking_id = "5e1f7c2a-9d34-4b8e-a6c0-3f2d1e0b9a87"
journal_dir = "{journal}"
[use_cases.popular]
arn = "arn:aws:personalize:us-east-1:000000000000:campaign/popularity"
field = "popularItems"
input = "none"
default = true
"""
    )
    line = one_line(run("server.py", config=config))
    assert line == (
        f"personalize-subgraph: events.journal_dir: cannot make {journal}: Not a directory"
    )
