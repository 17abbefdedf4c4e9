# The two commands of the README are `make run` and `make test`; everything else is their parts.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONTRACT_CHECK ?= ../shared/contract-check
RUN_ARGS ?=

.PHONY: run test install install-test lint typecheck pytest contract bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

run: install
	$(BIN)/console-proxy serve $(RUN_ARGS)

lint: install-test
	$(BIN)/ruff check console_proxy tests bench

typecheck: install-test
	$(BIN)/mypy

pytest: install-test
	$(BIN)/pytest

contract: install-test
	@if [ -x "$(CONTRACT_CHECK)" ]; then PATH="$(CURDIR)/$(BIN):$$PATH" $(CONTRACT_CHECK) all; \
	elif [ "$$CI" = "true" ]; then echo "contract-check not found at $(CONTRACT_CHECK)" >&2; exit 1; \
	else echo "skipping the contract check: $(CONTRACT_CHECK) not found (set CONTRACT_CHECK=...)"; fi

test: lint typecheck pytest contract

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
