# The subgraph on a slim Python base, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install --no-cache-dir uv==0.13.8 \
    && useradd --create-home --uid 10001 subgraph

WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY --chown=subgraph:subgraph . .

USER subgraph
EXPOSE 4001
# SUBGRAPH_CONFIG names your TOML file; the demo config (embedded engine) is the default.
ENV SUBGRAPH_SERVER__HOST=0.0.0.0 \
    SUBGRAPH_SERVER__PORT=4001

HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["/app/.venv/bin/python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:4001/healthz', timeout=2).status == 200 else 1)"]

CMD ["/app/.venv/bin/python", "server.py"]
