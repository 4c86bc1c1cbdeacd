# Two commands matter: `make demo` and `make test`. Both build .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest venv clean bench sysdeps screenshot

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/omealert demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check omealert tests bench
	$(BIN)/ruff format --check omealert tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q $(PYTEST_ARGS)

#: Real parts some tests run, as Debian PACKAGE=BINARY: Alertmanager (the HA and shard tests,
#: tests/alertmanager.py) and Chromium (the status page's browser tests, driven by playwright).
#: `make test` installs the missing ones as root (apt-get), else says how to get them.
DEBIAN_PACKAGES := prometheus-alertmanager=/usr/bin/prometheus-alertmanager chromium=/usr/bin/chromium

sysdeps:
	contrib/sysdeps.sh $(DEBIAN_PACKAGES)

test: sysdeps lint typecheck pytest

# the README's docs/status-page.png, taken by the browser test of the status page
screenshot: $(STAMP) sysdeps
	OMEALERT_SCREENSHOT=docs/status-page.png $(BIN)/pytest -q tests/web/test_page_browser.py -k stalled
	rm -f docs/status-page-dark.png docs/status-page-phone.png

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
