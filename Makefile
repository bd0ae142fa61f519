# Two commands: `make test` and `make demo`. Both set up .venv/ first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch that lies on these machines' disk; a plain `torch` would pull a CUDA build.
TORCH := torch==2.13.0

.PHONY: test demo setup clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test,plots]'
	touch $@

test: setup
	$(PY) -m pytest

demo: setup
	$(PY) -m lstmlab.cli demo

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .hypothesis
