# Every target runs inside .venv, which `make install` creates from the pinned requirements.
PY := .venv/bin/python
PYTHON ?= python3

.PHONY: install demo test lint bench bench-record package screenshot clean

.venv/installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	touch $@

install: .venv/installed

demo: install
	.venv/bin/esa-scheduler run --emulator --schedule schedule/ --at 2026-12-05T01:45:00Z --state-dir .esa-scheduler/demo

# Four workers on two cores: the suite mostly waits (servers, subprocesses, Chromium), not computes.
test: install
	$(PY) -m pytest -q -n 4

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# The Function Compute code package: handler, package, schedule/ and Linux wheels for the
# template's runtime (FC_PYTHON_VERSION must match `Runtime: python<version>` in template.yml).
PACKAGE_ZIP := dist/esa-scheduler.zip
FC_PYTHON_VERSION := 3.10

package: install
	$(PY) scripts/package.py --output $(PACKAGE_ZIP) --python-version $(FC_PYTHON_VERSION)

# make bench prints the figures and fails on a missed target; make bench-record also writes BENCHMARKS.md.
bench: install
	$(PY) bench/run_all.py

bench-record: install
	$(PY) bench/run_all.py --record

# The README's picture of the HTML timeline (plan --html on schedule/sample.yaml), taken by headless Chromium.
screenshot: install
	$(PY) tests/browser.py --output docs/timeline.png

clean:
	rm -rf .venv dist build .mypy_cache .ruff_cache .pytest_cache
