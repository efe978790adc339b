# The two commands of the README: `make demo` and `make test`. Each makes its own virtual environment.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck docs unit bench mutation clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/entra-ciam demo

lint: $(STAMP)
	$(BIN)/ruff check src tests examples bench tools
	$(BIN)/ruff format --check src tests examples bench tools

typecheck: $(STAMP)
	$(BIN)/mypy --strict

unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

test: lint typecheck docs unit

bench: $(STAMP)
	bash bench/provision.sh
	$(BIN)/python bench/run.py

# Mutation testing of the security core (docs/mutation.md); not part of `make test`: tens of
# minutes. MUTATION_MODULES narrows it, e.g. make mutation MUTATION_MODULES="jose.py claims.py"
mutation: $(STAMP)
	$(BIN)/python tools/mutation.py $(MUTATION_MODULES)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
