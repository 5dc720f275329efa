# ls-widget developer commands. Everything runs inside .venv, which `make` creates on demand.
#
#   make test    create .venv if needed, install, then ruff + pytest
#   make demo    headless example: writes demo-plane.png and demo-line.png
#   make bench   benchmark against the naive loop and loss-landscapes
#   make lint    ruff check          make format   ruff format
#   make clean   remove caches and demo output (keeps .venv; `make distclean` removes it too)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned to the CPU wheel that lies on this kind of machine's disk; it is installed
# before the project so that the project's `torch>=2.2` is already met and pip fetches nothing.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: venv install test lint format demo bench clean distclean

venv install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install "$(TORCH)"
	$(BIN)/pip install -e ".[dev,bench]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .

# Later: JS unit tests (vitest), browser end-to-end tests and executed notebooks join `test`
# here once js/ and notebooks/ exist.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/surface.py

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist test-output *.egg-info
	rm -f demo-plane.png demo-line.png
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
