# Developer and CI entry points. `make test` is what .ci/run executes.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV := .venv/bin
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.cache/collections

.PHONY: bootstrap demo test sanity lint unit integration molecule

bootstrap:
	tools/bootstrap

demo: bootstrap
	$(VENV)/python tools/testbed.py demo

test: bootstrap
	$(MAKE) --no-print-directory --keep-going sanity lint unit integration molecule

sanity:
	tools/sanity

lint:
	PATH="$(CURDIR)/.venv/bin:$$PATH" $(VENV)/ansible-lint

unit:
	$(VENV)/pytest -q tests/unit

integration:
	$(VENV)/pytest -q tests/integration

molecule:
	tools/molecule
