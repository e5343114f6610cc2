"""`rnnjax.backend`: the per-backend default of the scan unroll, and that it reaches every loop."""

import functools

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax
from rnnjax import backend, cells, fused


def _scan_unrolls(fn, *args) -> set:
    """The `unroll` parameter of every scan in the jaxpr of `fn(*args)`, nested jaxprs included."""
    found = set()

    def visit(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "scan":
                found.add(eqn.params["unroll"])
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jax.make_jaxpr(fn)(*args).jaxpr)
    return found


def test_table_names_the_backends_and_falls_back_to_one():
    assert backend.default_scan_unroll("cpu") == backend.SCAN_UNROLL["cpu"]
    assert backend.default_scan_unroll("GPU") == backend.SCAN_UNROLL["gpu"] == backend.SCAN_UNROLL["cuda"]
    assert backend.default_scan_unroll("some-new-chip") == 1
    assert backend.default_scan_unroll() == backend.SCAN_UNROLL.get(jax.default_backend(), 1)
    with pytest.raises(TypeError, match=r"platform: expected a backend name such as 'cpu' or 'gpu', got 3"):
        backend.default_scan_unroll(3)
    assert backend.scan_unroll(4) == 4 and backend.scan_unroll(True) is True
    with pytest.raises(ValueError, match="unroll: expected"):
        backend.scan_unroll(0)


@pytest.mark.parametrize("kind", ["simple", "lstm", "gru"])
def test_default_unroll_follows_the_table_in_the_forward_and_backward_loops(kind, monkeypatch):
    """With the table's entry for this backend set to 8, every scan of `unroll` (the fused kernel's forward
    and hand-written backward loop, and the plain path) runs 8 steps per iteration, and the results equal
    those of unroll=1 (the same arithmetic in another loop shape)."""
    cell = cells.make(kind, 6, dtype=jnp.float64)
    params = cell.init(jax.random.key(0), 3)
    xs = jax.random.normal(jax.random.key(1), (2, 21, 3), jnp.float64)  # T = 21: not a multiple of 8

    def loss(p, fast, unroll=None):
        return jnp.sum(jnp.sin(rnnjax.unroll(cell, p, xs, fast=fast, unroll=unroll)[1]))

    monkeypatch.setitem(backend.SCAN_UNROLL, jax.default_backend(), 8)
    for fast in (None, False):  # None: the kernel where the cell has one (simple, LSTM)
        assert _scan_unrolls(functools.partial(jax.grad(loss), fast=fast), params) == {8}
        value_and_grad = jax.jit(jax.value_and_grad(loss), static_argnums=(1, 2))  # one compilation each
        got = value_and_grad(params, fast)
        want = value_and_grad(params, fast, 1)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    monkeypatch.setitem(backend.SCAN_UNROLL, jax.default_backend(), 1)
    assert _scan_unrolls(functools.partial(jax.grad(loss), fast=None), params) == {1}


def test_fused_kernels_resolve_none_and_check_explicit_values():
    cell = cells.lstm(4, dtype=jnp.float64)
    params = cell.init(jax.random.key(0), 2)
    xs = jnp.ones((5, 3, 2), jnp.float64)
    a = fused.lstm_sequence(params, cell.initial_carry((3,), jnp.float64), xs)
    b = fused.lstm_sequence(params, cell.initial_carry((3,), jnp.float64), xs, unroll=1)
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(TypeError, match=r"unroll: expected .*got 'fast'"):
        fused.lstm_sequence(params, cell.initial_carry((3,), jnp.float64), xs, unroll="fast")
