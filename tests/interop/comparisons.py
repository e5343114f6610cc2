"""What the interop tests share: sizes, the float32 tolerance, random weights, and the record of the
largest |Δ| per layer kind. A helper module, not a test module: import it as `interop.comparisons` (tests/
is on sys.path under pytest, and with `PYTHONPATH=tests` when a test file runs as a script).

`PYTHONPATH=tests python tests/interop/test_torch.py` (likewise test_keras.py, test_flax.py) runs every
comparison of that library once and prints the largest |Δ| per layer kind.
"""

import jax
import jax.numpy as jnp
import numpy as np

from rnnjax.cells import GRUParams, LSTMParams, SimpleParams

FLOAT32_TOL = 1e-5  # float32 outputs of two implementations of the same function
B, T, I, H = 3, 5, 4, 3  # I != H and I != G·H, so a missing transpose cannot go unnoticed
INSTALL = "install the compare extra: pip install -e '.[compare]'"

# Largest |Δ| seen per layer kind, filled by `close` (printed by `print_max_abs_diff`).
MAX_ABS_DIFF: dict[str, float] = {}


def close(label: str, got, want) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (label, got.shape, want.shape)
    diff = float(np.max(np.abs(got - want)))
    MAX_ABS_DIFF[label] = max(MAX_ABS_DIFF.get(label, 0.0), diff)
    assert diff <= FLOAT32_TOL, f"{label}: max |Δ| = {diff:.2e} > {FLOAT32_TOL}"


def print_max_abs_diff() -> None:
    for label, diff in sorted(MAX_ABS_DIFF.items()):
        print(f"{label}: max |Δ| {diff:.1e}")


def assert_trees_equal(got, want) -> None:
    """Same structure (NamedTuple types included) and bit-identical leaves of the same dtype."""
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        np.testing.assert_array_equal(g, w)


def uniform(rng, shape, scale=0.6):
    return rng.uniform(-scale, scale, shape).astype(np.float32)


def random_params(kind: str, input_size: int, rng, reset_after: bool = True):
    """rnnjax params with every entry (biases included) drawn from U(±0.6), float32."""
    G = {"simple": 1, "lstm": 4, "gru": 3}[kind]  # written out here, independently of rnnjax.cells
    w_ih, w_hh, b = uniform(rng, (input_size, G * H)), uniform(rng, (H, G * H)), uniform(rng, (G * H,))
    arrays = [jnp.asarray(a) for a in (w_ih, w_hh, b)]
    if kind == "simple":
        return SimpleParams(*arrays)
    if kind == "lstm":
        return LSTMParams(*arrays)
    return GRUParams(*arrays, jnp.asarray(uniform(rng, (H,))) if reset_after else None)
