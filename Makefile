# agentcron: `make run` starts the daemon, `make test` runs every check and test.
# Both create .venv and install what they need on a fresh Debian/Ubuntu machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test check lint typecheck system-deps bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,redis]'
	@touch $(STAMP)

system-deps:
	@bash scripts/install-system-deps

run: $(STAMP)
	$(BIN)/agentcron run

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck

test: $(STAMP) system-deps check
	$(BIN)/python -m pytest
	bash scripts/test-eager

bench: $(STAMP) system-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .venv-eager .pytest_cache .mypy_cache .ruff_cache
