# Everything a fresh machine needs: `make demo` runs the main job, `make test` the checks.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# One virtual environment per supported mcp major (`make test` runs the suite in each):
#   .venv           mcp 2.x + FastMCP 4 (the default one: demo, bench, lint, mypy)
#   .venv-mcp1      mcp 1.x (newest) + FastMCP 3: the whole suite again
#   .venv-fastmcp2  mcp 1.24 (the oldest supported) + FastMCP 2: the mcp 1.x integration tests
MCP2_PINS := 'mcp>=2.3,<3' 'fastmcp==4.1.2'
MCP1_PINS := 'mcp==1.30.0' 'fastmcp==3.4.11'
FASTMCP2_PINS := 'mcp==1.24.0' 'fastmcp==2.14.7'
BIN_MCP1 := .venv-mcp1/bin
BIN_FASTMCP2 := .venv-fastmcp2/bin
# mypy under mcp 1.x: every module but the mcp 2.x-only ones, whose imports are followed silently.
MCP1_TYPED := $(filter-out shinzo_otel/_mcp2.py shinzo_otel/admin/%,$(wildcard shinzo_otel/*.py shinzo_otel/*/*.py))

.PHONY: install demo test test-mcp2 test-mcp1 test-fastmcp2 coverage lint typecheck bench clean

# $(call venv,DIR,PINS): a virtual environment with the project (editable), its test tools and PINS.
define venv
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install --quiet --upgrade pip
	$(1)/bin/python -m pip install --quiet -e '.[test]' $(2)
	touch $(1)/bin/.installed
endef

$(BIN)/.installed: pyproject.toml
	$(call venv,$(VENV),$(MCP2_PINS))

$(BIN_MCP1)/.installed: pyproject.toml
	$(call venv,.venv-mcp1,$(MCP1_PINS))

$(BIN_FASTMCP2)/.installed: pyproject.toml
	$(call venv,.venv-fastmcp2,$(FASTMCP2_PINS))

install: $(BIN)/.installed

demo: install
	$(BIN)/python examples/quickstart.py

lint: install
	$(BIN)/ruff check shinzo_otel tests examples benchmarks
	$(BIN)/ruff format --check shinzo_otel tests examples benchmarks

typecheck: install
	$(BIN)/mypy

test: lint typecheck test-mcp2 test-mcp1 test-fastmcp2 coverage

# Each run adds its data files (subprocesses included, whatever their working directory: hence the
# absolute COVERAGE_FILE); `coverage` combines all of them.
export COVERAGE_FILE := $(CURDIR)/.coverage

test-mcp2: install
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest -q

test-mcp1: $(BIN_MCP1)/.installed
	$(BIN_MCP1)/mypy --follow-imports=silent $(MCP1_TYPED)
	$(BIN_MCP1)/coverage run -m pytest -q

test-fastmcp2: $(BIN_FASTMCP2)/.installed
	$(BIN_FASTMCP2)/coverage run -m pytest -q tests/mcp1

coverage: install
	$(BIN)/coverage combine -q
	$(BIN)/coverage report

bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .venv-mcp1 .venv-fastmcp2 .mypy_cache .ruff_cache build dist *.egg-info .coverage .coverage.*
