# Two commands for a new user: `make quickstart` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: quickstart test venv clean

$(VENV)/.installed: setup.py
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch 2.13.0 has a CPU-only wheel here; newer versions pull several GB of CUDA packages.
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

quickstart: venv
	$(PY) -m experiments.quickstart --workdir=workdirs/quickstart

# Tests: 8 CPU devices for the sharding tests; LLVM optimisation level 0, because the suite compiles
# hundreds of tiny programs once each and spends more time optimising them than running them (-9% wall).
test: venv
	XLA_FLAGS="--xla_force_host_platform_device_count=8 --xla_backend_optimization_level=0" $(PY) -m pytest -q -n 2 --dist loadfile --durations=25 tests

clean:
	rm -rf $(VENV) workdirs
