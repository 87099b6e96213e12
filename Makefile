# AI-cell: `make demo` serves the platform with real workers; `make test` runs the whole suite.
# Both create/update .venv and build the browser UI (frontend/, Node.js 20.19+) first. Nothing else needs installing by
# hand (`make test` installs Chromium for the browser tests where it is missing).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

FRONTEND_DEPS := frontend/node_modules/.installed
FRONTEND_STAMP := frontend/dist/.built
FRONTEND_SOURCES := $(shell find frontend/src -type f 2>/dev/null) frontend/index.html frontend/vite.config.ts \
	frontend/tsconfig.json frontend/package.json frontend/package-lock.json

.PHONY: install demo test lint format bench reliability clean-var frontend vitest chromium api-types

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# The browser UI: npm ci when the lockfile changes, vite build (type-checked) when a source changes.
$(FRONTEND_DEPS): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $@

$(FRONTEND_STAMP): $(FRONTEND_DEPS) $(FRONTEND_SOURCES)
	cd frontend && npm run build
	touch $@

frontend: $(FRONTEND_STAMP)

vitest: $(FRONTEND_DEPS)
	cd frontend && npm test

# frontend/src/api/types.ts from the server's OpenAPI schema (manage.py spectacular + openapi-typescript); `make lint`
# fails when the committed file is not what this would write.
api-types: install $(FRONTEND_DEPS)
	cd frontend && npm run api-types

# The browser tests drive the machine's Chromium.
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

DEMO_PORT ?= 8000

demo: install frontend
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py setup_demo
	$(BIN)/python manage.py rundemo --port $(DEMO_PORT)

# Where a test run keeps its SQLite database file, broker folders and models (.ci/run gives each engine its own).
TEST_VAR_DIR ?= $(CURDIR)/var/test

test: install lint frontend vitest chromium
	DJANGO_ENV=test AICELL_VAR_DIR=$(TEST_VAR_DIR) $(BIN)/pytest $(PYTEST_ARGS)

lint: install $(FRONTEND_DEPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	cd frontend && npm run lint
	cd frontend && npm run api-types:check

format: install $(FRONTEND_DEPS)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	cd frontend && npm run format

bench: install
	$(BIN)/python -m benchmarks $(BENCH)

# The reliability suite at full size (fuzzing, hostile input, access, faults, concurrency) and the full load
# benchmark, then one table of figures for the engine it ran on: run it on the embedded default and again with
# DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) for both tables; the server-only faults need redis-server.
reliability: install
	DJANGO_ENV=test AICELL_VAR_DIR=$(TEST_VAR_DIR) $(BIN)/python -m tests.reliability.run $(RELIABILITY_ARGS)

clean-var:
	rm -rf var
