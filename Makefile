# Two commands do everything: `make notebooks` (reports/) and `make test`. Both set up what they need.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
KERNEL  := mnist-notebooks
PROFILE ?= $(or $(MNIST_PROFILE),full)
NB      ?=
HOST    ?= 127.0.0.1
PORT    ?= 8000
DEFAULT_CONFIG := configs/step3.yaml
CONFIG  ?=
SET     ?=

.PHONY: help setup data notebooks readme test browser train config-missing bench bench-app app lab clean distclean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv with every dependency and the Jupyter kernel (quick when done)

# Re-install only when the dependency list changes. pip's notes about local index folders are noise.
# An environment without pip (what `python -m venv` leaves where the venv module is missing, or an
# interrupted creation) is removed and made again, never trusted: a failed attempt leaves no .venv.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(None if sys.version_info >= (3, 10) else "error: Python 3.10+ needed, found " + sys.version.split()[0] + " ($(PYTHON)). Choose another interpreter: make PYTHON=python3.12 $(or $(MAKECMDGOALS),setup)")'
	@$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV) && $(PY) -m pip --version >/dev/null 2>&1; } || { \
	  rm -rf $(VENV); \
	  echo "error: $(PYTHON) could not make a virtual environment with pip in $(VENV) (removed). Install its venv module (Debian/Ubuntu: apt install python3-venv), or choose another interpreter: make PYTHON=python3.12 $(or $(MAKECMDGOALS),setup)" >&2; \
	  exit 1; }
	@echo "Installing dependencies into $(VENV) (torch is large: a few minutes the first time) ..."
	@$(PY) -m pip install --quiet --progress-bar off -e . 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python ($(KERNEL))" >/dev/null
	@touch $(STAMP)
	@echo "Environment ready: $(VENV) (kernel '$(KERNEL)')."

data: setup  ## fetch MNIST and verify its checksums (data/MNIST/raw)
	@$(PY) -m mnist_utils.data

notebooks: data  ## run every notebook headless into reports/ (NB=01 for one; PROFILE=smoke for a quick pass, into reports/smoke/)
	@MNIST_PROFILE=$(PROFILE) $(PY) -m mnist_utils.run $(NB)

readme: setup  ## the README's results section from full-profile runs of every notebook and a whole make bench run
	@$(PY) -m mnist_utils.readme

test: data browser  ## unit tests plus every notebook in the smoke profile, and the page in a real browser
	@$(PY) -m pytest

# The browser test drives Debian's Chromium through its chromedriver: installed here when missing (as root, with
# apt-get), else an error naming the fix. MNIST_SKIP_BROWSER=1 skips the test and this step.
browser:  ## Chromium and chromedriver for the browser test (apt-get install when missing)
	@if [[ "$${MNIST_SKIP_BROWSER:-}" == 1 ]] || { command -v chromium && command -v chromedriver; } >/dev/null; then \
	  exit 0; fi; \
	if [[ "$$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then \
	  echo "Installing Chromium and chromedriver for the browser test ..."; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null; \
	else \
	  echo "error: the browser test needs Chromium and chromedriver: sudo apt-get install chromium chromium-driver (Debian), or skip it: MNIST_SKIP_BROWSER=1 make test" >&2; \
	  exit 1; \
	fi

# Without a config, say so before the setup and the data, which take minutes on a fresh machine.
train: $(if $(CONFIG),data,config-missing)  ## train a config file's recipe, e.g. make train CONFIG=configs/step3.yaml (SET="lr=0.05 label_smoothing=0.1", PROFILE=smoke, REPLACE=1)
	@MNIST_PROFILE=$(PROFILE) $(PY) -m mnist_utils train --config $(CONFIG) $(foreach s,$(SET),--set $(s)) $(if $(filter 1 yes true,$(REPLACE)),--replace)

config-missing:
	@echo "error: name a config: make train CONFIG=configs/step3.yaml (they are in configs/)" >&2; exit 2

bench: data  ## training speed: pipeline, time to 99.0% / 99.4%, PyTorch's MNIST example for comparison
	@$(PY) -m mnist_utils.bench

bench-app: data  ## the page's API: one prediction's latency (p50, p95) and 20 clients at once for 10 s
	@MNIST_PROFILE=$(PROFILE) $(PY) -m mnist_utils.app_bench

# The page needs a trained model: on a fresh machine, train the default (Step 3) one first.
app: data  ## the web page on 127.0.0.1:8000 (HOST=, PORT=): draw or upload a digit; trains the Step 3 model if none is saved
	@MNIST_PROFILE=$(PROFILE) $(PY) -m mnist_utils.app --check || { \
	  echo "No Step 3 model saved yet: training one with $(DEFAULT_CONFIG) first ..."; \
	  MNIST_PROFILE=$(PROFILE) $(PY) -m mnist_utils train --config $(DEFAULT_CONFIG); }
	@MNIST_PROFILE=$(PROFILE) $(PY) -m mnist_utils.app --host $(HOST) --port $(PORT)

lab: data  ## open JupyterLab on the notebooks with the project's kernel
	@$(VENV)/bin/jupyter lab --notebook-dir=notebooks

clean:  ## remove generated reports and caches (keeps .venv and data)
	rm -rf reports .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +

distclean: clean  ## also remove the environment and the downloaded data
	rm -rf $(VENV) data *.egg-info
