"""What the Dockerfile's runtime stage holds is enough to run and to be health-checked.

There is no container engine here, so the image itself is never built in the tests.
What can be checked without one is checked: the runtime stage's files, copied as its
COPY lines say into an empty directory, start the subgraph with the image's command,
and the image's HEALTHCHECK command follows the configured port.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import REPO_ROOT, free_port, running
from web.graphiql import ASSETS

DOCKERFILE = REPO_ROOT / "Dockerfile"


def _runtime_stage() -> list[str]:
    """The instructions of the Dockerfile's last stage, continuation lines joined."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    last = max(i for i, line in enumerate(instructions) if line.upper().startswith("FROM "))
    return instructions[last:]


def _copied_paths() -> list[str]:
    """The repository paths the runtime stage copies (not those taken from the build)."""
    paths: list[str] = []
    for instruction in _runtime_stage():
        words = shlex.split(instruction)
        if words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        paths.extend(w.rstrip("/") for w in words[1:-1] if not w.startswith("--"))
    return paths


def _exec_form(keyword: str) -> list[str]:
    """The JSON-array command of the runtime stage's CMD, or of its HEALTHCHECK's CMD."""
    for instruction in _runtime_stage():
        if instruction.upper().startswith(keyword):
            command = instruction[instruction.index("[") : instruction.rindex("]") + 1]
            words: list[str] = json.loads(command)
            return words
    raise AssertionError(f"the runtime stage has no {keyword}")


def _here(words: list[str]) -> list[str]:
    # The image's interpreter is its environment's; here, this test's.
    assert words[0] == "/app/.venv/bin/python", words
    return [sys.executable, *words[1:]]


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty directory holding only what the runtime stage copies."""
    root = tmp_path_factory.mktemp("image-app")
    for path in _copied_paths():
        source = REPO_ROOT / path
        if source.is_dir():
            shutil.copytree(source, root / path, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / path)
    return root


def test_the_runtime_stage_carries_graphiqls_files() -> None:
    """Every file GraphiQL's page loads is copied from the Node stage to where it is read."""
    carried: set[str] = set()
    for instruction in _runtime_stage():
        words = shlex.split(instruction)
        if words[0].upper() != "COPY" or "--from=graphiql" not in words:
            continue
        sources = [w for w in words[1:-1] if not w.startswith("--")]
        destination = words[-1]
        assert destination.startswith("node_modules/"), instruction
        for source in sources:
            name = source.rsplit("/", 1)[1]
            assert source == f"/assets/{destination}{name}", instruction
            carried.add(f"{destination}{name}".removeprefix("node_modules/"))
    assert carried == {asset.path for asset in ASSETS.values()}


def test_the_runtime_stage_copies_only_what_runs() -> None:
    copied = set(_copied_paths())
    assert {"server.py", "settings.py", "config", "domain"} <= copied
    assert not copied & {".", "tests", "bench", "federation", "node_modules", "package.json"}
    runtime = " ".join(_runtime_stage())
    # Files stay root's: nothing is copied to the runtime user.
    assert "--chown" not in runtime
    assert "USER subgraph" in runtime


@pytest.fixture(scope="module")
def served(image_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    port = free_port()
    env = {"SUBGRAPH_SERVER__HOST": "127.0.0.1", "SUBGRAPH_SERVER__PORT": str(port)}
    log = tmp_path_factory.mktemp("image-logs") / "server.log"
    with running(
        _here(_exec_form("CMD [")),
        f"http://127.0.0.1:{port}/healthz",
        log,
        env,
        cwd=image_dir,
    ):
        yield env


def test_the_image_command_serves_from_the_runtime_files_alone(
    served: dict[str, str],
) -> None:
    port = served["SUBGRAPH_SERVER__PORT"]
    body = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": "{ popularItems(numResults: 2) { source items { itemId } } }"},
    ).json()
    assert body["data"]["popularItems"]["source"] == "LOCAL", body
    assert len(body["data"]["popularItems"]["items"]) == 2


def test_the_healthcheck_follows_the_configured_port(
    served: dict[str, str], image_dir: Path
) -> None:
    check = _here(_exec_form("HEALTHCHECK"))
    ok = subprocess.run(check, cwd=image_dir, env=_env(served), capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    elsewhere = {**served, "SUBGRAPH_SERVER__PORT": str(free_port())}
    down = subprocess.run(check, cwd=image_dir, env=_env(elsewhere), capture_output=True, text=True)
    assert down.returncode == 1
    assert len(down.stderr.strip().splitlines()) == 1, down.stderr
    assert "Traceback" not in down.stderr
    assert elsewhere["SUBGRAPH_SERVER__PORT"] in down.stderr


def _env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}


def test_every_stage_starts_from_a_base_given_as_a_build_argument() -> None:
    # A digest is pinned where the image is built (--build-arg PYTHON_BASE=...@sha256:...):
    # no stage may name its base image directly, or that stage would escape the pin.
    text = DOCKERFILE.read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip()]
    bases = [line.split()[1] for line in instructions if line.upper().startswith("FROM ")]
    assert bases == ["${NODE_BASE}", "${PYTHON_BASE}", "${PYTHON_BASE}"], bases
    first_from = next(i for i, line in enumerate(instructions) if line.upper().startswith("FROM "))
    declared = [line for line in instructions[:first_from] if line.upper().startswith("ARG ")]
    assert declared == ["ARG PYTHON_BASE=python:3.11-slim", "ARG NODE_BASE=node:20-slim"]
