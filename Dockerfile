# The subgraph in three stages: GraphiQL's browser files and the locked environment are
# built in the first two, and the last holds only what runs, owned by root and read-only
# to the runtime user.
#
# The bases are build arguments so that they are pinned by digest where the image is built
# (this repository's CI reaches no image registry to read a digest from, and a digest
# written here unread could name an image nobody checked):
#   docker build --build-arg PYTHON_BASE=python:3.11-slim@sha256:<digest> \
#                --build-arg NODE_BASE=node:20-slim@sha256:<digest> .
ARG PYTHON_BASE=python:3.11-slim
ARG NODE_BASE=node:20-slim

FROM ${NODE_BASE} AS graphiql

WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force


FROM ${PYTHON_BASE} AS build

ENV UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install uv==0.13.8
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project --compile-bytecode


FROM ${PYTHON_BASE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SUBGRAPH_SERVER__HOST=0.0.0.0 \
    SUBGRAPH_SERVER__PORT=4001

RUN useradd --no-create-home --shell /usr/sbin/nologin --uid 10001 subgraph
WORKDIR /app

# Only what runs (tests, bench, federation and Node files stay out). Copied as root:
# the runtime user can read but not change the code or the environment.
COPY --from=build /app/.venv /app/.venv
# Only the files GraphiQL's page loads (web/graphiql.py, ASSETS), where it reads them.
COPY --from=graphiql /assets/node_modules/react/umd/react.production.min.js node_modules/react/umd/
COPY --from=graphiql /assets/node_modules/react-dom/umd/react-dom.production.min.js node_modules/react-dom/umd/
COPY --from=graphiql /assets/node_modules/graphiql/graphiql.min.js /assets/node_modules/graphiql/graphiql.min.css node_modules/graphiql/
COPY --from=graphiql /assets/node_modules/@graphiql/plugin-explorer/dist/index.umd.js /assets/node_modules/@graphiql/plugin-explorer/dist/style.css node_modules/@graphiql/plugin-explorer/dist/
COPY server.py settings.py ./
COPY config/ config/
COPY domain/ domain/
COPY web/ web/
COPY schema/ schema/
COPY resolvers/ resolvers/
COPY loaders/ loaders/
COPY backends/ backends/
COPY observability/ observability/
COPY local_personalize/ local_personalize/

# The event journal (events.journal_dir, var/events): the one place the runtime user
# writes. Mount a volume here to keep undelivered events across containers, or set
# events.outbox = "redis".
RUN mkdir -p /app/var/events && chown -R subgraph /app/var
USER subgraph
EXPOSE 4001
# SUBGRAPH_CONFIG names your TOML file; the demo config (embedded engine) is the default.
# The check reads the same settings, so it follows SUBGRAPH_SERVER__PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/app/.venv/bin/python", "-m", "web.healthcheck"]

CMD ["/app/.venv/bin/python", "server.py"]
