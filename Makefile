# Two commands do everything on a fresh machine:
#   make demo   set up .venv and run the main experiment
#   make test   set up .venv, lint, and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Tests and CI read the shared copies of the corpora (see ../shared/data/README.md).
export RNNJAX_DATA ?= $(abspath ../shared/data)
# XLA runs its own thread pool; LAPACK calls made from it (QR, SVD) should not start more threads.
export OPENBLAS_NUM_THREADS ?= 1
# Keras 3 (the `compare` extra, used only to check rnnjax.interop) runs on JAX.
export KERAS_BACKEND ?= jax
# Extras installed by `make setup`: compare = torch (CPU build) + keras, which the interop tests check
# against (they skip without them). `make test EXTRAS=dev` leaves them out.
EXTRAS ?= dev,compare
# Test workers: 2 suits a 2-core machine.
WORKERS ?= 2

.PHONY: setup demo test lint clean gpu-check

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m experiments.gradient_norms

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q -n $(WORKERS) tests

# On a machine with an NVIDIA GPU (set up as in docs/gpu.md): the test suite, then the GPU grid of
# benchmarks.throughput at both matmul precisions, and the ratios. Without a GPU it says so and fails,
# running nothing. Options of benchmarks/gpu_check.py go in GPU_CHECK_ARGS, e.g. "--skip-tests".
gpu-check: $(STAMP)
	$(BIN)/python -m benchmarks.gpu_check --workers $(WORKERS) $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis
