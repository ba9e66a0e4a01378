# Two entry points for a fresh machine with Python 3.11 and no GPU:
#   make demo   -> creates .venv, installs everything, runs the main job
#   make test   -> creates .venv, installs everything, runs lint + the test suite
#                  (all but the tests marked slow; `make test-slow` runs only those)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-slow lint bench audit clean flower-sim

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of torch, pinned so pip never pulls the multi-GB CUDA build.
	$(BIN)/python -m pip install -q "torch==2.13.0"
	# flower: the Flower equivalence test runs in CI (no Ray: `make flower-sim` adds it).
	$(BIN)/python -m pip install -q -e ".[train,explore,dev,flower]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ipfl demo

test: $(STAMP)
	$(BIN)/ruff check .
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -m "not slow" --doctest-modules atomicio mechanism proofs_checks training tests

# The end-to-end tests marked @pytest.mark.slow (kill -9 and resume, the explorer in chromium).
test-slow: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -m slow tests

flower-sim: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[flower-sim]"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_mechanism.py

audit: $(STAMP)
	$(BIN)/ipfl audit --out .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
