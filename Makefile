# Everything bootstraps from nothing: Python 3.11 + Node 20 + npm are all a machine needs.
SHELL := /bin/bash
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
RUN := $(UV) run --frozen --no-sync

export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Without credentials botocore would probe the EC2 metadata endpoint for seconds.
export AWS_EC2_METADATA_DISABLED := true

# No WORKERS default here: one would override a config file's `workers` (settings.py
# has the default). `make serve WORKERS=4` still reaches server.py: make exports the
# variables given on its command line.

.PHONY: serve test soak bench bench-libraries lint format emulator dead-letters readout schema check-supergraph clean

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# GraphiQL's browser files come from node_modules: the page works with no internet.
serve: .venv/.synced node_modules/.installed  ## the subgraph with GraphiQL on http://127.0.0.1:4001/graphql
	$(RUN) python server.py

emulator: .venv/.synced  ## the Personalize Runtime emulator on http://127.0.0.1:8765
	$(RUN) python -m local_personalize serve --host 127.0.0.1 --port 8765

dead-letters: .venv/.synced  ## event batches Personalize refused for good (CONFIG=file.toml; ARGS=--requeue)
	$(RUN) python -m backends.outbox dead-letters $(if $(CONFIG),--config $(CONFIG)) $(ARGS)

readout: .venv/.synced  ## an experiment's readout from /metrics (METRICS=url, default make serve's; ARGS=--event-type purchase)
	$(RUN) python -m observability.readout --metrics $${METRICS:-http://127.0.0.1:4001/metrics} $(ARGS)

test: .venv/.synced node_modules/.installed
	$(RUN) pytest

soak: .venv/.synced node_modules/.installed  ## the fault-injected load test for LOAD_SECONDS (default 300)
	LOAD_SECONDS=$${LOAD_SECONDS:-300} $(RUN) pytest -s tests/load

bench: .venv/.synced  ## speed and cost side by side: service, naive Strawberry, orjson floor (BENCH_ARGS=--quick)
	$(RUN) python -m bench.service $(BENCH_ARGS)

bench-libraries: .venv/.synced  ## each hand-written component's CPU against its library's, side by side
	$(RUN) python -m bench.libraries $(BENCH_ARGS)

schema: .venv/.synced  ## regenerate schema.graphql (the subgraph SDL, committed)
	$(RUN) python -m federation.sdl write

check-supergraph: .venv/.synced  ## OWNER=owner.graphql: entity names, keys and key types match
	@test -n "$(OWNER)" || { echo "usage: make check-supergraph OWNER=path/to/owner.graphql"; exit 2; }
	$(RUN) python -m federation.owner_check "$(OWNER)"

lint: .venv/.synced  ## ruff, the format check, mypy --strict and the import contracts (pyproject.toml)
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy .
	$(RUN) lint-imports

format: .venv/.synced
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

clean:
	rm -rf .venv $(TOOLS) node_modules .pytest_cache .mypy_cache .ruff_cache
