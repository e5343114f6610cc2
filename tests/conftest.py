"""Shared test set-up: float64 enabled for JAX, float32 matmuls pinned at full precision, the cell forms
under test, and conversions to the NumPy reference's plain-dict conventions."""

import os

import jax

jax.config.update("jax_enable_x64", True)
# float32 tolerances must mean the same on every backend: without this, XLA's default float32 matmul on
# recent NVIDIA GPUs is TF32 (errors of 1e-4 to 1.6e-3 in 27 float32 tests on an H200). Tests of the
# precision policy itself set other defaults locally (tests/test_precision.py).
jax.config.update("jax_default_matmul_precision", "highest")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from rnnjax import cells  # noqa: E402

# Every cell form the library offers: (name, constructor of a Cell given hidden_size and dtype).
CELL_FORMS = {
    "simple-tanh": lambda h, dtype=jnp.float64: cells.simple(h, "tanh", dtype=dtype),
    "simple-relu": lambda h, dtype=jnp.float64: cells.simple(h, "relu", dtype=dtype),
    "simple-linear": lambda h, dtype=jnp.float64: cells.simple(h, "linear", dtype=dtype),
    "simple-sigmoid": lambda h, dtype=jnp.float64: cells.simple(h, "sigmoid", dtype=dtype),
    "lstm": lambda h, dtype=jnp.float64: cells.lstm(h, dtype=dtype),
    "gru-reset-after": lambda h, dtype=jnp.float64: cells.gru(h, reset_after=True, dtype=dtype),
    "gru-reset-before": lambda h, dtype=jnp.float64: cells.gru(h, reset_after=False, dtype=dtype),
}


def reference_kwargs(cell):
    """The NumPy reference's description of a cell's equations."""
    return dict(
        kind=cell.kind,
        activation=cell.activation,
        reset_after=bool(cell.reset_after) if cell.reset_after is not None else True,
    )


def as_dict(named_tuple):
    """NamedTuple of arrays (None fields dropped) -> dict of float64 NumPy arrays."""
    return {k: np.asarray(v, np.float64) for k, v in named_tuple._asdict().items() if v is not None}


def perturb_params(params, key, scale=0.3):
    """Add noise to every parameter so zero biases and special structure don't hide bugs."""
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    noisy = [p + scale * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)]
    return jax.tree_util.tree_unflatten(treedef, noisy)


def max_rel_err(a, b):
    """Norm-wise relative error max|a - b| / max|b| over matching pytrees (b is the reference)."""
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb), (len(la), len(lb))
    worst = 0.0
    for x, y in zip(la, lb):
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        assert x.shape == y.shape, (x.shape, y.shape)
        scale = max(np.max(np.abs(y)), np.finfo(np.float64).tiny) if y.size else 1.0
        worst = max(worst, float(np.max(np.abs(x - y)) / scale) if y.size else 0.0)
    return worst


# Hypothesis: random exploration locally, a fixed derandomised sample in CI (reproducible failures).
from hypothesis import settings  # noqa: E402

settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
