# The two commands of the README: `make demo` and `make test`.
# Each creates .venv when missing and installs into it (torch==2.13.0 first:
# its CPU build is what pip finds offline; a bare `torch` would pull CUDA).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.nulens-installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nulens demo --out demo-run

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

clean:
	rm -rf demo-run .pytest_cache
