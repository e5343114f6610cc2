"""`rnnjax.linear_scan.solve`: both evaluations (associative scan, sequential scan) against a NumPy loop
written from the definition, values and gradients, over sequence length x dtype x direction; the
gradients of the two evaluations against each other and against the loop's own adjoint recursion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnjax import linear_scan

TOL_F64 = 1e-12  # float64, |a| <= 1: rounding of a few hundred multiply-adds
TOL_F32 = 2e-5  # float32 against the float64 loop, relative to the largest |h|


def numpy_loop(a, b, h0, reverse=False):
    """h_t = a_t h_{t-1} + b_t with a Python loop (float64 or complex128)."""
    a, b = np.broadcast_to(a, b.shape), np.asarray(b)
    h = np.zeros(b.shape[1:], b.dtype) if h0 is None else np.array(h0, b.dtype)
    out = np.empty_like(b)
    order = range(b.shape[0] - 1, -1, -1) if reverse else range(b.shape[0])
    for t in order:
        h = a[t] * h + b[t]
        out[t] = h
    return out


def numpy_adjoint(a, b, h0, w):
    """d(sum(w * h))/d(a, b, h0) by the hand-derived backward recursion (real inputs): with g_T = w_T and
    g_t = w_t + a_{t+1} g_{t+1}, dL/db_t = g_t, dL/da_t = g_t h_{t-1}, dL/dh0 = a_1 g_1."""
    h = numpy_loop(a, b, h0)
    prev = np.concatenate([np.asarray(h0)[None], h[:-1]])
    g = np.zeros_like(b)
    carry = np.zeros(b.shape[1:])
    for t in range(b.shape[0] - 1, -1, -1):
        carry = w[t] + (a[t + 1] * carry if t + 1 < b.shape[0] else 0.0)
        g[t] = carry
    return g * prev, g, a[0] * g[0]


def draws(T, shape=(3, 4), complex_=False, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (T, *shape))
    b = rng.normal(size=(T, *shape))
    h0 = rng.normal(size=shape)
    if complex_:
        a = a * np.exp(1j * rng.uniform(0, 2 * np.pi, a.shape))
        b = b + 1j * rng.normal(size=b.shape)
        h0 = h0 + 1j * rng.normal(size=shape)
    return a, b, h0


@pytest.mark.parametrize("method", linear_scan.METHODS)
@pytest.mark.parametrize("T", [1, 7, 300])
@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_solve_equals_the_numpy_loop_in_float64(method, T, complex_, reverse):
    a, b, h0 = draws(T, complex_=complex_, seed=T)
    got = linear_scan.solve(jnp.asarray(a), jnp.asarray(b), jnp.asarray(h0), method=method, reverse=reverse)
    want = numpy_loop(a, b, h0, reverse=reverse)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=TOL_F64 * np.abs(want).max())


@pytest.mark.parametrize("method", linear_scan.METHODS)
def test_float32_within_rounding_and_zero_initial_state(method):
    a, b, _ = draws(200, seed=3)
    got = linear_scan.solve(jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), method=method)
    want = numpy_loop(a, b, None)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=TOL_F32 * np.abs(want).max())


def test_broadcast_multiplier_per_feature():
    """a of shape [1, H] (one multiplier per feature for every step, as the LRU's lambda)."""
    a, b, h0 = draws(50, shape=(5,), seed=4)
    got = linear_scan.solve(jnp.asarray(a[:1]), jnp.asarray(b), jnp.asarray(h0))
    np.testing.assert_allclose(np.asarray(got), numpy_loop(np.broadcast_to(a[:1], b.shape), b, h0),
                               rtol=0, atol=TOL_F64 * 10)  # fmt: skip


@pytest.mark.parametrize("method", linear_scan.METHODS)
def test_gradients_equal_the_hand_derived_adjoint(method):
    a, b, h0 = draws(40, seed=5)
    w = np.random.default_rng(6).normal(size=b.shape)

    def loss(a, b, h0):
        return jnp.sum(jnp.asarray(w) * linear_scan.solve(a, b, h0, method=method))

    got = jax.grad(loss, argnums=(0, 1, 2))(jnp.asarray(a), jnp.asarray(b), jnp.asarray(h0))
    for g, want in zip(got, numpy_adjoint(a, b, h0, w), strict=True):
        np.testing.assert_allclose(np.asarray(g), want, rtol=0, atol=TOL_F64 * max(1.0, np.abs(want).max()))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: linear_scan.solve(jnp.ones(3), jnp.ones(3), method="parallel"), "method: expected one of"),
        (lambda: linear_scan.solve(jnp.ones((3, 2)), jnp.ones((3, 4))), "a: expected a shape broadcastable"),
        (lambda: linear_scan.solve(jnp.ones((3, 4)), jnp.ones((3, 4)), jnp.ones(3)), "h0: expected shape"),
        (lambda: linear_scan.solve(jnp.ones(()), jnp.ones(())), "b: expected an array [T, ...]"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError) as caught:
        call()
    assert str(caught.value).startswith(message)


def numpy_dense_loop(a, b, h0, reverse=False):
    """h_t = A_t h_{t-1} + b_t with a Python loop over t and NumPy matrix products."""
    h = np.zeros(b.shape[1:]) if h0 is None else np.array(h0)
    out = np.empty_like(b)
    for t in range(b.shape[0] - 1, -1, -1) if reverse else range(b.shape[0]):
        h = np.einsum("...ij,...j->...i", a[t], h) + b[t]
        out[t] = h
    return out


@pytest.mark.parametrize("method", linear_scan.METHODS)
@pytest.mark.parametrize("T", [1, 7, 300])
@pytest.mark.parametrize("reverse", [False, True])
def test_solve_dense_equals_the_numpy_loop_in_float64(method, T, reverse):
    rng = np.random.default_rng(T)
    a = rng.normal(size=(T, 2, 4, 4)) / 4  # spectral radius about 1/2: the products stay O(1)
    b, h0 = rng.normal(size=(T, 2, 4)), rng.normal(size=(2, 4))
    got = linear_scan.solve_dense(
        jnp.asarray(a), jnp.asarray(b), jnp.asarray(h0), method=method, reverse=reverse
    )
    np.testing.assert_allclose(np.asarray(got), numpy_dense_loop(a, b, h0, reverse), rtol=0, atol=TOL_F64)
    no_h0 = linear_scan.solve_dense(jnp.asarray(a), jnp.asarray(b), method=method, reverse=reverse)
    np.testing.assert_allclose(np.asarray(no_h0), numpy_dense_loop(a, b, None, reverse), rtol=0, atol=TOL_F64)


def test_solve_dense_with_diagonal_matrices_is_solve():
    a, b, h0 = draws(50)
    dense = jnp.asarray(np.einsum("tbi,ij->tbij", a, np.eye(4)))
    got = linear_scan.solve_dense(dense, jnp.asarray(b), jnp.asarray(h0))
    np.testing.assert_allclose(np.asarray(got), np.asarray(linear_scan.solve(a, b, h0)), rtol=0, atol=TOL_F64)


def test_solve_dense_refuses_bad_shapes_naming_the_argument():
    a, b = jnp.zeros((5, 2, 3, 3)), jnp.zeros((5, 2, 3))
    with pytest.raises(ValueError, match=r"a: expected shape \(5, 2, 3, 3\)"):
        linear_scan.solve_dense(a[..., :2], b)
    with pytest.raises(ValueError, match=r"h0: expected shape \(2, 3\)"):
        linear_scan.solve_dense(a, b, jnp.zeros(3))
    with pytest.raises(ValueError, match="b: expected an array"):
        linear_scan.solve_dense(a[:, 0], jnp.zeros(5))
    with pytest.raises(ValueError, match="method: expected one of"):
        linear_scan.solve_dense(a, b, method="blelloch")
