# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo serve test lint clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "itsm-hub needs Python 3.11 or newer; run with PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins every dependency to versions tested together; pyproject.toml keeps the lower bounds.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/itsm demo

# The ops path on the demo's data: a Prefect server (UI on :4200), the deployments and a worker, until Ctrl-C.
serve: $(STAMP)
	$(BIN)/itsm serve --demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

clean:
	rm -rf $(VENV) demo demo-serve .pytest_cache .ruff_cache
