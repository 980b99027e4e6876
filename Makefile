# One command each for running, testing, linting and benchmarking; CI calls the same ones.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MAIN   := $(VENV)/.installed-main
DEV    := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: run test lint bench check-services clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(MAIN): requirements/main.lock pyproject.toml | $(BIN)/python
	@echo "[1/4] installing the runtime dependencies into $(VENV) (a few minutes the first time)..."
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -r requirements/main.lock
	@echo "[2/4] installing fairslot itself..."
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

$(DEV): $(MAIN) requirements/dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.lock
	touch $@

## run: install, migrate, seed the demo hospital (embedded SQLite) and serve on 127.0.0.1:8000
run: $(MAIN)
	$(BIN)/fairslot serve --demo --host 127.0.0.1 --port 8000

## test: install, lint, then the whole suite on SQLite, PostgreSQL and Redis
test: $(DEV)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	command -v node >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs)
	$(BIN)/python scripts/check_services.py
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -n 2 --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

lint: $(DEV)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(DEV)
	$(BIN)/python bench/booking.py
	$(BIN)/python bench/entering.py
	$(BIN)/python bench/guard.py
	$(BIN)/python bench/draw.py
	$(BIN)/python bench/investigate.py
	$(BIN)/python bench/monitor.py
	$(BIN)/python bench/consortium.py

check-services: $(DEV)
	$(BIN)/python scripts/check_services.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis
