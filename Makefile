# darkgan: the two commands a new user needs.
#   make demo   installs everything, then runs the main job on its defaults
#   make test   installs everything, then runs the test suite (what CI runs)
PYTHON ?= python3
export DARKGAN_MODELS_DIR ?= $(abspath ../shared/models)

.PHONY: setup demo test test-fast

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) -m darkgan pipeline --out data/default

test: setup
	$(PYTHON) -m pytest -q

test-fast: setup
	$(PYTHON) -m pytest -q -m "not slow"
