PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
# make build's own small environment: ansible-core alone, no JDK, no test stack.
BUILD_VENV := .venv-build
BUILD_READY := $(BUILD_VENV)/.ready
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: test lint sanity unit demo bench build decision-environment prerequisites clean

$(READY): requirements.txt requirements-test.txt constraints.txt
	@tools/check-prerequisites.sh $(PYTHON)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -r requirements-test.txt -c constraints.txt
	touch $(READY)

prerequisites: $(READY)
	@tools/check-prerequisites.sh $(BIN)/python

## Every test: lint, type checks, sanity, unit, integration and end-to-end. Two pytest-xdist
## workers: an end-to-end test keeps about one core busy; what tests count is printed under
## "figures" at the end.
test: prerequisites lint sanity
	$(BIN)/python -m pytest --numprocesses 2 --dist worksteal -m "not soak" tests

lint: $(READY)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/ansible-lint

## The collection as Galaxy sees it: ansible-test sanity on the built tarball (no ignore
## entries), antsibull-changelog lint and galaxy-importer, with no error or warning.
sanity: $(READY)
	tools/sanity.sh

## The whole pipeline, end to end, on a local SQS endpoint; ends by itself (see README).
demo: prerequisites
	$(BIN)/python -m demo.run_demo

## The SQS source's soak (benchmarks/soak.py, README "Soak"): 10 minutes of steady traffic
## through injected faults, then a 10,000-message backlog; about 35 minutes in all on 2 cores.
## SOAK_SECONDS=60 SOAK_BACKLOG=1000 for a short run. CI does not run it.
.PHONY: soak soak-source
soak: soak-source
soak-source: prerequisites
	PYTHONPATH=.:extensions/eda/plugins/event_source nice $(BIN)/python -m benchmarks.soak

$(BUILD_READY): constraints.txt
	@tools/check-prerequisites.sh $(PYTHON) --python-only
	test -x $(BUILD_VENV)/bin/python || $(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/python -m pip install --quiet ansible-core -c constraints.txt
	touch $(BUILD_READY)

## The collection tarball in build/, as `ansible-galaxy collection install` takes it: the same
## as a plain `ansible-galaxy collection build`, with only ansible-core installed.
build: $(BUILD_READY)
	mkdir -p build
	$(BUILD_VENV)/bin/ansible-galaxy collection build --force --output-path build .

## The decision environment's build context (ansible-builder v3) in build/decision-environment.
decision-environment: build $(READY)
	$(BIN)/ansible-builder create --file decision-environment/decision-environment.yml \
		--context build/decision-environment --output-filename Containerfile

bench: prerequisites
	PYTHONPATH=.:extensions/eda/plugins/event_source $(BIN)/python -m benchmarks

## Crash safety at issue 7's full sizes (200 events and 8 SIGKILLs; 600 events on 3
## activations; 6 FIFO groups x 50), durable mode and the plain control; prints the figures.
## make test runs the same tests small. DURABLE_EDA_SEED=N picks other kill moments.
## Part of make soak; alone: make soak-crash.
.PHONY: soak-crash
soak: soak-crash
soak-crash: prerequisites
	DURABLE_EDA_SCALE=full $(BIN)/python -m pytest tests/e2e/test_crash_safety.py \
		tests/e2e/test_durability.py -s -p no:cacheprovider

clean:
	rm -rf build $(BUILD_VENV) .pytest_cache .mypy_cache .ruff_cache
