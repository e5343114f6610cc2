"""The diagonal linear recurrence h_t = a_t ⊙ h_{t−1} + b_t over a whole sequence, in two evaluations.

Recurrences that are linear in their carry (the LRU of Orvieto et al. 2023, minGRU and minLSTM of Feng et
al. 2024) and each Newton step of parallel-in-time evaluation (DEER, Lim et al. 2024) reduce to this
solve. Its two evaluations compute the same thing:

- "sequential": `jax.lax.scan` over t, the definition (T dependent steps);
- "associative": `jax.lax.associative_scan` over the pairs e_t = (a_t, b_t), each standing for the map
  h ↦ a_t ⊙ h + b_t; two maps compose as (a_s, b_s) then (a_t, b_t) = (a_t ⊙ a_s, a_t ⊙ b_s + b_t),
  which is associative, so every prefix is found in O(log T) parallel depth (Blelloch 1990).

    h = linear_scan.solve(a, b, h0)                  # a, b: <[T, *shape]>, h0: <[*shape]>
    h = linear_scan.solve(a, b, method="sequential")  # the same values, T steps one after another

Real or complex dtypes (the LRU's λ is complex); gradients by JAX's autodiff through either evaluation.
Rounding differs between the two (products are grouped differently): in float64 they agree to ~1e-15
relative for |a| <= 1.

`solve_dense` is the same recurrence with a full matrix per step, h_t = A_t h_{t−1} + b_t (A_t <[n, n]>),
which each Newton step of DEER solves (`rnnjax.newton`); its pairs compose as (A_t A_s, A_t b_s + b_t), so
the associative scan costs O(T n³) work in O(log T) depth against the sequential scan's O(T n²).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["METHODS", "solve", "solve_dense"]

METHODS = ("associative", "sequential")


def _compose(earlier, later):
    """The map `later ∘ earlier`: h ↦ a_l (a_e h + b_e) + b_l."""
    a_e, b_e = earlier
    a_l, b_l = later
    return a_l * a_e, a_l * b_e + b_l


def solve(a, b, h0=None, *, method: str = "associative", reverse: bool = False) -> jax.Array:
    """h_t = a_t ⊙ h_{t−1} + b_t for t = 1..T (time on axis 0), from h_0 = `h0` (zeros if None).

    Args:
      a: <float or complex>[T, *shape] the per-step multipliers (broadcastable against `b`).
      b: <float or complex>[T, *shape] the per-step inputs.
      h0: <[*shape]> the state before the first step (None: zeros).
      method: "associative" (`lax.associative_scan`, O(log T) depth) or "sequential" (`lax.scan`).
      reverse: run from the last step to the first: h_t = a_t ⊙ h_{t+1} + b_t, with h0 after step T.
    Returns:
      <[T, *shape]> every h_t, in the dtype of `a * b` (h_t of step t at index t − 1).
    Raises:
      ValueError naming the argument for a bad method, a missing time axis, or shapes that do not agree.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if not isinstance(reverse, bool):
        raise TypeError(f"reverse: expected True or False, got {reverse!r}")
    a, b = jnp.asarray(a), jnp.asarray(b)
    if b.ndim < 1 or b.shape[0] < 1:
        raise ValueError(f"b: expected an array [T, ...] with T >= 1 steps on axis 0, got shape {b.shape}")
    try:
        shape = jnp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"a: expected a shape broadcastable to b's {b.shape}, got {a.shape}") from None
    if shape != b.shape:
        raise ValueError(f"a: expected a shape broadcastable to b's {b.shape} (not wider), got {a.shape}")
    dtype = jnp.result_type(a, b) if h0 is None else jnp.result_type(a, b, h0)
    a, b = jnp.broadcast_to(a, shape).astype(dtype), b.astype(dtype)
    if h0 is not None:
        h0 = jnp.asarray(h0, dtype)
        if h0.shape != shape[1:]:
            raise ValueError(f"h0: expected shape {shape[1:]} (b without its time axis), got {h0.shape}")
    first = -1 if reverse else 0
    if method == "sequential":

        def step(h, ab):
            h = ab[0] * h + ab[1]
            return h, h

        start = jnp.zeros(shape[1:], dtype) if h0 is None else h0
        _, hs = jax.lax.scan(step, start, (a, b), reverse=reverse)
        return hs
    if h0 is not None:  # fold the initial state into the first step's input
        b = b.at[first].add(a[first] * h0)
    return jax.lax.associative_scan(_compose, (a, b), reverse=reverse, axis=0)[1]


def _matmul(a, b):
    # Full float32 products on every backend (TF32 would put ~1e-3 errors into each Newton step).
    return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _compose_dense(earlier, later):
    """The map `later ∘ earlier`: h ↦ A_l (A_e h + b_e) + b_l."""
    a_e, b_e = earlier
    a_l, b_l = later
    return _matmul(a_l, a_e), _matmul(a_l, b_e[..., None])[..., 0] + b_l


def solve_dense(a, b, h0=None, *, method: str = "associative", reverse: bool = False) -> jax.Array:
    """h_t = A_t h_{t−1} + b_t for t = 1..T (time on axis 0) with a full matrix A_t per step.

    Args:
      a: <float>[T, *batch, n, n] the per-step matrices.
      b: <float>[T, *batch, n] the per-step inputs.
      h0: <[*batch, n]> the state before the first step (None: zeros).
      method: "associative" (`lax.associative_scan` over the affine maps, O(log T) depth, O(T n³) work) or
        "sequential" (`lax.scan`, T dependent matrix-vector products).
      reverse: run from the last step to the first: h_t = A_t h_{t+1} + b_t, with h0 after step T.
    Returns:
      <[T, *batch, n]> every h_t (h_t of step t at index t − 1), in the dtype of `a * b`.
    Raises:
      ValueError naming the argument for a bad method or shapes that do not agree.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if not isinstance(reverse, bool):
        raise TypeError(f"reverse: expected True or False, got {reverse!r}")
    a, b = jnp.asarray(a), jnp.asarray(b)
    if b.ndim < 2 or b.shape[0] < 1:
        raise ValueError(f"b: expected an array [T, *batch, n] with T >= 1 steps on axis 0, got {b.shape}")
    if a.shape != b.shape + b.shape[-1:]:
        want = b.shape + b.shape[-1:]
        raise ValueError(f"a: expected shape {want} (b's shape with an n x n matrix per step), got {a.shape}")
    dtype = jnp.result_type(a, b) if h0 is None else jnp.result_type(a, b, h0)
    a, b = a.astype(dtype), b.astype(dtype)
    if h0 is not None:
        h0 = jnp.asarray(h0, dtype)
        if h0.shape != b.shape[1:]:
            raise ValueError(f"h0: expected shape {b.shape[1:]} (b without its time axis), got {h0.shape}")
    first = -1 if reverse else 0
    if method == "sequential":

        def step(h, ab):
            h = _matmul(ab[0], h[..., None])[..., 0] + ab[1]
            return h, h

        start = jnp.zeros(b.shape[1:], dtype) if h0 is None else h0
        return jax.lax.scan(step, start, (a, b), reverse=reverse)[1]
    if h0 is not None:  # fold the initial state into the first step's input
        b = b.at[first].add(_matmul(a[first], h0[..., None])[..., 0])
    return jax.lax.associative_scan(_compose_dense, (a, b), reverse=reverse, axis=0)[1]
