# Smart110 — the two commands that matter are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export PYTHONPATH := $(CURDIR)/gen:$(CURDIR)
WEB_STAMP := web/node_modules/.installed
# The built web front-end (web/ → build/web/), which the gateway serves at /.
WEB_BUILD := build/web/.built
WEB_SOURCES := web/index.html web/vite.config.ts web/tsconfig.json web/scripts/gen-protos.mjs \
  $(shell find web/src -type f -not -path 'web/src/gen/*' 2>/dev/null | sort)
PROTO_FILES := $(shell find protos -name '*.proto' | sort)
GOOGLE_PROTOS = $(shell $(PY) -c 'import google.api, os; print(os.path.dirname(os.path.dirname(google.api.__path__[0])))')
WKT_PROTOS = $(shell $(PY) -c 'import grpc_tools, os; print(os.path.join(grpc_tools.__path__[0], "_proto"))')

.PHONY: help setup proto lint run test unit chaos bench token clean web browser

help:
	@echo "make run    set up everything and run the whole suite (Ctrl-C stops it)"
	@echo "make test   set up everything and run all tests"
	@echo "make chaos  kill (SIGKILL) and stop (SIGTERM) each service, Envoy and Postgres under load; count lost and duplicated effects"
	@echo "make bench  run the benchmarks, results in bench-results/ (ONLY=intake,alerts for some)"
	@echo "make lint   buf lint and breaking-change check on protos/"
	@echo "make token ROLE=dispatcher STATION=S01   mint a development JWT"
	@echo "make web    build the web front-end (build/web/, served by the gateway at /)"

$(VENV)/.installed: requirements.txt
	@echo "==> creating virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> installing pinned dependencies (requirements.txt)"
	set -o pipefail; $(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt 2>&1 \
	  | { grep -v '^WARNING: Location' || true; }
	$(PY) -m pip check
	touch $@

setup: $(VENV)/.installed build/.proto build/openapi.json build/schemas/.installed build/clients/.installed build/fuzz/.installed $(WEB_STAMP) $(WEB_BUILD)

# The web front-end's packages (web/package-lock.json, from the npm registry): Vite, TypeScript,
# MapLibre GL JS, h3-js, Connect-ES, Playwright's driver, and Swagger UI, which the gateway serves
# at /docs. --ignore-scripts: no package needs its install script (swagger-ui-dist's one dependency,
# @scarf/scarf, only reports the install home; Vite's and Lightning CSS's native parts are packages
# of their own).
$(WEB_STAMP): web/package.json web/package-lock.json
	@command -v npm >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1 || { \
	  echo "==> npm not found: installing Debian's nodejs and npm"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: the web front-end and the gateway's /docs come from the npm registry (web/package-lock.json); install Node.js 20 with npm and run make again" >&2; exit 1; }
	@echo "==> fetching the web front-end's packages and Swagger UI for /docs (web/package-lock.json)"
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

# The front-end: Connect-ES stubs from protos/ (the project's protoc, protoc-gen-es from web/), a
# TypeScript check, then Vite into build/web/ (index.html, content-hashed files under assets/).
$(WEB_BUILD): $(WEB_STAMP) $(VENV)/.installed $(PROTO_FILES) $(WEB_SOURCES)
	@echo "==> building the web front-end (web/ -> build/web/): Connect-ES stubs from protos/"
	cd web && PYTHON=$(CURDIR)/$(PY) node scripts/gen-protos.mjs
	@echo "==> building the web front-end: TypeScript check"
	cd web && node_modules/.bin/tsc --noEmit
	@echo "==> building the web front-end: Vite bundle"
	cd web && node_modules/.bin/vite build --logLevel warn
	@ls build/web/assets | sed 's/^/    build\/web\/assets\//'
	touch $@

web: $(WEB_BUILD)

# Debian's Chromium, which the browser tests drive headless (tests/web, Playwright from web/), and a
# Chinese font for it (fonts-noto-cjk), so that the screens and their screenshots show Chinese text.
browser:
	@missing="$$(command -v chromium >/dev/null 2>&1 || echo chromium) $$(fc-list :lang=zh 2>/dev/null | grep -q . || echo fonts-noto-cjk)"; \
	if [ -n "$${missing// /}" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "==> installing Debian's $$missing for the browser tests"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v chromium >/dev/null 2>&1 || echo "chromium not found: the browser tests (tests/web) will be skipped" >&2

# Schemas the tests validate against (OASIS CAP 1.2), kept out of the environment.
build/schemas/.installed: requirements-schemas.txt $(VENV)/.installed
	@echo "==> fetching the schemas the tests validate against (requirements-schemas.txt)"
	rm -rf build/schemas
	set -o pipefail; $(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target build/schemas -r requirements-schemas.txt 2>&1 \
	  | { grep -v "^WARNING: Location" || true; }
	touch $@

# Real Open311 clients the e2e tests drive (requirements-test-clients.txt), kept out of the environment.
build/clients/.installed: requirements-test-clients.txt $(VENV)/.installed
	@echo "==> fetching the clients the e2e tests drive (requirements-test-clients.txt)"
	rm -rf build/clients
	set -o pipefail; $(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target build/clients -r requirements-test-clients.txt 2>&1 \
	  | { grep -v "^WARNING: Location" || true; }
	touch $@

# Schemathesis for the fuzz run over /openapi.json (requirements-fuzz.txt, every dependency pinned), kept out of
# the environment: tests/e2e/test_openapi_fuzz.py runs it as its own process with build/fuzz first on its path.
build/fuzz/.installed: requirements-fuzz.txt $(VENV)/.installed
	@echo "==> fetching the API fuzzer (requirements-fuzz.txt)"
	rm -rf build/fuzz
	set -o pipefail; $(PY) -m pip install --quiet --disable-pip-version-check --no-deps --target build/fuzz -r requirements-fuzz.txt 2>&1 \
	  | { grep -v "^WARNING: Location" || true; }
	touch $@

build/.proto: $(VENV)/.installed $(PROTO_FILES)
	@echo "==> generating Python code and the gateway descriptor set from protos/"
	rm -rf gen && mkdir -p gen build
	$(PY) -m grpc_tools.protoc -I protos -I $(GOOGLE_PROTOS) -I $(WKT_PROTOS) \
	  --python_out=gen --pyi_out=gen --grpc_python_out=gen $(PROTO_FILES)
	$(PY) -m grpc_tools.protoc -I protos -I $(GOOGLE_PROTOS) -I $(WKT_PROTOS) \
	  --include_imports --include_source_info --descriptor_set_out=build/descriptors.pb \
	  $(PROTO_FILES) google/rpc/error_details.proto
	touch $@

# OpenAPI 3 of every REST route, generated from the descriptor set (the gateway serves it at /openapi.json).
build/openapi.json: build/.proto gateway/openapi.py
	$(PY) -m gateway.openapi build/descriptors.pb > $@.tmp && mv $@.tmp $@

proto: build/.proto

lint: $(VENV)/.installed
	$(PY) tools/buf.py lint
	$(PY) tools/buf.py breaking

run: setup
	$(PY) -m tools.devstack run

test: setup browser lint k8s-check
	SMART110_REQUIRE_BROWSER=1 $(PY) -m pytest -m "not chaos"

# Faults under load (tests/chaos): each service, Envoy and Postgres killed in turn (SIGKILL), then each
# service stopped with SIGTERM as a rolling update does, on one stack.
chaos: setup
	$(PY) -m pytest -m chaos tests/chaos -s

k8s-check: setup
	$(PY) tools/k8s_check.py

unit: setup
	$(PY) -m pytest tests/unit

bench: setup
	$(PY) -m tools.bench --only "$(ONLY)"

token: $(VENV)/.installed
	@$(PY) -m tools.token --role "$(or $(ROLE),dispatcher)" --station "$(or $(STATION),)"

clean:
	rm -rf gen build .pytest_cache web/node_modules web/src/gen
