# Two commands for a fresh clone: `make demo` and `make test`.
# Both create .venv and install vislens with pinned versions (requirements/constraints.txt).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.vislens-installed
DEMO_DIR ?= demo-study

.PHONY: install system-deps demo test lint typecheck pytest bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

# PostgreSQL and Chromium from Debian, for the annotation-store and browser tests.
system-deps:
	bash scripts/system-deps.sh

demo: install
	$(BIN)/vislens demo $(DEMO_DIR)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

pytest: install system-deps
	$(BIN)/pytest --durations=15

test: lint typecheck pytest

# Every bench/*.py in its quick mode; figures, machine and command into bench/results.md.
bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
