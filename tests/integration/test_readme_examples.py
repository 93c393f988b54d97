"""Every GraphQL example in README.md, run as printed against what the README says runs it.

The examples are read from README.md itself, so an edit that breaks one fails here. Blocks
of type definitions (the contract) are not operations and are only counted. Operations under
"Add to your supergraph" ask for fields the catalog owns (`user`, `name`, `title price`), so
they go through a gateway composed the way that section says: the catalog subgraph, this
subgraph on the embedded engine as `make serve` runs it, `compose.mjs`, `gateway.mjs`.
Everything else goes to that subgraph directly, with no gateway in front.
"""

import re
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse

from tests.conftest import Emulator, Subgraph, start_subgraph
from tests.servers import REPO_ROOT, free_ports, running

README = REPO_ROOT / "README.md"
# Sections whose operations need the catalog's fields, so a gateway.
GATEWAY_SECTIONS = {"Add to your supergraph"}
# What README.md holds today; fewer found means the extraction (or the README) broke.
AT_LEAST_SUBGRAPH_OPERATIONS = 4
AT_LEAST_GATEWAY_OPERATIONS = 1
TYPE_SYSTEM_KEYWORDS = {
    "type",
    "input",
    "enum",
    "interface",
    "union",
    "scalar",
    "schema",
    "extend",
    "directive",
}
# Apollo Server refuses GET without it (its CSRF guard); the readiness probe is a GET.
NODE_READY = {"apollo-require-preflight": "true"}
# Where the README's commands put the emulator (`make emulator`).
README_EMULATOR = "http://127.0.0.1:8765"
FENCE = re.compile(r"^(?P<indent>[ ]*)```graphql[ ]*\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)


@dataclass(frozen=True)
class Example:
    """One ```graphql block of README.md and the section it sits in."""

    section: str
    line: int
    text: str

    @property
    def is_type_system(self) -> bool:
        first_word = self.text.split(maxsplit=1)[0]
        return first_word in TYPE_SYSTEM_KEYWORDS

    @property
    def needs_gateway(self) -> bool:
        return self.section in GATEWAY_SECTIONS

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.section})"


def readme_examples() -> list[Example]:
    text = README.read_text(encoding="utf-8")
    examples = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        headings = re.findall(r"^## (.+)$", before, re.M)
        body = textwrap.dedent(match["body"])
        examples.append(Example(headings[-1] if headings else "", before.count("\n") + 1, body))
    return examples


EXAMPLES = readme_examples()
OPERATIONS = [e for e in EXAMPLES if not e.is_type_system]
SUBGRAPH_OPERATIONS = [e for e in OPERATIONS if not e.needs_gateway]
GATEWAY_OPERATIONS = [e for e in OPERATIONS if e.needs_gateway]


@pytest.fixture(scope="module")
def demo(logs: Path) -> Iterator[Subgraph]:
    """The subgraph as `make serve` runs it (config/demo.toml, embedded engine), of its own:
    the README's recordEvents example changes what the engine recommends to user-0001,
    which must not leak into other modules sharing the session's `local_subgraph`."""
    yield from start_subgraph(
        logs,
        "subgraph-readme",
        # What `make serve` reads when nothing is set, whatever this shell has set.
        {"SUBGRAPH_CONFIG": "config/demo.toml", "SUBGRAPH_BACKEND": "local"},
    )


def emulator_serve_env() -> dict[str, str]:
    """The variables of the README's `... make serve` line that points at the emulator."""
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [
        line
        for line in text.splitlines()
        if line.endswith("make serve") and README_EMULATOR in line
    ]
    assert len(lines) == 1, lines
    return dict(re.findall(r"([A-Z][A-Z0-9_]*)=(\S+)", lines[0]))


def assert_answered(example: Example, body: dict[str, Any]) -> None:
    assert "errors" not in body, f"{example}:\n{example.text}\n-> {body['errors']}"
    assert body.get("data"), f"{example}: no data: {body}"


def test_the_readme_has_its_examples() -> None:
    # An extraction that finds nothing would make every test below pass vacuously.
    assert len(SUBGRAPH_OPERATIONS) >= AT_LEAST_SUBGRAPH_OPERATIONS, OPERATIONS
    assert len(GATEWAY_OPERATIONS) >= AT_LEAST_GATEWAY_OPERATIONS, OPERATIONS
    assert any(e.is_type_system for e in EXAMPLES), "the GraphQL contract block is gone"
    assert any("recordEvents" in e.text for e in SUBGRAPH_OPERATIONS)


@pytest.mark.parametrize("example", OPERATIONS, ids=str)
def test_each_operation_is_one_executable_operation(example: Example) -> None:
    # A block that is neither an operation nor type definitions would be skipped otherwise.
    document = parse(example.text)
    assert [type(d) for d in document.definitions] == [OperationDefinitionNode], example


@pytest.fixture(scope="module")
def aws_demo(logs: Path, emulator: Emulator) -> Iterator[Subgraph]:
    """The subgraph started with the README's "try the AWS path without AWS" variables,
    the emulator's address replaced by the session emulator's."""
    env = {
        # A fresh shell's `make serve` reads the demo configuration.
        "SUBGRAPH_CONFIG": "config/demo.toml",
        **{
            name: value.replace(README_EMULATOR, emulator.url)
            for name, value in emulator_serve_env().items()
            # The session emulator checks signatures against the test credentials, which
            # `running` sets; the README's placeholder keys would be refused.
            if name not in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        },
        # recordEvents waits for delivery long enough for a slow machine (the README's
        # default wait is what a user gets; the test checks delivery, not the wait).
        "SUBGRAPH_EVENTS__WAIT_MS": "5000",
    }
    yield from start_subgraph(logs, "subgraph-readme-aws", env)


# Before the demo's own run of the examples: the recordEvents example changes what the
# demo then recommends to user-0001, and this compares the two before it.
def test_the_aws_path_without_aws(
    aws_demo: Subgraph, demo: Subgraph, fresh_emulator: Emulator
) -> None:
    first = SUBGRAPH_OPERATIONS[0]
    answer = aws_demo.query(first.text)
    assert_answered(first, answer)
    embedded = demo.query(first.text)
    # "The same query then returns the same items, with `source: PERSONALIZE`."
    [user] = answer["data"]["_entities"]
    [local_user] = embedded["data"]["_entities"]
    assert user["recommendations"]["source"] == "PERSONALIZE"
    assert [i["itemId"] for i in user["recommendations"]["items"]] == [
        i["itemId"] for i in local_user["recommendations"]["items"]
    ]
    recorded = 0
    for example in SUBGRAPH_OPERATIONS[1:]:
        body = aws_demo.query(example.text)
        assert_answered(example, body)
        if "recordEvents" in example.text:
            # Delivered to the emulator, not queued for AWS itself (one call per example).
            recorded += 1
            assert body["data"]["recordEvents"]["delivered"] is True, body
            stats = httpx.get(f"{fresh_emulator.url}/_emulator/stats").json()
            assert stats["calls"]["PutEvents"] == recorded


@pytest.mark.parametrize("example", SUBGRAPH_OPERATIONS, ids=str)
def test_subgraph_example_runs_on_the_demo(example: Example, demo: Subgraph) -> None:
    assert_answered(example, demo.query(example.text))


@pytest.mark.parametrize("example", GATEWAY_OPERATIONS, ids=str)
def test_gateway_example_needs_the_gateway(example: Example, demo: Subgraph) -> None:
    # Sent to the subgraph alone it is refused: the README is right to send it elsewhere.
    body = demo.query(example.text)
    assert body.get("errors"), f"{example} runs without a gateway: {body}"


@pytest.fixture(scope="module")
def gateway(logs: Path, demo: Subgraph) -> Iterator[str]:
    """The README's supergraph steps, on free ports instead of 4000 and 4002."""
    if not (REPO_ROOT / "node_modules" / "@apollo" / "gateway").is_dir():
        pytest.fail("node_modules is missing: run `npm ci` (or `make node_modules/.installed`)")
    catalog_port, gateway_port = free_ports(2)
    supergraph = logs / "readme-supergraph.graphql"
    with running(
        ["node", "federation/catalog.mjs"],
        f"http://127.0.0.1:{catalog_port}/graphql?query=%7B__typename%7D",
        logs / "readme-catalog.log",
        env={"CATALOG_PORT": str(catalog_port)},
        headers=NODE_READY,
    ):
        compose = [
            "node",
            "federation/compose.mjs",
            "--strict-hints",
            "--out",
            str(supergraph),
            f"catalog=http://127.0.0.1:{catalog_port}/graphql",
            f"recommendations={demo.url}/graphql",
        ]
        # `running` is for servers; compose exits, so it runs to completion here.
        composed = subprocess.run(
            compose, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert composed.returncode == 0, composed.stdout + composed.stderr
        with running(
            ["node", "federation/gateway.mjs", "--supergraph", str(supergraph)],
            f"http://127.0.0.1:{gateway_port}/graphql?query=%7B__typename%7D",
            logs / "readme-gateway.log",
            env={"GATEWAY_PORT": str(gateway_port)},
            headers=NODE_READY,
        ):
            yield f"http://127.0.0.1:{gateway_port}/graphql"


@pytest.mark.parametrize("example", GATEWAY_OPERATIONS, ids=str)
def test_gateway_example_runs_through_the_gateway(example: Example, gateway: str) -> None:
    response = httpx.post(gateway, json={"query": example.text}, timeout=30.0)
    assert response.status_code == 200, response.text
    assert_answered(example, response.json())
