"""Parallel-in-time evaluation of a nonlinear recurrence by Newton's method: DEER, quasi-DEER, ELK, quasi-ELK.

Running a cell over T steps, s_t = f(s_{t−1}, x_t) (s the carry's fields joined into one vector of n
numbers), is finding the root of the residual r_t(S) = f(s_{t−1}, x_t) − s_t for all t at once. At a guess
S = (s_1 … s_T), with p_t = s_{t−1} (p_1 = s_0) and J_t = ∂f/∂s at (p_t, x_t):

- **DEER** (Lim, Zhu, Selfridge & Kasim, ICLR 2024, "Parallelizing non-linear sequential models over the
  sequence length"): one Newton step linearises f around S, so the correction Δ solves the linear recurrence
  Δ_t = J_t Δ_{t−1} + r_t, Δ_0 = 0, which `linear_scan.solve_dense` solves for every t in O(log T) depth
  (O(T n³) work, O(T n²) memory); convergence is quadratic near the solution.
- **quasi-DEER** (Gonzalez, Warrington, Smith & Linderman, NeurIPS 2024, "Towards scalable and stable
  parallelization of nonlinear RNNs"): J_t replaced by its diagonal, so each step is the diagonal solve
  `linear_scan.solve` (O(T n) work and memory after the diagonal is found); convergence is linear.
- **ELK** and **quasi-ELK** (same paper): Levenberg–Marquardt steps. Each minimises
  Σ_t ‖Δ_t − J_t Δ_{t−1} − r_t‖² + λ_k Σ_t ‖Δ_t‖², a linear-Gaussian smoothing problem (dynamics noise I,
  observations Δ_t = 0 with noise I/λ_k), solved by the parallel Kalman filter and smoother of Särkkä &
  García-Fernández (2021, "Temporal parallelization of Bayesian smoothers"): the damping keeps steps short
  where undamped Newton steps overshoot. λ → 0 is DEER. Unlike the paper's fixed λ, here
  λ_k = `damping` · min(1, residual_k): full damping far from the solution, Newton's steps (and quadratic
  convergence) near it.

Every method's only fixed point is the sequential trajectory (r = 0). DEER and quasi-DEER make s_1 … s_k
exact after k steps, so in exact arithmetic they converge within T steps; how much sooner is set by the
largest Lyapunov exponent of the dynamics (Gonzalez, Kozachkov, Zoltowski, Clarkson & Linderman, NeurIPS
2025, "Predictability enables parallelization of nonlinear state space models"): bounded iterations for a
contracting network, growing with T for a chaotic one (`experiments.parallel_in_time` measures it).

Gradients (`jax.grad` through `unroll`) do not differentiate the iterations: at the converged trajectory the
adjoint μ_t = ḡ_t + J_{t+1}ᵀ μ_{t+1} is one reverse linear solve with the transposed Jacobians (dense
methods), or, for the quasi methods, that solve iterated with the diagonal and the exact Jᵀμ from vector-
Jacobian products (never forming J); the parameter, input and initial-carry gradients are then one
vector-Jacobian product of the parallel step. This is the implicit function theorem applied to r(S) = 0.

    final_carry, ys, info = rnnjax.newton.unroll(cell, params, xs)                # DEER
    final_carry, ys, info = rnnjax.newton.unroll(cell, params, xs, method="quasi-deer", tol=1e-6)
    info.iterations, info.residual, info.converged

(`rnnjax.train.parallel` is data parallelism over devices; this module is parallelism over time.)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from rnnjax import _checks, linear_scan
from rnnjax.cell_core import Cell, check_cell
from rnnjax.unrolling import unroll as sequential_unroll

__all__ = ["METHODS", "ON_FAILURE", "NewtonInfo", "default_tol", "unroll"]

METHODS = ("deer", "quasi-deer", "elk", "quasi-elk")
# What `unroll` does when the residual is still above `tol` after `max_iters` steps.
ON_FAILURE = ("raise", "sequential")
# ELK's λ when none is given: small against J_tᵀJ_t's order-one scale, so steps stay close to Newton's
# where Newton behaves and are shortened where it overshoots.
DEFAULT_DAMPING = 1e-2
# Above this many Jacobian entries at once, the diagonal of the quasi methods is found in chunks of time.
_DIAGONAL_CHUNK_ENTRIES = 1 << 24


class NewtonInfo(NamedTuple):
    """How the Newton iteration went (arrays, so they can be returned under `jit`)."""

    iterations: jax.Array  # int32 [], Newton steps taken
    residual: jax.Array  # [], max |f(s_{t−1}, x_t) − s_t| / max(1, max |s_t|) at the last iterate
    converged: jax.Array  # bool [], residual <= tol


def default_tol(dtype) -> float:
    """The residual at which `unroll` stops when no `tol` is given: 1e-12 in float64 (about 5000 ulps), 5e-7
    in float32 (about 4 ulps, twice the floor measured on the kinds' float32 trajectories), relative to
    max(1, max |s_t|)."""
    return 1e-12 if jnp.dtype(dtype) == jnp.float64 else 5e-7


class _Config(NamedTuple):
    """The static part of a Newton solve (hashable: it is a `jit` and `custom_vjp` static argument)."""

    cell: Cell
    method: str
    tol: float
    max_iters: int
    damping: float
    scan: str
    on_failure: str
    fields: int


# ---------------------------------------------------------------------------------------------
# The step on one flat state vector, evaluated at every time step at once


def _flat_step(config: _Config) -> Callable:
    """`(params, s <[n]>, x <[I]>) -> s' <[n]>`: one unbatched step on the carry's fields joined."""
    carry_type = type(config.cell.initial_carry())

    def f(params, s, x):
        new, _ = config.cell.step(params, carry_type(*jnp.split(s, config.fields, axis=-1)), x)
        return jnp.concatenate(list(new), axis=-1)

    return f


def _at_every_step(fn: Callable) -> Callable:
    """`fn(params, p, x)` on one example -> the same over <[T, B, …]> time and batch axes."""
    return jax.vmap(jax.vmap(fn, in_axes=(None, 0, 0)), in_axes=(None, 0, 0))


def _previous(S, s0):
    """p_t = s_{t−1} for every t <[T, B, n]> (p_1 = s_0)."""
    return jnp.concatenate([s0[None], S[:-1]])


def _jacobians(config: _Config, params, P, xs):
    """J_t = ∂f/∂s at (p_t, x_t): <[T, B, n, n]> (dense methods) or its diagonal <[T, B, n]> (quasi)."""
    f = _flat_step(config)
    jac = jax.jacfwd(f, argnums=1)
    if not config.method.startswith("quasi"):
        return _at_every_step(jac)(params, P, xs)
    diagonal = _at_every_step(lambda p, s, x: jnp.diagonal(jac(p, s, x)))
    T, B, n = P.shape
    chunk = max(1, _DIAGONAL_CHUNK_ENTRIES // (B * n * n))
    if chunk >= T:
        return diagonal(params, P, xs)
    # One step's full Jacobian is needed to read its diagonal: bound the n x n blocks alive at once.
    return jax.lax.map(lambda px: diagonal(params, px[0][None], px[1][None])[0], (P, xs), batch_size=chunk)


# ---------------------------------------------------------------------------------------------
# The Kalman filter and smoother of the damped (ELK) steps, in two algebras: dense matrices and diagonals


def _gauss_jordan(m, b):
    """m⁻¹ b for <[..., n, n]> m and <[..., n, k]> b by Gauss–Jordan elimination with partial pivoting,
    written in elementwise jnp operations. `jnp.linalg.solve` (a LAPACK call) inside the ELK iteration left
    repeated XLA:CPU executions deadlocked (jax 0.10.2, twice in `experiments.parallel_in_time`)."""
    n = m.shape[-1]
    aug = jnp.concatenate([m, b], axis=-1)  # [..., n, n + k]
    rows, cols = jnp.arange(n), jnp.arange(aug.shape[-1])

    def eliminate(k, aug):
        e_k, c_k = (rows == k).astype(aug.dtype), (cols == k).astype(aug.dtype)  # row k, column k
        column = jnp.sum(aug * c_k, axis=-1)  # aug[..., :, k]
        p = jnp.argmax(jnp.where(rows >= k, jnp.abs(column), -1.0), axis=-1)  # the pivot row, [...]
        e_p = (rows == p[..., None]).astype(aug.dtype)  # [..., n]
        row_k = jnp.sum(aug * e_k[:, None], axis=-2)
        row_p = jnp.sum(aug * e_p[..., :, None], axis=-2)
        aug = aug + (e_k - e_p)[..., :, None] * (row_p - row_k)[..., None, :]  # swap rows k and p
        pivot = row_p / jnp.sum(row_p * c_k, axis=-1, keepdims=True)  # the new row k, 1 at column k
        column = jnp.sum(aug * c_k, axis=-1)
        return aug - column[..., :, None] * pivot[..., None, :] + e_k[:, None] * pivot[..., None, :]

    return jax.lax.fori_loop(0, n, eliminate, aug)[..., n:]


class _Dense:
    """n x n blocks."""

    @staticmethod
    def mm(a, b):
        return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)

    @staticmethod
    def mv(a, v):
        return _Dense.mm(a, v[..., None])[..., 0]

    @staticmethod
    def t(a):
        return jnp.swapaxes(a, -1, -2)

    @staticmethod
    def left_inverse_times(m, a):  # m⁻¹ a
        return _gauss_jordan(m, a)

    @staticmethod
    def eye_like(a):
        return jnp.broadcast_to(jnp.eye(a.shape[-1], dtype=a.dtype), a.shape)


class _Diagonal:
    """Diagonal blocks stored as their diagonals: every product is elementwise."""

    @staticmethod
    def mm(a, b):
        return a * b

    mv = mm

    @staticmethod
    def t(a):
        return a

    @staticmethod
    def left_inverse_times(m, a):
        return a / m

    @staticmethod
    def eye_like(a):
        return jnp.ones_like(a)


def _filter_combine(alg):
    """The associative operator on filtering elements (A, b, C, η, J) of Särkkä & García-Fernández (2021),
    Lemma 8: element i (earlier) then j (later). C and J are symmetric, so (I + J_j C_i)ᵀ = I + C_i J_j."""

    def combine(i, j):
        a_i, b_i, c_i, eta_i, j_i = i
        a_j, b_j, c_j, eta_j, j_j = j
        m = alg.eye_like(c_i) + alg.mm(c_i, j_j)  # I + C_i J_j
        aj_minv = alg.t(alg.left_inverse_times(alg.t(m), alg.t(a_j)))  # A_j (I + C_i J_j)⁻¹
        ait_ninv = alg.t(alg.left_inverse_times(m, a_i))  # A_iᵀ (I + J_j C_i)⁻¹
        return (
            alg.mm(aj_minv, a_i),
            alg.mv(aj_minv, b_i + alg.mv(c_i, eta_j)) + b_j,
            alg.mm(alg.mm(aj_minv, c_i), alg.t(a_j)) + c_j,
            alg.mv(ait_ninv, eta_j - alg.mv(j_j, b_i)) + eta_i,
            alg.mm(alg.mm(ait_ninv, j_j), a_i) + j_i,
        )

    return combine


def _damped_step(alg, jac, r, damping: float, scan: str):
    """The Levenberg–Marquardt correction Δ minimising Σ_t ‖Δ_t − J_t Δ_{t−1} − r_t‖² + λ Σ_t ‖Δ_t‖²
    (Δ_0 = 0): the smoothed mean of the state-space model Δ_t = J_t Δ_{t−1} + r_t + w_t, w_t ~ N(0, I),
    observed as 0 = Δ_t + v_t, v_t ~ N(0, I/λ).

    Filtering elements (their Lemma 7 with F = J_t, u = r_t, Q = I, H = I, R = I/λ, y = 0, and gain
    κ = λ/(1 + λ)): A_t = (1 − κ) J_t, b_t = (1 − κ) r_t, C_t = (1 − κ) I, η_t = −κ J_tᵀ r_t,
    J'_t = κ J_tᵀ J_t; the first step knows Δ_0 = 0, so its A, η and J' are zero. The smoother is the
    backward recurrence Δ̂_t = E_t Δ̂_{t+1} + g_t with E_t = P_t J_{t+1}ᵀ (J_{t+1} P_t J_{t+1}ᵀ + I)⁻¹ and
    g_t = m_t − E_t (J_{t+1} m_t + r_{t+1}), Δ̂_T = m_T (filtered means m_t, covariances P_t).
    """
    kappa = damping / (1.0 + damping)
    first = jnp.arange(jac.shape[0]).reshape((-1,) + (1,) * (jac.ndim - 1)) == 0
    jac_f = jnp.where(first, 0.0, jac)  # the first step's Δ_0 is known
    eye = alg.eye_like(jac)
    elements = (
        (1 - kappa) * jac_f,
        (1 - kappa) * r,
        (1 - kappa) * eye,
        -kappa * alg.mv(alg.t(jac_f), r),
        kappa * alg.mm(alg.t(jac_f), jac_f),
    )
    combine = _filter_combine(alg)
    if scan == "associative":
        _, means, covs, _, _ = jax.lax.associative_scan(combine, elements, axis=0)
    else:
        first_element = jax.tree_util.tree_map(lambda e: e[0], elements)

        def fold(acc, element):
            acc = combine(acc, element)
            return acc, acc[1:3]

        rest = jax.tree_util.tree_map(lambda e: e[1:], elements)
        _, (m_rest, p_rest) = jax.lax.scan(fold, first_element, rest)
        means = jnp.concatenate([first_element[1][None], m_rest])
        covs = jnp.concatenate([first_element[2][None], p_rest])
    nxt = jac[1:]  # J_{t+1} for t < T
    pjt = alg.mm(covs[:-1], alg.t(nxt))  # P_t J_{t+1}ᵀ
    s = alg.mm(nxt, pjt) + eye[1:]  # J_{t+1} P_t J_{t+1}ᵀ + I (symmetric)
    gain = alg.t(alg.left_inverse_times(s, alg.t(pjt)))  # E_t = P_t J_{t+1}ᵀ s⁻¹
    g = means[:-1] - alg.mv(gain, alg.mv(nxt, means[:-1]) + r[1:])
    gain = jnp.concatenate([gain, jnp.zeros_like(gain[:1])])
    g = jnp.concatenate([g, means[-1:]])
    solve = linear_scan.solve if alg is _Diagonal else linear_scan.solve_dense
    return solve(gain, g, method=scan, reverse=True)


# ---------------------------------------------------------------------------------------------
# The Newton iteration and its implicit gradient


def _correction(config: _Config, jac, r, size):
    """Δ for one Newton (or damped) step from the Jacobians (or diagonals), the residual r and its size."""
    if config.method == "deer":
        return linear_scan.solve_dense(jac, r, method=config.scan)
    if config.method == "quasi-deer":
        return linear_scan.solve(jac, r, method=config.scan)
    alg = _Diagonal if config.method == "quasi-elk" else _Dense
    # λ_k = λ · min(1, |r_k|): the damping fades as the residual does, so the last steps are Newton's and
    # converge quadratically (Levenberg–Marquardt with residual-scaled damping: Yamashita & Fukushima 2001,
    # Fan & Yuan 2005); with a fixed λ the steps stay short to the end and converge only linearly.
    return _damped_step(alg, jac, r, config.damping * jnp.minimum(1.0, size), config.scan)


def _max_abs(a):
    """max |a|, or NaN if any entry is not finite (XLA's max may skip NaNs; a diverged iterate must not
    read as converged)."""
    return jnp.where(jnp.all(jnp.isfinite(a)), jnp.max(jnp.abs(a)), jnp.nan)


def _sequential_states(config: _Config, params, xs, s0):
    """The states by the definition: `lax.scan` of the step (the fallback, and the exact adjoint's twin)."""
    f = jax.vmap(_flat_step(config), in_axes=(None, 0, 0))

    def body(s, x):
        s = f(params, s, x)
        return s, s

    return jax.lax.scan(body, s0, xs)[1]


def _newton(config: _Config, params, xs, s0):
    """(S <[T, B, n]>, NewtonInfo): Newton steps from the guess s_t = s_0 until the residual <= tol."""
    step = _at_every_step(_flat_step(config))

    def residual_of(S):
        return step(params, _previous(S, s0), xs) - S

    def size(r, S):  # the residual relative to the states' scale
        return _max_abs(r) / jnp.maximum(1.0, _max_abs(S))

    def iterate(state):
        S, r, res, k = state
        jac = _jacobians(config, params, _previous(S, s0), xs)
        S = S + _correction(config, jac, r, res)
        r = residual_of(S)
        return S, r, size(r, S), k + 1

    def going(state):  # a NaN residual fails `> tol` too: a diverged iteration stops at once
        return (state[3] < config.max_iters) & (state[2] > config.tol)

    S = jnp.broadcast_to(s0, xs.shape[:1] + s0.shape)
    r = residual_of(S)
    S, _, res, k = jax.lax.while_loop(going, iterate, (S, r, size(r, S), jnp.int32(0)))
    converged = res <= config.tol
    if config.on_failure == "sequential":
        S = jax.lax.cond(converged, lambda: S, lambda: _sequential_states(config, params, xs, s0))
    return S, NewtonInfo(iterations=k, residual=res, converged=converged)


def _adjoint(config: _Config, params, S, xs, s0, g):
    """μ solving μ_t = g_t + J_{t+1}ᵀ μ_{t+1} (μ_T = g_T), and the cotangents of (params, xs, s0)."""
    P = _previous(S, s0)
    _, pull = jax.vjp(lambda p, P_, X: _at_every_step(_flat_step(config))(p, P_, X), params, P, xs)

    def transposed_next(mu):  # J_{t+1}ᵀ μ_{t+1} for t < T, 0 at T
        jt_mu = pull(mu)[1]
        return jnp.concatenate([jt_mu[1:], jnp.zeros_like(jt_mu[:1])])

    jac = _jacobians(config, params, P, xs)
    if not config.method.startswith("quasi"):
        a = jnp.concatenate([jnp.swapaxes(jac[1:], -1, -2), jnp.zeros_like(jac[:1])])
        mu = linear_scan.solve_dense(a, g, method=config.scan, reverse=True)
    else:  # μ ← solve(diag, g + (Jᵀ − diag) μ): exact after T rounds, usually far sooner
        d = jnp.concatenate([jac[1:], jnp.zeros_like(jac[:1])])
        scale = jnp.maximum(1.0, _max_abs(g))

        def iterate(state):
            mu, _, k = state
            mu = linear_scan.solve(d, g + transposed_next(mu) - d * mu, method=config.scan, reverse=True)
            return mu, _max_abs(g + transposed_next(mu) - mu) / scale, k + 1

        def going(state):
            return (state[2] < config.max_iters) & (state[1] > config.tol)

        mu, res, _ = jax.lax.while_loop(going, iterate, (jnp.zeros_like(g), jnp.asarray(jnp.inf, g.dtype), 0))
        mu = jax.lax.cond(
            res <= config.tol, lambda: mu, lambda: _sequential_adjoint(config, params, P, xs, g)
        )
    return mu, pull(mu)


def _sequential_adjoint(config: _Config, params, P, xs, g):
    """μ by the reverse recursion with one vector-Jacobian product per step (backpropagation through time)."""
    f = _flat_step(config)

    def body(mu_next_term, inputs):
        p, x, g_t = inputs
        mu = g_t + mu_next_term
        _, pull = jax.vjp(lambda s: jax.vmap(f, in_axes=(None, 0, 0))(params, s, x), p)
        return pull(mu)[0], mu

    return jax.lax.scan(body, jnp.zeros_like(g[0]), (P, xs, g), reverse=True)[1]


def _states_fwd(config, params, xs, s0):
    S, info = _newton(config, params, xs, s0)
    return (S, info), (params, xs, s0, S)


def _states_bwd(config, saved, cotangents):
    params, xs, s0, S = saved
    g = cotangents[0]
    _, (g_params, g_prev, g_xs) = _adjoint(config, params, S, xs, s0, g)
    return g_params, g_xs, g_prev[0]


_states = jax.custom_vjp(lambda config, params, xs, s0: _newton(config, params, xs, s0), nondiff_argnums=(0,))
_states.defvjp(_states_fwd, _states_bwd)
_solve = jax.jit(_states, static_argnums=0)


# ---------------------------------------------------------------------------------------------
# The public entry point


def _check_options(method, tol, max_iters, damping, scan, on_failure, T, dtype):
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if on_failure not in ON_FAILURE:
        raise ValueError(f"on_failure: expected one of {ON_FAILURE}, got {on_failure!r}")
    if scan not in linear_scan.METHODS:
        raise ValueError(f"scan: expected one of {linear_scan.METHODS}, got {scan!r}")
    tol = _checks.check_number("tol", tol, positive=True, optional=True)
    max_iters = _checks.check_int("max_iters", max_iters, optional=True)
    damped = method.endswith("elk")
    if damping is not None and not damped:
        raise ValueError(
            f"damping: only the damped methods ('elk', 'quasi-elk') take a damping, got damping={damping!r} "
            f"with method={method!r}"
        )
    damping = _checks.check_number("damping", damping, positive=True, optional=True)
    return (
        default_tol(dtype) if tol is None else tol,
        (4 * T if damped else T) if max_iters is None else max_iters,
        (DEFAULT_DAMPING if damping is None else damping) if damped else 0.0,
    )


def _warn_unconverged(converged, iterations, residual, tol, method):
    if not bool(converged):
        warnings.warn(
            f"rnnjax.newton.unroll: {method} did not reach tol={tol:g} in {int(iterations)} steps "
            f"(residual {float(residual):.3g}); the sequential scan computed the result instead",
            RuntimeWarning,
            stacklevel=3,
        )


def unroll(
    cell: Cell,
    params,
    xs,
    carry=None,
    *,
    method: str = "deer",
    tol: float | None = None,
    max_iters: int | None = None,
    damping: float | None = None,
    scan: str = "associative",
    on_failure: str = "raise",
    time_major: bool = False,
    reverse: bool = False,
):
    """Run `cell` over a sequence by Newton's method in parallel over time; same results as `rnnjax.unroll`.

    Args:
      cell, params, xs, carry, time_major, reverse: as for `rnnjax.unroll` (xs <float>[*batch, T, I], or
        [T, *batch, I] if `time_major`; carry None means zeros).
      method: "deer" (Newton, full Jacobians), "quasi-deer" (their diagonals), "elk" or "quasi-elk"
        (Levenberg–Marquardt steps by a parallel Kalman smoother). See the module doc.
      tol: stop when max |f(s_{t−1}, x_t) − s_t| <= tol · max(1, max |s_t|) over every t, example and unit
        (None: `default_tol` of the dtype).
      max_iters: most Newton steps (None: T, after which DEER and quasi-DEER are exact; 4·T for the damped
        methods, whose shortened steps need more).
      damping: λ > 0 of the damped methods (None: `DEFAULT_DAMPING`); larger is more cautious.
      scan: how each step's linear recurrence is solved: "associative" (parallel, O(log T) depth) or
        "sequential" (`lax.scan`; the same values).
      on_failure: past `max_iters` with the residual above `tol`: "raise" (a RuntimeError; under `jit`,
        where nothing can be raised, every output is NaN instead) or "sequential" (the sequential scan's
        result, with a RuntimeWarning; under `jit` without the warning, with `info.converged` False). An
        unconverged answer is never returned as if it were one.
    Returns:
      `(final_carry, ys, info)`: final_carry and ys as `rnnjax.unroll` gives them, and a `NewtonInfo`
      (iterations, residual, converged). Differentiable in params, xs and carry by the implicit adjoint.
    Raises:
      TypeError or ValueError naming the argument (every check of `rnnjax.unroll`, and this function's
      options); RuntimeError if the iteration did not converge and `on_failure="raise"`.
    """
    check_cell(cell)
    # Every check of the sequential unroll, at trace cost only: params, xs, carry and the flags.
    jax.eval_shape(
        lambda p, x, c: sequential_unroll(cell, p, x, c, time_major=time_major, reverse=reverse),
        params,
        xs,
        carry,
    )
    xs = jnp.asarray(xs)
    t_axis = 0 if time_major else xs.ndim - 2
    T = xs.shape[t_axis]
    dtype = jnp.result_type(xs.dtype, *jax.tree_util.tree_leaves(params))
    tol, max_iters, damping = _check_options(method, tol, max_iters, damping, scan, on_failure, T, dtype)
    batch_shape = xs.shape[:t_axis] + xs.shape[t_axis + 1 : -1]
    B = math.prod(batch_shape)
    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params)
    xs_t = jnp.moveaxis(xs.astype(dtype), t_axis, 0).reshape(T, B, xs.shape[-1])  # (T, B, I)
    if reverse:
        xs_t = xs_t[::-1]
    carry = cell.initial_carry(batch_shape, dtype) if carry is None else carry
    fields = len(carry)
    s0 = jnp.concatenate([jnp.asarray(c, dtype).reshape(B, -1) for c in carry], axis=-1)  # (B, n)

    config = _Config(cell, method, float(tol), int(max_iters), float(damping), scan, on_failure, fields)
    S, info = _solve(config, params, xs_t, s0)

    if not _checks.is_traced(info.converged):
        if on_failure == "raise" and not bool(info.converged):
            raise RuntimeError(
                f"rnnjax.newton.unroll: {method} did not reach tol={tol:g} within max_iters={max_iters} "
                f"steps (residual {float(info.residual):.3g} after {int(info.iterations)}); raise max_iters, "
                "use a damped method ('elk') or a smaller damping, or pass on_failure='sequential'"
            )
        if on_failure == "sequential":
            _warn_unconverged(info.converged, info.iterations, info.residual, tol, method)
    # Under jit the fallback does not warn (a host callback would be needed); the result is the sequential
    # scan's and `info.converged` is False.

    # Outputs: the step at every (s_{t−1}, x_t) at once, differentiable through S's implicit gradient.
    carry_type = type(carry)
    P = _previous(S, s0)

    def outputs(p, s, x):
        return cell.step(p, carry_type(*jnp.split(s, fields, axis=-1)), x)[1]

    ys = jax.vmap(jax.vmap(outputs, in_axes=(None, 0, 0)), in_axes=(None, 0, 0))(params, P, xs_t)  # (T, B, H)
    if reverse:
        ys = ys[::-1]
    final = carry_type(*(f.reshape(*batch_shape, -1) for f in jnp.split(S[-1], fields, axis=-1)))
    ys = ys.reshape(T, *batch_shape, ys.shape[-1])
    if on_failure == "raise" and _checks.is_traced(info.converged):  # under jit: NaN, as nothing can raise
        final, ys = jax.tree_util.tree_map(lambda a: jnp.where(info.converged, a, jnp.nan), (final, ys))
    return final, (ys if time_major else jnp.moveaxis(ys, 0, -2)), info
