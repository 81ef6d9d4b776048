# The two commands an artist or CI needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-test test lint typecheck pytest demo clean

setup:
	PYTHON=$(PYTHON) sh scripts/bootstrap.sh

setup-test:
	PYTHON=$(PYTHON) sh scripts/bootstrap.sh --bpy --browser

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

# Two test processes: most end-to-end tests wait on real processes, so two
# share 2 cores well (docs/developer.md, Tests). Each module stays in one
# process (loadscope), so a module's farm starts once. PYTEST_WORKERS=0 runs
# them in this one process.
PYTEST_WORKERS ?= 2
pytest: setup-test
	FARM_REQUIRE_COMPONENTS=1 $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadscope $(PYTEST_ARGS)

test: setup-test lint typecheck pytest

demo: setup
	$(PY) scripts/demo.py

clean:
	rm -rf demo-output .pytest_cache .mypy_cache .ruff_cache

# The Blender extension: one zip per platform in build/extension/ (downloads the
# wheels once into build/wheels/, validates each zip with Blender's blender_ext.py).
.PHONY: extension
extension: setup
	PYTHON=$(PYTHON) sh scripts/bootstrap.sh --bpy
	$(PY) scripts/build_extension.py
