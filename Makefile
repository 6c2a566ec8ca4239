# sortkd-cache: every target does its own setup from a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The paper's regime on digits100 (about 65 CPU-seconds); the old 10-class demo:
# $(BIN)/sortkd-cache run digits_demo --out demo_digits10
demo: $(STAMP)
	$(BIN)/sortkd-cache run pipelines/recipes/digits100_demo.toml --out demo_out --threads 1

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py
	$(BIN)/python tools/lint_imports.py
	$(BIN)/python -m pytest -q --durations=25

# the tiers (docs/development.md): fast (under 2 minutes), not slow, and everything (make test);
# the fast tier collects only the files that mark tests `fast`
FAST_FILES = $(shell grep -rl --include='*.py' 'pytest.mark.fast' tests)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "fast and not slow" --durations=10 $(FAST_FILES)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/typecheck.py
	$(BIN)/python tools/lint_imports.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py --out BENCHMARKS.md

clean:
	rm -rf $(VENV) demo_out demo_digits10 bench_out *.egg-info .mypy_cache .pytest_cache .ruff_cache
