"""`parallel.sweep_map` against a plain `jax.vmap`, on one device and (in a subprocess) on three."""

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax.train import parallel


def _fn(point):
    return {"norm2": jnp.sum(point["a"] ** 2), "scaled": point["a"] * point["b"]}


def test_sweep_map_equals_vmap_on_one_device():
    rng = np.random.default_rng(0)
    tree = {"a": rng.normal(size=(5, 3)), "b": rng.normal(size=(5,))}
    got = parallel.sweep_map(_fn, tree)
    want = jax.jit(jax.vmap(_fn))(tree)  # the same compiled reduction order
    for key in want:
        assert isinstance(got[key], np.ndarray)
        np.testing.assert_array_equal(got[key], np.asarray(want[key]))


def test_sweep_map_pads_points_to_the_device_count_and_drops_the_copies():
    """Five points over three host devices: shards of 2, 2 and 1 + one repeated point, dropped again."""
    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, numpy as np
        from rnnjax.train import parallel
        assert jax.device_count() == 3, jax.devices()
        rng = np.random.default_rng(0)
        tree = {"a": rng.normal(size=(5, 3)), "b": rng.normal(size=(5,))}
        fn = lambda p: {"norm2": jnp.sum(p["a"] ** 2), "scaled": p["a"] * p["b"]}
        got = parallel.sweep_map(fn, tree)
        want = jax.jit(jax.vmap(fn))(tree)
        for key in want:
            assert got[key].shape == want[key].shape, (key, got[key].shape)
            np.testing.assert_array_equal(got[key], np.asarray(want[key]))
        print("ok")
        """
    )
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=3", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize(
    "tree, match",
    [
        ({}, "tree: expected at least one array"),
        ({"a": np.zeros((3, 2)), "b": np.zeros((4,))}, r"tree: expected arrays sharing a leading .*\(3, 2\)"),
        ({"a": np.zeros((0, 2))}, r"tree: expected arrays sharing a leading axis of length >= 1"),
        ({"a": np.float64(1.0)}, r"tree: expected arrays sharing a leading axis.*\(\)"),
    ],
)
def test_sweep_map_refuses_points_without_a_common_leading_axis(tree, match):
    with pytest.raises(ValueError, match=match):
        parallel.sweep_map(_fn, tree)
