# The two commands of the README are `make run` and `make test`; everything else is their parts.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONTRACT_CHECK ?= ../shared/contract-check
RUN_ARGS ?=

.PHONY: run test install install-test lint typecheck pytest contract bench clean console collector-ui browser redis \
	postgres nginx jstest pytest-compiled

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,redis,collector,tls]'

run: install console
	$(BIN)/console-proxy serve $(RUN_ARGS)

# The demo console: console/ (React, Redux, a router; pinned by package-lock.json) is built with
# esbuild into static/dist/, which `console-proxy serve` serves. Rebuilt only when a source changed.
CONSOLE_BUNDLE := static/dist/main.js
CONSOLE_SOURCES := $(shell find console/src -type f 2>/dev/null) console/build.mjs console/package.json \
	static/console-telemetry.js

console: $(CONSOLE_BUNDLE)

console/node_modules/.package-lock.json: console/package-lock.json console/package.json
	cd console && npm ci --no-audit --no-fund

$(CONSOLE_BUNDLE): console/node_modules/.package-lock.json $(CONSOLE_SOURCES)
	cd console && npm run build

# The collector's dashboard: collector-ui/ (Chart.js; pinned by package-lock.json) is built with esbuild into
# console_proxy/collector/ui/, which `console-proxy collect` serves at /. Rebuilt only when a source changed.
COLLECTOR_UI_BUNDLE := console_proxy/collector/ui/dashboard.js
COLLECTOR_UI_SOURCES := $(shell find collector-ui/src -type f 2>/dev/null) collector-ui/build.mjs \
	collector-ui/package.json

collector-ui: $(COLLECTOR_UI_BUNDLE)

collector-ui/node_modules/.package-lock.json: collector-ui/package-lock.json collector-ui/package.json
	cd collector-ui && npm ci --no-audit --no-fund

$(COLLECTOR_UI_BUNDLE): collector-ui/node_modules/.package-lock.json $(COLLECTOR_UI_SOURCES)
	cd collector-ui && npm run build

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work here).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; fi

# The Redis queue's tests (and the contract's queue stage) start Debian's redis-server on a free loopback port.
REDIS_SERVER ?= /usr/bin/redis-server

redis:
	@if [ ! -x "$(REDIS_SERVER)" ]; then \
		$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y redis-server; fi

# The collector's tests start Debian's PostgreSQL (initdb and postgres from /usr/lib/postgresql/*/bin) in a temporary
# directory on a free loopback port, as the postgres user when they run as root.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y postgresql; fi

# tests/e2e/test_nginx.py runs deploy/nginx/console-proxy.conf in Debian's nginx (nginx-light: proxy, map, resolver).
NGINX ?= /usr/sbin/nginx

nginx:
	@if [ ! -x "$(NGINX)" ]; then \
		$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y nginx-light; fi

# The browser client's unit tests, on node's built-in test runner.
jstest:
	node --test tests-js/

lint: install-test
	$(BIN)/ruff format --check console_proxy tests bench examples tools
	$(BIN)/ruff check console_proxy tests bench examples tools

typecheck: install-test
	$(BIN)/mypy

pytest: install-test redis postgres nginx collector-ui
	$(BIN)/pytest

# The stages of ../shared/contract-check that CI runs: every part of the contract that is built. Not collector-paths:
# its /v1/ws check looks for an answer in what its WebSocket helper returns, which is never one (the helper returns
# "" on success), so it cannot pass; tests/e2e/test_collector_paths.py checks the same paths with a real client.
CONTRACT_STAGES := all queue origins consoles sources collector dropin actions

contract: install-test redis collector-ui
	@if [ -x "$(CONTRACT_CHECK)" ]; then for stage in $(CONTRACT_STAGES); do \
		PATH="$(CURDIR)/$(BIN):$$PATH" $(CONTRACT_CHECK) $$stage || exit 1; done; \
	elif [ "$$CI" = "true" ]; then echo "contract-check not found at $(CONTRACT_CHECK)" >&2; exit 1; \
	else echo "skipping the contract check: $(CONTRACT_CHECK) not found (set CONTRACT_CHECK=...)"; fi

# The compiled form (docs/performance.md, "The compiled form"): a wheel built with the hot path's modules compiled by
# mypyc (CONSOLE_PROXY_PURE=0: compiled or the build fails), installed in a virtual environment of its own, and the
# unit tests of those modules and the contract's `all` stage run against it; tests/test_compiled.py checks there that
# they are C extensions.
# Rebuilt only when a source changed; the C objects are kept in build/mypyc/. Extras: what tests/conftest.py imports.
VENV_COMPILED ?= .venv-compiled
COMPILED_BIN := $(VENV_COMPILED)/bin
COMPILED_WHEEL_DIR := build/compiled-wheel
COMPILED_STAMP := $(VENV_COMPILED)/.installed
COMPILED_TESTS := tests/core tests/rules tests/sources tests/test_compiled.py

$(COMPILED_STAMP): pyproject.toml hatch_build.py route_rules.yaml $(shell find console_proxy -name '*.py' 2>/dev/null) \
		| $(BIN)/python $(CONSOLE_BUNDLE) $(COLLECTOR_UI_BUNDLE)
	rm -rf $(COMPILED_WHEEL_DIR)
	CONSOLE_PROXY_PURE=0 $(BIN)/pip wheel --quiet --no-deps --wheel-dir $(COMPILED_WHEEL_DIR) .
	@[ -x $(COMPILED_BIN)/python ] || $(PYTHON) -m venv $(VENV_COMPILED)
	$(COMPILED_BIN)/pip install --quiet "$$(ls $(COMPILED_WHEEL_DIR)/console_proxy-*.whl)[test,redis]"
	$(COMPILED_BIN)/pip install --quiet --force-reinstall --no-deps $(COMPILED_WHEEL_DIR)/console_proxy-*.whl
	touch $@

pytest-compiled: $(COMPILED_STAMP)
	@if [ -x "$(CONTRACT_CHECK)" ]; then PATH="$(CURDIR)/$(COMPILED_BIN):$$PATH" $(CONTRACT_CHECK) all; \
	elif [ "$$CI" = "true" ]; then echo "contract-check not found at $(CONTRACT_CHECK)" >&2; exit 1; fi
	CONSOLE_PROXY_TEST_COMPILED=1 $(COMPILED_BIN)/pytest -p no:cacheprovider $(COMPILED_TESTS)

# pytest goes last so that its summary closes the output.
test: console collector-ui browser redis postgres nginx lint typecheck jstest contract pytest-compiled pytest

clean:
	rm -rf $(VENV) $(VENV_COMPILED) build .mypy_cache .ruff_cache .pytest_cache
