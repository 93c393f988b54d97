"""GraphiQL served whole by the subgraph: it renders and answers with no internet.

The browser test loads /graphql in headless Chromium that can resolve no host but
127.0.0.1, so a script or style from anywhere else leaves the page without GraphiQL.
"""

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.chromium import chromium, dump_dom
from tests.conftest import Subgraph, start_subgraph
from web.graphiql import ASSETS, FIRST_QUERY, NODE_MODULES, STATIC_PATH

README = Path(__file__).resolve().parents[2] / "README.md"
HTML_ACCEPT = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


class Page(HTMLParser):
    """What a page loads (src and href), its classes, and the text under one class."""

    def __init__(self, text_of: str = "") -> None:
        super().__init__()
        self.loads: list[str] = []
        self.classes: set[str] = set()
        self._text_of = text_of
        self._depth = 0  # inside the element with class `text_of`: its nesting depth
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.loads += [v for k, v in attrs if k in ("src", "href") and v]
        classes = (found.get("class") or "").split()
        self.classes.update(classes)
        if tag in VOID:
            return
        if self._depth:
            self._depth += 1
        elif self._text_of and self._text_of in classes:
            self._depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth and tag not in VOID:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            self.text.append(data)


def parse(html: str, text_of: str = "") -> Page:
    page = Page(text_of)
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def browser() -> str:
    return chromium()


def test_the_prefilled_query_is_the_readmes_first() -> None:
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## A first query", 1)[1]
    first = re.search(r"```graphql\n(.*?)```", section, re.DOTALL)
    assert first is not None
    assert first.group(1) == FIRST_QUERY


def test_the_page_loads_only_files_of_its_own_origin(local_subgraph: Subgraph) -> None:
    response = httpx.get(f"{local_subgraph.url}/graphql", headers=HTML_ACCEPT)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://", response.text), "the page names another origin"
    loads = parse(response.text).loads
    assert sorted(loads) == sorted(f"{STATIC_PATH}/{name}" for name in ASSETS)
    for url in loads:
        served = httpx.get(f"{local_subgraph.url}{url}")
        asset = ASSETS[url.rsplit("/", 1)[1]]
        assert served.status_code == 200, url
        assert served.headers["content-type"] == asset.media_type, url
        assert served.content == (NODE_MODULES / asset.path).read_bytes(), url


@pytest.mark.parametrize(
    "path",
    [
        "package.json",
        "graphiql.min.js.map",
        "..%2Fpackage.json",
        "%2E%2E%2F%2E%2E%2Fserver.py",
        "react%2Fumd%2Freact.production.min.js",
    ],
)
def test_only_the_listed_files_are_served(local_subgraph: Subgraph, path: str) -> None:
    response = httpx.get(f"{local_subgraph.url}{STATIC_PATH}/{path}")
    assert response.status_code == 404


def test_graphiql_renders_and_runs_the_first_query_offline(
    local_subgraph: Subgraph, browser: str
) -> None:
    dom = dump_dom(browser, f"{local_subgraph.url}/graphql?run=1")
    page = parse(dom, text_of="result-window")
    assert "graphiql-container" in page.classes, dom[-2000:]
    # The editor holds the README's query.
    assert "recommendations" in "".join(parse(dom, text_of="graphiql-query-editor").text)
    result = "".join(page.text)
    # The demo engine's answer for user-0001: five items, from the local engine.
    assert len(re.findall(r'"itemId": "item-\d{4}"', result)) == 5, result
    assert '"source": "LOCAL"' in result, result
    assert '"errors"' not in result, result


def test_graphiql_waits_for_a_click_without_run(local_subgraph: Subgraph, browser: str) -> None:
    dom = dump_dom(browser, f"{local_subgraph.url}/graphql")
    page = parse(dom, text_of="result-window")
    assert "graphiql-container" in page.classes, dom[-2000:]
    assert "item-" not in "".join(page.text)


def test_without_graphiql_its_files_are_not_served(logs: Path) -> None:
    for subgraph in start_subgraph(
        logs,
        "subgraph-no-graphiql",
        {"SUBGRAPH_BACKEND": "local", "SUBGRAPH_SERVER__GRAPHIQL": "false"},
    ):
        for name in ASSETS:
            assert httpx.get(f"{subgraph.url}{STATIC_PATH}/{name}").status_code == 404, name
