# AI-cell: `make demo` serves the platform with a real worker; `make test` runs the whole suite.
# Both create/update .venv first. Nothing else needs installing by hand.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format bench clean-var

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py setup_demo
	$(BIN)/python manage.py rundemo --port 8000

test: install lint
	DJANGO_ENV=test AICELL_VAR_DIR=$(CURDIR)/var/test $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks $(BENCH)

clean-var:
	rm -rf var
