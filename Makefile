# Two commands do all the set-up on a fresh Debian machine:
#   make run   - create .venv, install maild, write a demo config (file transport, ./var) and serve on 127.0.0.1:2525
#   make test  - install the test extras (and the Debian packages the tests drive), run ruff, mypy and pytest
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/maild.toml

.PHONY: run test lint typecheck pytest bench clean install install-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

$(CONFIG):
	mkdir -p $(dir $(CONFIG)) var
	cp config/maild.demo.toml $(CONFIG)
	@echo "wrote $(CONFIG) (demo: mail goes to ./var/sent as .eml files)"

run: install $(CONFIG)
	$(BIN)/maild serve --config $(CONFIG)

lint: install-test
	$(BIN)/ruff check maild tests benchmarks
	$(BIN)/ruff format --check maild tests benchmarks

typecheck: install-test
	$(BIN)/mypy

pytest: install-test
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/quote_stripping.py

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .mypy_cache .ruff_cache
