# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create .venv and install from this project's own files.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
DEMO   ?= demo-out

.PHONY: demo test lint typecheck unit system-deps bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

## demo: simulate a month of a VPN estate with a breach in it, hunt it (report in
##       $(DEMO)/report/report.html), score the alerts against the ground truth
demo: $(STAMP)
	bash scripts/demo.sh $(DEMO)

## system-deps: Debian packages the tests start for real (nfdump, softflowd, chromium)
system-deps:
	bash scripts/install-system-deps.sh

## test: lint, type-check and run the whole test suite
test: $(STAMP) system-deps lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

## bench: the benchmarks behind BENCHMARKS.md (slow; not part of `make test`)
bench: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) $(DEMO) vpnsentry-data .pytest_cache .mypy_cache .ruff_cache
