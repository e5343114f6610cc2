"""`rnnjax.newton.unroll` (DEER, quasi-DEER, ELK, quasi-ELK) against the sequential `rnnjax.unroll`: outputs,
final carries and gradients for every cell kind; each Newton step against a dense NumPy solve of the same
linear problem; the ELK smoother against a least-squares solve; what happens when it does not converge."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnjax
from rnnjax import cells, newton

TOL_F64 = 1e-9  # outputs and carries, float64 (the target)
TOL_GRAD_F64 = 1e-8  # gradients, float64
TOL_F32 = 1e-5  # outputs, float32 at full matmul precision, contractive networks
TOL_EXACT = 1e-13  # two exact float64 solves of one small linear problem
# quasi-ELK needs a Jacobian dominated by its diagonal: where each unit's state is a rotation (the LRU's
# complex eigenvalues as Re/Im pairs) or W is a dense orthogonal matrix it diverges at every damping tried
# (1e-3 ... 10, docs/parallel_in_time.md), and it must then say so rather than return numbers.
QUASI_ELK_DIVERGES = ("orthogonal", "lru")


def f64(tree):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), tree)


@pytest.fixture(scope="module")
def problems():
    """Every kind, H = 5, I = 3, a batch of 2 sequences of 30 steps and a non-zero initial carry (float64)."""
    out = {}
    for kind in cells.KINDS:
        cell = cells.make(kind, 5)
        params = f64(cell.init(jax.random.key(1), 3))
        xs = jax.random.normal(jax.random.key(2), (2, 30, 3), jnp.float64)
        carry = jax.tree_util.tree_map(
            lambda a: 0.3 * jnp.ones_like(a), cell.initial_carry((2,), jnp.float64)
        )
        out[kind] = (cell, params, xs, carry)
    return out


def max_diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("method", newton.METHODS)
@pytest.mark.parametrize("kind", cells.KINDS)
def test_every_method_gives_the_sequential_outputs_and_gradients_in_float64(problems, kind, method):
    cell, params, xs, carry = problems[kind]
    weights = jax.random.normal(jax.random.key(3), (2, 30, 5), jnp.float64)
    # The damped methods' associative filter takes ~10 s to compile per kind; their sequential filter computes
    # the same iteration (test_associative_and_sequential_solves_give_one_iteration).
    options = dict(method=method, scan="sequential" if method.endswith("elk") else "associative")

    def loss_and_outputs(run, p, x, c):
        final, ys = run(p, x, c)
        return jnp.sum(weights * ys) + sum(jnp.sum(jnp.sin(f)) for f in final), (final, ys)

    def sequential(p, x, c):
        return rnnjax.unroll(cell, p, x, c)

    def parallel(p, x, c):
        return newton.unroll(cell, p, x, c, **options)[:2]

    if method == "quasi-elk" and kind in QUASI_ELK_DIVERGES:
        with pytest.raises(RuntimeError, match="quasi-elk did not reach tol"):
            parallel(params, xs, carry)
        return
    # One compiled program per evaluation: the outputs and the gradient in params, xs and the initial carry.
    (_, want), g_want = jax.jit(
        jax.value_and_grad(lambda *a: loss_and_outputs(sequential, *a), (0, 1, 2), True)
    )(params, xs, carry)
    (_, got), g_got = jax.jit(jax.value_and_grad(lambda *a: loss_and_outputs(parallel, *a), (0, 1, 2), True))(
        params, xs, carry
    )
    assert max_diff(got, want) <= TOL_F64
    assert max_diff(g_got, g_want) <= TOL_GRAD_F64


CONTRACTIVE = {  # float32 problems whose largest Lyapunov exponent is negative at initialisation
    "simple": {},
    "lstm": {},
    "gru": {},
    "lru": {"r_max": 0.9},  # ELK stops just under tol, with errors ~ tol / (1 − ρ): 1.8e-5 at r_max = 0.95
    "mingru": {},
    "minlstm": {},
}


@pytest.mark.parametrize("kind", CONTRACTIVE)
def test_float32_outputs_agree_with_the_sequential_scan_on_contractive_networks(kind):
    cell = cells.make(kind, 8, precision="highest", **CONTRACTIVE[kind])
    params = cell.init(jax.random.key(1), 3)
    xs = jax.random.normal(jax.random.key(2), (2, 150, 3), jnp.float32)
    want = rnnjax.unroll(cell, params, xs)
    for method in newton.METHODS:
        if method == "quasi-elk" and kind in QUASI_ELK_DIVERGES:
            continue
        got = newton.unroll(
            cell, params, xs, method=method, scan="sequential" if method.endswith("elk") else "associative"
        )
        assert got[1].dtype == jnp.float32
        assert max_diff(got[:2], want) <= TOL_F32, method


@pytest.mark.parametrize("method", newton.METHODS)
def test_associative_and_sequential_solves_give_one_iteration(problems, method):
    cell, params, xs, carry = problems["gru"]
    a = newton.unroll(cell, params, xs, carry, method=method, scan="associative")
    b = newton.unroll(cell, params, xs, carry, method=method, scan="sequential")
    assert int(a[2].iterations) == int(b[2].iterations)
    assert max_diff(a[:2], b[:2]) <= TOL_F64


def dense_newton_step(f, s0, xs, S):
    """One Newton step for r(S) = f(s_{t−1}, x_t) − s_t = 0 written as one dense (T·n) x (T·n) system
    (NumPy): the residual's Jacobian is −I on the diagonal blocks and J_t below them."""
    T, n = S.shape
    prev = np.concatenate([s0[None], S[:-1]])
    r = np.stack([np.asarray(f(prev[t], xs[t])) for t in range(T)]) - S
    big = -np.eye(T * n)
    for t in range(1, T):
        big[t * n : (t + 1) * n, (t - 1) * n : t * n] = np.asarray(jax.jacfwd(f)(prev[t], xs[t]))
    return S - np.linalg.solve(big, r.reshape(-1)).reshape(T, n)


def test_one_deer_step_is_the_dense_newton_step(problems):
    """Given a guess, when DEER takes one step (max_iters=1), then it lands where the dense Newton step
    does; and after k steps of DEER or quasi-DEER s_1 … s_k are exact and the later states are not yet."""
    cell, params, xs, _ = problems["simple"]
    x = np.asarray(xs[0, :12])
    truth = np.asarray(rnnjax.unroll(cell, params, x)[1])
    newton_states = jax.jit(newton._newton, static_argnums=0)

    def states(method, k):
        config = newton._Config(cell, method, 1e-30, k, 0.0, "associative", "raise", 1)
        return np.asarray(newton_states(config, params, x[:, None], np.zeros((1, 5)))[0])[:, 0]

    f = newton._flat_step(newton._Config(cell, "deer", 1e-30, 1, 0.0, "associative", "raise", 1))
    want = dense_newton_step(lambda s, xt: f(params, s, xt), np.zeros(5), x, np.zeros((12, 5)))
    assert np.max(np.abs(states("deer", 1) - want)) <= TOL_EXACT
    for method, k in (("deer", 2), ("quasi-deer", 5)):
        S = states(method, k)
        assert np.max(np.abs(S[:k] - truth[:k])) <= TOL_EXACT
        assert np.max(np.abs(S[k:] - truth[k:])) > 1e-6


def least_squares_step(J, r, damping):
    """argmin_Δ Σ_t ‖Δ_t − J_t Δ_{t−1} − r_t‖² + λ Σ_t ‖Δ_t‖² (Δ_0 = 0) by NumPy's lstsq, one sequence."""
    T, n = r.shape
    a = np.eye(T * n)
    for t in range(1, T):
        a[t * n : (t + 1) * n, (t - 1) * n : t * n] = -J[t]
    stacked = np.vstack([a, np.sqrt(damping) * np.eye(T * n)])
    return np.linalg.lstsq(stacked, np.concatenate([r.reshape(-1), np.zeros(T * n)]), rcond=None)[0].reshape(
        T, n
    )


@pytest.mark.parametrize("scan", ["associative", "sequential"])
def test_the_elk_kalman_smoother_solves_the_damped_least_squares_problem(scan):
    """Dense and diagonal algebras, at a damping near DEER, a moderate and a strong one (one compiled
    smoother each: the damping is an argument)."""
    rng = np.random.default_rng(0)
    J, r = rng.normal(size=(9, 2, 4, 4)) * 0.6, rng.normal(size=(9, 2, 4))
    diag = np.einsum("tbii->tbi", J)
    dense = jax.jit(lambda j, r_, lam: newton._damped_step(newton._Dense, j, r_, lam, scan))
    diagonal = jax.jit(lambda j, r_, lam: newton._damped_step(newton._Diagonal, j, r_, lam, scan))
    for damping in (1e-2, 0.7, 30.0):
        got, got_diag = np.asarray(dense(J, r, damping)), np.asarray(diagonal(diag, r, damping))
        for b in range(2):
            want = least_squares_step(J[:, b], r[:, b], damping)
            assert np.max(np.abs(got[:, b] - want)) <= TOL_EXACT
            want_diag = least_squares_step(np.einsum("ti,ij->tij", diag[:, b], np.eye(4)), r[:, b], damping)
            assert np.max(np.abs(got_diag[:, b] - want_diag)) <= TOL_EXACT


def test_layouts_reverse_unbatched_and_the_default_carry_match_rnnjax_unroll(problems):
    cell, params, xs, carry = problems["lstm"]
    for kwargs in ({"reverse": True}, {"time_major": True}):
        x = jnp.moveaxis(xs, 1, 0) if kwargs.get("time_major") else xs
        assert max_diff(newton.unroll(cell, params, x, carry, **kwargs)[:2],
                        rnnjax.unroll(cell, params, x, carry, **kwargs)) <= TOL_F64  # fmt: skip
    assert max_diff(newton.unroll(cell, params, xs[0])[:2], rnnjax.unroll(cell, params, xs[0])) <= TOL_F64
    jitted = jax.jit(lambda p, x: newton.unroll(cell, p, x)[:2])
    assert max_diff(jitted(params, xs), rnnjax.unroll(cell, params, xs)) <= TOL_F64


def test_info_reports_the_iterations_and_the_residual(problems):
    cell, params, xs, carry = problems["gru"]
    _, _, info = newton.unroll(cell, params, xs, carry, tol=1e-12)
    assert bool(info.converged) and 1 <= int(info.iterations) <= 30 and float(info.residual) <= 1e-12
    loose = newton.unroll(cell, params, xs, carry, tol=1e-3)[2]
    assert int(loose.iterations) < int(info.iterations)
    assert 1e-12 < float(loose.residual) <= 1e-3  # stopped as soon as it was under tol


def test_an_unconverged_solve_is_never_returned_as_converged(problems):
    cell, params, xs, carry = problems["simple"]
    with pytest.raises(RuntimeError, match=r"deer did not reach tol=1e-12 within max_iters=2 .*on_failure"):
        newton.unroll(cell, params, xs, carry, max_iters=2)
    with pytest.warns(RuntimeWarning, match="the sequential scan computed the result instead"):
        final, ys, info = newton.unroll(cell, params, xs, carry, max_iters=2, on_failure="sequential")
    assert not bool(info.converged) and int(info.iterations) == 2
    assert max_diff((final, ys), rnnjax.unroll(cell, params, xs, carry)) <= TOL_F64
    # Under jit nothing can be raised: every output is NaN instead.
    poisoned = jax.jit(lambda p: newton.unroll(cell, p, xs, carry, max_iters=2)[1])(params)
    assert bool(jnp.all(jnp.isnan(poisoned)))
    fallen, info = jax.jit(
        lambda p: newton.unroll(cell, p, xs, carry, max_iters=2, on_failure="sequential")[1:]
    )(params)
    assert not bool(info.converged)  # under jit no warning can be issued: info says it
    assert max_diff(fallen, rnnjax.unroll(cell, params, xs, carry)[1]) <= TOL_F64


def test_the_quasi_adjoint_falls_back_to_bptt_when_it_runs_out_of_iterations(problems):
    """quasi-DEER with max_iters=3: the forward falls back to the scan (warning), and so does the adjoint
    iteration; the gradient is still BPTT's."""
    cell, params, xs, carry = problems["gru"]

    def loss(run, p):
        return jnp.sum(run(p)[1] ** 2)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = jax.grad(
            lambda p: loss(lambda q: newton.unroll(cell, q, xs, carry, method="quasi-deer", max_iters=3,
                                                   on_failure="sequential"), p))(params)  # fmt: skip
        want = jax.grad(lambda p: loss(lambda q: rnnjax.unroll(cell, q, xs, carry), p))(params)
    assert max_diff(got, want) <= TOL_GRAD_F64


def test_bad_options_are_refused_naming_the_argument(problems):
    cell, params, xs, _ = problems["simple"]
    with pytest.raises(
        ValueError, match=r"method: expected one of \('deer', 'quasi-deer', 'elk', 'quasi-elk'\)"
    ):
        newton.unroll(cell, params, xs, method="newton")
    with pytest.raises(ValueError, match="damping: only the damped methods"):
        newton.unroll(cell, params, xs, damping=0.1)
    with pytest.raises(ValueError, match="damping: expected None or a positive number"):
        newton.unroll(cell, params, xs, method="elk", damping=0.0)
    with pytest.raises(ValueError, match="tol: expected None or a positive number"):
        newton.unroll(cell, params, xs, tol=-1.0)
    with pytest.raises(TypeError, match="max_iters: expected None or an int >= 1"):
        newton.unroll(cell, params, xs, max_iters=2.5)
    with pytest.raises(ValueError, match="on_failure: expected one of"):
        newton.unroll(cell, params, xs, on_failure="ignore")
    with pytest.raises(ValueError, match="scan: expected one of"):
        newton.unroll(cell, params, xs, scan="parallel")
    with pytest.raises(ValueError, match="xs: expected 3 features per step"):
        newton.unroll(cell, params, xs[..., :2])
    with pytest.raises(TypeError, match="cell: expected an rnnjax.cells.Cell"):
        newton.unroll("lstm", params, xs)


def test_the_dense_elk_solve_equals_lapack_with_and_without_pivoting():
    """ELK's Gauss–Jordan elimination (elementwise jnp, no LAPACK call) against `np.linalg.solve`, on
    random matrices and on ones whose first pivot is zero (a row swap is needed)."""
    rng = np.random.default_rng(0)
    m, b = rng.normal(size=(3, 2, 6, 6)), rng.normal(size=(3, 2, 6, 4))
    swapped = np.broadcast_to(np.eye(6), m.shape).copy()
    swapped[..., :2, :2] = [[0.0, 1.0], [1.0, 0.0]]
    for matrix in (m, swapped):
        got = np.asarray(newton._gauss_jordan(jnp.asarray(matrix), jnp.asarray(b)))
        assert np.max(np.abs(got - np.linalg.solve(matrix, b))) <= TOL_EXACT
