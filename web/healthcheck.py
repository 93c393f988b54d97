"""`python -m web.healthcheck`: exit 0 when this process's subgraph answers /healthz.

For container health checks. The port comes from the same settings the server reads
(environment and config file), so a container started with another
`SUBGRAPH_SERVER__PORT` is checked on that port. One line on stderr says why it failed.
"""

import sys
import urllib.error
import urllib.request

from domain.errors import ConfigurationError
from settings import load_settings

TIMEOUT_S = 2.0


def main() -> int:
    """0 when GET /healthz on the configured port answers 200; 1 otherwise."""
    try:
        port = load_settings().server.port
    except ConfigurationError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            status = response.status
    except (OSError, urllib.error.URLError) as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"healthcheck: {url} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
