# Two commands do all the set-up on a fresh Debian machine:
#   make run   - create .venv, install maild, write a demo config (file transport, ./var) and serve on 127.0.0.1:2525
#   make test  - install the test extras (and the Debian packages the tests drive), run ruff, mypy and pytest
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/maild.toml

.PHONY: run test lint typecheck pytest bench clean install install-test system-deps

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

# Debian packages the tests drive: dovecot-imapd (the IMAP intake tests run their own throwaway instance,
# with their own config and ports; its imap binary tells it is there, as dovecot-core alone has no IMAP),
# and postfix (tests/test_postfix_e2e.py runs its own instances with `postfix -c DIR`; the package is
# preseeded to "No configuration", so it writes no /etc/postfix/main.cf and relays nothing).
# Installed only as root; otherwise those tests are skipped. The system services the packages may
# start are stopped and disabled again right away.
system-deps:
	@if [ -x /usr/lib/dovecot/imap ] || { ! command -v apt-get && command -v dovecot; } >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" -eq 0 ]; then \
		echo "installing dovecot-imapd (for the IMAP tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null || exit 1; \
		if [ -d /run/systemd/system ]; then for unit in dovecot.socket dovecot.service; do systemctl disable --now -q $$unit || true; done; \
		else service dovecot stop >/dev/null 2>&1 || true; update-rc.d dovecot disable >/dev/null 2>&1 || true; fi; \
	else echo "dovecot-imapd is not installed and you are not root: the IMAP tests will be skipped"; fi
	@if [ -x /usr/sbin/postfix ] || { ! command -v apt-get && command -v postfix; } >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" -eq 0 ]; then \
		echo "installing postfix (for the Postfix tests)"; \
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections || exit 1; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-remove postfix >/dev/null \
			|| { echo "installing postfix failed (--no-remove: it never replaces another installed MTA)"; exit 1; }; \
		if [ -d /run/systemd/system ]; then systemctl disable --now -q postfix.service || true; \
		else service postfix stop >/dev/null 2>&1 || true; update-rc.d postfix disable >/dev/null 2>&1 || true; fi; \
	else echo "postfix is not installed and you are not root: the Postfix tests will be skipped"; fi

pytest: install-test system-deps
	$(BIN)/pytest -q

test: lint typecheck pytest

# The benchmarks print figures and never fail on them. ingest.py (speed and memory of intake and processing,
# against a bare aiosmtpd ceiling) takes ~30 min with a 1,000,000-ticket store and 100,000 mails through one
# daemon: BENCH_ARGS=--quick for ~4 min.
BENCH_ARGS ?=
bench: install-test
	$(BIN)/python benchmarks/ingest.py $(BENCH_ARGS)
	$(BIN)/python benchmarks/pipeline_cpu.py
	$(BIN)/python benchmarks/pipeline_cpu.py --delivered
	$(BIN)/python benchmarks/long_ticket.py
	$(BIN)/python benchmarks/quote_stripping.py
	$(BIN)/python benchmarks/automail.py

clean:
	rm -rf $(VENV) var build *.egg-info .pytest_cache .mypy_cache .ruff_cache
