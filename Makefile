# Two entry points for a fresh machine: `make run` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: run test eval bench screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

## Set up and serve the product on its embedded defaults (SQLite + embedded Chroma + bundled model).
## `PORT=8080 make run` (or COPILOT_PORT) picks the port; the default is 8000.
run: $(BIN)/.installed
	$(BIN)/copilot serve $(if $(PORT),--port $(PORT))

## Set up and run the whole test suite (installs headless Chromium for the browser tests).
test: $(BIN)/.installed
	bash scripts/setup-browser.sh
	$(BIN)/pytest -q

## Retrieval eval over the seeds and the pack (BM25 vs dense vs hybrid).
eval: $(BIN)/.installed
	$(BIN)/copilot ingest ../shared/seeds
	$(BIN)/copilot eval
	$(BIN)/python scripts/eval_workspaces.py

bench: $(BIN)/.installed
	$(BIN)/python scripts/bench_retrieval.py
	$(BIN)/python scripts/bench_api.py
	$(BIN)/python scripts/bench_cli.py
	$(BIN)/python scripts/bench_import.py --rows 1000
	$(BIN)/python scripts/bench_reload.py
	$(BIN)/python scripts/bench_accounts.py

screenshots: $(BIN)/.installed
	bash scripts/setup-browser.sh
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) copilot-data .pytest_cache
