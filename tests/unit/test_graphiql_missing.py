"""GraphiQL before `npm ci`: a 503 page naming the command, never a blank page.

`web.graphiql.GraphiQL` on a real uvicorn server on loopback, its node_modules an
empty directory.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import serving_in_thread
from web.graphiql import ASSETS, ROUTE, STATIC_PATH, GraphiQL


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """GraphiQL's page at /graphql and its files, served from an empty node_modules."""
    ide = GraphiQL(node_modules=tmp_path_factory.mktemp("node_modules"))

    async def page(request: Request) -> Response:
        return ide.page()

    app = Starlette(routes=[Route("/graphql", page), Route(ROUTE, ide.asset)])
    with serving_in_thread(app, "GraphiQL") as served:
        yield served


def test_the_page_says_how_to_install_its_files(url: str) -> None:
    response = httpx.get(f"{url}/graphql")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "npm ci" in response.text
    for asset in ASSETS.values():
        assert f"node_modules/{asset.path}" in response.text


def test_a_missing_file_is_503_naming_the_command(url: str) -> None:
    response = httpx.get(f"{url}{STATIC_PATH}/graphiql.min.js")
    assert response.status_code == 503
    assert "npm ci" in response.text


def test_an_installed_set_serves_the_page(tmp_path: Path) -> None:
    for asset in ASSETS.values():
        (tmp_path / asset.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / asset.path).write_text("/* installed */")
    response = GraphiQL(node_modules=tmp_path).page()
    assert response.status_code == 200
    (tmp_path / next(iter(ASSETS.values())).path).unlink()
    assert GraphiQL(node_modules=tmp_path).page().status_code == 503
