PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench bench-loops bench-gradbench bench-autograd clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip >/dev/null

demo: $(PY)
	$(PY) -m pip install -e . >/dev/null
	$(PY) examples/quickstart.py

test: $(PY)
	$(PY) -m pip install -e '.[test]' >/dev/null
	$(PY) -m pytest -q -n logical --maxprocesses=4

bench: $(PY)
	$(PY) -m pip install -e '.[bench]' >/dev/null
	$(PY) perf/bench.py
	$(PY) perf/gradbench.py

bench-loops: $(PY)
	$(PY) -m pip install -e '.[bench]' >/dev/null
	$(PY) perf/loops.py

bench-gradbench: $(PY)
	$(PY) -m pip install -e '.[bench]' >/dev/null
	$(PY) perf/gradbench.py

bench-autograd: $(PY)
	$(PY) -m pip install -e '.[test]' >/dev/null
	$(PY) perf/autograd_shim.py

clean:
	rm -rf $(VENV) build *.egg-info
