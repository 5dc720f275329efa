# ls-widget developer commands. Everything runs inside .venv, which `make` creates on demand.
#
#   make test    create .venv if needed, install, then ruff + mypy, the JS tests, pytest
#   make demo    JupyterLab on notebooks/quickstart.ipynb (the live widget)
#   make example headless: writes demo-plane.png and demo-line.png
#   make bench   benchmark against the naive loop and loss-landscapes
#   make js      build the frontend bundle (npm ci + esbuild)
#   make lint    ruff check + mypy   make format   ruff format
#   make clean   remove caches and demo output (keeps .venv; `make distclean` removes it too)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned to the CPU wheel that lies on this kind of machine's disk; it is installed
# before the project so that the project's `torch>=2.2` is already met and pip fetches nothing.
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.installed

BUNDLE := ls_widget/static/widget.js
JS_SRC := $(wildcard js/src/*.ts js/src/*.css) js/build.mjs js/package.json
NODE_STAMP := js/node_modules/.package-lock.json

.PHONY: venv install js test test-js test-py lint format demo example bench clean distclean

venv install: $(STAMP)

# The frontend bundle (esbuild → ls_widget/static/) is built before the package is installed,
# so the wheel build hook finds it and does nothing.
$(STAMP): pyproject.toml $(BUNDLE)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install "$(TORCH)"
	$(BIN)/pip install -e ".[widget,dev,bench]"
	touch $(STAMP)

$(NODE_STAMP): js/package.json js/package-lock.json
	cd js && npm ci --no-audit --no-fund

$(BUNDLE): $(NODE_STAMP) $(JS_SRC)
	cd js && npm run build

js: $(BUNDLE)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .

# Every test: lint, the frontend's unit tests and type check, then pytest (engine, widget
# protocol, browser end-to-end in Chromium, executed notebooks).
test: lint test-js test-py

test-js: $(BUNDLE)
	cd js && npm run typecheck && npm test

test-py: $(STAMP)
	$(BIN)/python -m pytest -q

# The live widget in JupyterLab, on the quickstart notebook.
demo: $(STAMP)
	$(BIN)/jupyter lab notebooks/quickstart.ipynb

# Headless: trains a small MLP and writes demo-plane.png and demo-line.png.
example: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/surface.py

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist test-output *.egg-info
	rm -f demo-plane.png demo-line.png
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
