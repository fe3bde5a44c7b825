# Entry points for people and CI. Logic lives in scripts/; recipes stay short.
#   make setup | run | test | lint | pocci | appliance | clean
# Variables (override on the command line, e.g. `make run NIMBO_LISTEN=127.0.0.1:9000`):
NIMBO_DATA_DIR ?= $(CURDIR)/nimbo-data
NIMBO_LISTEN ?= 127.0.0.1:8787
URL ?= http://$(NIMBO_LISTEN)
POCCI_USER ?= admin
POCCI_PASSWORD ?= $(shell cat "$(NIMBO_DATA_DIR)/admin-password" 2>/dev/null)
PYTEST_ARGS ?=

SHELL := /bin/bash
VENV := $(CURDIR)/.venv

.PHONY: setup run test lint pocci appliance clean

setup:
	@scripts/setup

run: setup
	@scripts/ensure-services
	NIMBO_DATA_DIR="$(NIMBO_DATA_DIR)" $(VENV)/bin/nimbo up --listen "$(NIMBO_LISTEN)" --data-dir "$(NIMBO_DATA_DIR)"

test: setup appliance
	@scripts/ensure-services
	@scripts/run-tests $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# the test guest (appliances/cache/nimbo-test-appliance.qcow2); does nothing when up to date
appliance:
	@appliances/build-test-appliance

pocci: setup
	@scripts/pocci "$(URL)" "$(POCCI_USER)" "$(POCCI_PASSWORD)"

clean:
	rm -rf .tools .pytest_cache .mypy_cache .ruff_cache build *.egg-info
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
