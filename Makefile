# lutnb: `make help` lists the targets. `make reproduce` and `make test` set up .venv on first use.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# pytest workers: notebooks and slow tests spread over the cores
WORKERS ?= 2

help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-15s %s\n", $$1, $$2}'

# PyTorch, pinned, from PyTorch's own index for one route. LUTNB_TORCH=cpu (the CPU wheel, ~200 MB) or a CUDA
# tag of that index: cu130 (CUDA 13.0, driver >= 580), cu128, cu126. Default: cu130 when `nvidia-smi -L` lists a
# GPU, else cpu. A bare `torch` from PyPI is the multi-GB CUDA build on Linux, so torch is installed first, by
# exact version and local tag (https://docs.pytorch.org/get-started/previous-versions: --index-url .../whl/<tag>).
TORCH_VERSION ?= 2.13.0
LUTNB_TORCH ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cu130 || echo cpu)
TORCH_INDEX ?= https://download.pytorch.org/whl/$(LUTNB_TORCH)
TORCH_SPEC := torch==$(TORCH_VERSION)+$(LUTNB_TORCH)
STAMP := $(VENV)/.installed-$(LUTNB_TORCH)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@echo "torch route: $(TORCH_SPEC) from $(TORCH_INDEX) (set LUTNB_TORCH=cpu|cu130|cu128|cu126 to choose)"
	$(PY) -m pip install -q "$(TORCH_SPEC)" --index-url $(TORCH_INDEX)
	$(PY) -m pip install -q -e ".[dev,transformers,distributed]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (lutnb)" >/dev/null
	rm -f $(VENV)/.installed $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP) ## create .venv: torch (CPU, or CUDA where nvidia-smi sees a GPU), lutnb, dev/notebook deps

torch-route: ## print the torch wheel and index `make install` uses here (override: LUTNB_TORCH=cpu|cu130|...)
	@echo "$(TORCH_SPEC) --index-url $(TORCH_INDEX)"

torch-dry-run: ## ask pip what the torch route resolves to, without installing (needs the index or a wheel cache)
	python3 -m pip install --dry-run --no-deps --ignore-installed "$(TORCH_SPEC)" --index-url $(TORCH_INDEX)

reproduce: $(STAMP) ## every notebook headlessly, SMOKE sizes: figures/_smoke/ (stamped), results/ (all git-ignored)
	$(PY) -m lutnb.reproduce

reproduce-full: $(STAMP) ## FULL sizes (GPU; ARGS=--allow-cpu): figures/, data/reference_results/ + provenance
	$(PY) -m lutnb.reproduce --full $(ARGS)

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

.PHONY: help install torch-route torch-dry-run reproduce reproduce-full test smoke bench lint strip lab scalesim clean
