# lutnb: `make help` lists the targets. `make reproduce` and `make test` set up .venv on first use.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# pytest workers: notebooks and slow tests spread over the cores
WORKERS ?= 2

help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned to the CPU build: a bare `torch` requirement would pull a multi-GB CUDA wheel
	$(PY) -m pip install -q "torch==2.13.0" || $(PY) -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(PY) -m pip install -q -e ".[dev,transformers,distributed]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (lutnb)" >/dev/null
	touch $(STAMP)

install: $(STAMP) ## create .venv with torch (CPU), lutnb and its dev/notebook dependencies

reproduce: $(STAMP) ## run every notebook headlessly (SMOKE sizes): figures/, results/, results/executed/
	$(PY) -m lutnb.nb.reproduce

reproduce-full: $(STAMP) ## FULL sizes (hours on a CPU; meant for a GPU machine)
	$(PY) -m lutnb.nb.reproduce --full

test: $(STAMP) ## run the whole test suite (unit tests + notebooks in SMOKE mode)
	$(PY) -m pytest -q -n $(WORKERS) --dist loadfile

smoke: $(STAMP) ## only the notebook tests
	$(PY) -m pytest -q -n $(WORKERS) -m notebook

bench: $(STAMP) ## benchmarks: engine vs dense, simulator, LUTBoost, DSE (prints ratios)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP) ## ruff + notebooks committed stripped
	$(PY) -m ruff check lutnb tests benchmarks tools
	$(PY) tools/nbtool.py check notebooks/*.ipynb

strip: $(STAMP) ## strip outputs, execution counts and widget state from the notebooks
	$(PY) tools/nbtool.py strip notebooks/*.ipynb

lab: $(STAMP) ## open the notebooks in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

scalesim: ## optional: isolated SCALE-Sim 3.0.0 venv for the cross-check test (skipped without it)
	bash tools/scalesim_env.sh

clean: ## remove results/ and executed notebooks (keeps figures/ and the venv)
	rm -rf results/

.PHONY: help install reproduce reproduce-full test smoke bench lint strip lab scalesim clean
