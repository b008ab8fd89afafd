# The two commands of README.md. Each creates .venv and installs what is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Quiet TensorFlow's C++ start-up chatter; errors still show.
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: demo test lint clean docs docs-serve wheel-check model-table-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A stamp per install flavour, redone when setup.cfg changes.
$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

# Trains ResNet-20 on the MNIST sample shipped in the package, evaluates, exports, summarises.
demo: $(VENV)/.installed
	$(BIN)/python recipes/mnist_resnet.py

test: $(VENV)/.installed-dev
	$(BIN)/ruff check tfresnet tests recipes benchmarks scripts notebooks
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/docs-check
	$(BIN)/python -m pytest -q -n 2 --timeout=900 --durations=30 tests

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check tfresnet tests recipes benchmarks scripts notebooks

# The documentation site into site/, the notebooks executed smoke-sized (docs/hooks/notebooks.py;
# minutes the first time, reused while a notebook is unchanged). make test builds it unexecuted.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 TFRESNET_DOCS_EXECUTE=1 $(BIN)/mkdocs build --strict

# The same site on http://127.0.0.1:8000, rebuilt as pages change.
docs-serve: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 TFRESNET_DOCS_EXECUTE=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

# Builds the wheel, installs it (not editable, no network) into a fresh venv outside the checkout
# and runs the installed tfresnet there: --version, a smoke run by recipe name, predict, export;
# checks every file of tfresnet/ was installed. About 70 s on 2 shared CPU cores. CI runs it.
wheel-check: $(VENV)/.installed-dev
	$(BIN)/python scripts/wheel_check.py

# Rebuilds every registered model and compares its counts with tfresnet/model_table.json, the
# table `tfresnet list-models` reads (make test checks a sample). About 3.5 minutes on 2 CPU cores.
model-table-check: $(VENV)/.installed-dev
	$(BIN)/python scripts/model_table.py --check

clean:
	rm -rf $(VENV) build site *.egg-info
