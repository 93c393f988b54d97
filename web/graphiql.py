"""GraphiQL served whole by the subgraph: its page and every browser file the page loads.

Strawberry's own page loads React and GraphiQL from a public CDN, so without internet a
browser shows a white "Loading..." page. Ours loads them from this origin,
`/graphiql/static/<name>`, read from `node_modules` (pinned in package.json and
package-lock.json, installed by `npm ci`; `make serve` runs it). Only the files named
in `ASSETS` are served, looked up by their exact name: nothing of a request's path
reaches the file system. When the files are missing, the page and the files answer 503
with the command that installs them, never a blank page.
"""

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = REPO_ROOT / "node_modules"
# Where the page finds its files; `server.py` routes it to `GraphiQL.asset`.
STATIC_PATH = "/graphiql/static"
ROUTE = STATIC_PATH + "/{name}"

JAVASCRIPT = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"


@dataclass(frozen=True)
class Asset:
    """One file the page loads: where it is under node_modules and its media type."""

    path: str
    media_type: str


# Everything the page loads; the UMD builds, because they need no bundler. React 18:
# React 19 ships no UMD build. The explorer plugin 3.2.5 is the one for GraphiQL 3.8's
# @graphiql/react 0.28, and reads React and GraphiQL from the globals these set.
ASSETS: Mapping[str, Asset] = {
    "react.production.min.js": Asset("react/umd/react.production.min.js", JAVASCRIPT),
    "react-dom.production.min.js": Asset("react-dom/umd/react-dom.production.min.js", JAVASCRIPT),
    "graphiql.min.js": Asset("graphiql/graphiql.min.js", JAVASCRIPT),
    "graphiql.min.css": Asset("graphiql/graphiql.min.css", CSS),
    "plugin-explorer.umd.js": Asset("@graphiql/plugin-explorer/dist/index.umd.js", JAVASCRIPT),
    "plugin-explorer.css": Asset("@graphiql/plugin-explorer/dist/style.css", CSS),
}

# The README's first query ("A first query"): what a gateway sends for a user.
# tests/integration/test_graphiql.py holds the two equal.
FIRST_QUERY = """\
{
  _entities(representations: [{ __typename: "User", id: "user-0001" }]) {
    ... on User {
      recommendations(numResults: 5) {
        recommendationId
        source
        items { itemId score }
      }
    }
  }
}
"""

_TEMPLATE = string.Template((Path(__file__).parent / "graphiql.html").read_text(encoding="utf-8"))

_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GraphiQL is not installed</title></head>
<body style="font: 16px sans-serif; padding: 2rem">
<h1>GraphiQL's browser files are not installed</h1>
<p>This subgraph serves GraphiQL from its own <code>node_modules</code>; these are missing:</p>
<ul>{missing}</ul>
<p>Run <code>npm ci</code> in the repository (<code>make serve</code> runs it), then reload.
GraphQL itself is served as usual: POST to this URL.</p>
</body></html>
"""


def _json_in_html(value: object) -> str:
    """`value` as JSON that cannot end the <script> element it is written in."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class GraphiQL:
    """The page for /graphql in a browser, and the endpoint for its files."""

    def __init__(self, node_modules: Path = NODE_MODULES, query: str = FIRST_QUERY) -> None:
        self._node_modules = node_modules
        self._page = _TEMPLATE.substitute(
            static=STATIC_PATH,
            config=_json_in_html({"static": STATIC_PATH, "query": query}),
        )

    def missing(self) -> list[str]:
        """The files of `ASSETS` that are not installed."""
        return [a.path for a in ASSETS.values() if not (self._node_modules / a.path).is_file()]

    def page(self) -> Response:
        """The GraphiQL page; 503 and how to install them when its files are missing."""
        missing = self.missing()
        if missing:
            items = "".join(f"<li><code>node_modules/{path}</code></li>" for path in missing)
            return HTMLResponse(_MISSING.format(missing=items), status_code=503)
        return HTMLResponse(self._page)

    async def asset(self, request: Request) -> Response:
        """GET /graphiql/static/{name}: one file of `ASSETS`, or 404."""
        asset = ASSETS.get(request.path_params["name"])
        if asset is None:
            return PlainTextResponse("not found", status_code=404)
        path = self._node_modules / asset.path
        if not path.is_file():
            return PlainTextResponse(
                f"node_modules/{asset.path} is not installed: run `npm ci` (or `make serve`)",
                status_code=503,
            )
        # Names carry no version: not cached, so an upgrade shows at once (a loopback
        # download).
        return FileResponse(
            path, media_type=asset.media_type, headers={"cache-control": "no-cache"}
        )
